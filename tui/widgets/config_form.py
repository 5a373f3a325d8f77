"""The configuration form, generated from spec.FIELDS: one row per field, checked as it is typed.

It holds the values itself and mounts the rows group by group after the first frame, so the app shows up at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Checkbox, Collapsible, Input, Label, Select, Static

from initlab.engine import spec
from initlab.engine.presets import PRESETS

from .extra_fields import ExtraFields
from .refusal import show_refusal
from .steady_select import SteadySelect

GROUPS = (("model", "Model"), ("init", "Init"), ("probe", "Probe"), ("data", "Data"), ("train", "Training"),
          ("run", "Run"))
OPEN_GROUPS = ("model", "init", "run")


def text_of(value: Any) -> str:
    """How a Config value reads in an Input; parse_value turns it back into the same value."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ", ".join(repr(float(v)) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def yes_no(value: Any) -> str:
    # the box's mark alone is told apart by colour only; the word reads without it
    return "yes" if value else "no"


def raw_of(info: spec.FieldInfo, value: Any) -> Any:
    """A Config value as its widget holds it: text for an Input, a bool for a Checkbox, the choice for a Select."""
    if info.kind is bool:
        return bool(value)
    if info.choices or info.name == "device":
        return value
    return text_of(value)


def field_widget(info: spec.FieldInfo, value: Any, devices: list[tuple[str, str]]) -> Input | Select | Checkbox:
    """The widget for one field, holding a raw value (see raw_of)."""
    wid = f"field-{info.name}"
    if info.name == "device":
        return SteadySelect(devices, value=value, allow_blank=False, compact=True, id=wid, name=info.name,
                            tooltip=info.help)
    if info.choices:
        return SteadySelect([(c, c) for c in info.choices], value=value, allow_blank=False, compact=True, id=wid,
                            name=info.name, tooltip=info.help)
    if info.kind is bool:
        return Checkbox(yes_no(value), value=bool(value), compact=True, id=wid, name=info.name, tooltip=info.help)
    placeholder = "auto" if info.optional else ""
    return Input(value, placeholder=placeholder, compact=True, id=wid, name=info.name, tooltip=info.help,
                 select_on_focus=False)



class ConfigForm(VerticalScroll, can_focus=False):
    """Every setting of an experiment, grouped as spec.FIELDS groups them, and a preset selector on top.
    `raw` holds every field's value whether or not its row is mounted yet; widgets mirror it. The form itself takes
    no focus (tab goes from field to field; the form scrolls to the focused one), so that no tab lands nowhere."""

    # while a text field has the cursor the app's letter keys go to it: the footer says how to get them back
    BINDINGS = [Binding("escape", "leave_field", "leave field")]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # shown (and taken) only where typing goes to a field; elsewhere the app's own escape does the same, unseen
        return isinstance(self.app.focused, Input) if action == "leave_field" else True

    def action_leave_field(self) -> None:
        self.app.set_focus(None)

    @dataclass
    class Changed(Message):
        """A field changed; error is its one-line refusal, or None when the value is accepted. by_app: the app set
        it (a preset or a file loaded, the devices found), not the user's edit."""

        form: "ConfigForm"
        name: str
        error: str | None
        by_app: bool = False

    @dataclass
    class PresetChosen(Message):
        form: "ConfigForm"
        name: str

    def __init__(self, config: spec.Config, extras: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.initial_extras = extras or {}      # the app-only fields' text, from a TOML experiment
        self.raw: dict[str, Any] = {}
        self.devices: list[tuple[str, str]] = [("auto", "auto")]     # (label, value) as the Select lists them
        self.mounted_fields = False
        self._pending = [g for g, _ in GROUPS if g in OPEN_GROUPS] + [g for g, _ in GROUPS if g not in OPEN_GROUPS]
        self._error_boxes: dict[str, tuple[Label, Static]] = {}     # mounted only while a field is refused
        self._fill(config)

    def _fill(self, cfg: spec.Config) -> None:
        if cfg.device not in {v for _l, v in self.devices}:
            self.devices.append((cfg.device, cfg.device))
        self.raw = {name: raw_of(info, getattr(cfg, name)) for name, info in spec.FIELDS.items()}

    def compose(self) -> ComposeResult:
        yield Static("Configuration", classes="pane-title")
        with Horizontal(classes="field-row"):
            yield Label("preset", classes="field-name")
            yield SteadySelect([(n, n) for n in PRESETS], prompt="choose a preset", compact=True, id="preset",
                               tooltip="fill the form with a named experiment")
        yield Static("", id="preset-summary")
        for group, title in GROUPS:
            yield Collapsible(title=title, collapsed=group not in OPEN_GROUPS, id=f"group-{group}")
        yield ExtraFields(self._config_or_none(), self.initial_extras, id="group-extras")

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_next_group)

    async def _mount_next_group(self) -> None:
        """Mount one group's rows, then schedule the next after a refresh: the screen stays live meanwhile."""
        if not self._pending:
            self.mounted_fields = True
            return
        try:
            contents = self.query_one(f"#group-{self._pending[0]}", Collapsible).query_one(Collapsible.Contents)
        except NoMatches:
            contents = None
        if contents is None or not contents.is_attached:
            return      # the app is closing (a quick q): its widgets are leaving, nothing more to mount
        group = self._pending.pop(0)
        rows: list[Any] = []
        for info in spec.FIELDS.values():
            if info.group == group:
                rows += [Label(info.name, classes="field-name"), field_widget(info, self.raw[info.name], self.devices)]
        await contents.mount(Grid(*rows, classes="fields"))
        for info in spec.FIELDS.values():
            if info.group == group:
                error = spec.field_error(info.name, self.raw[info.name])
                if error:
                    self._show_error(info.name, error)
        self.call_after_refresh(self._mount_next_group)

    # -- reading -----------------------------------------------------------------------------------------------
    def widget_for(self, name: str) -> Input | Select | Checkbox | None:
        """The field's widget, or None while its group is not mounted yet."""
        return self.query(f"#field-{name}").first() if self.query(f"#field-{name}") else None

    def values(self) -> dict[str, Any]:
        """The raw value of every field: Input text, Select choice, Checkbox state."""
        return dict(self.raw)

    def errors(self) -> dict[str, str]:
        """Field name -> refusal, for every field whose value is refused now."""
        out = {}
        for name, raw in self.raw.items():
            msg = spec.field_error(name, raw)
            if msg:
                out[name] = msg
        return out

    def config(self) -> spec.Config:
        """The validated Config the form describes; raises SpecError with the first refusal."""
        return spec.from_mapping(self.values())

    def _config_or_none(self) -> spec.Config | None:
        try:
            return self.config()
        except spec.SpecError:
            return None

    def _follow_extras(self) -> None:
        """The app's own fields below are checked against the form as it is now (a sweep starts from it)."""
        try:
            extras = self.query_one(ExtraFields)
        except NoMatches:
            return
        extras.set_base(self._config_or_none())

    def focus_field(self, name: str) -> None:
        """Open the field's group and put the cursor in it."""
        w = self.widget_for(name)
        if w is None:
            return
        for c in w.ancestors:
            if isinstance(c, Collapsible):
                c.collapsed = False
        w.focus()
        w.scroll_visible()
        # a group just opened (or a form still laying out, as the app opens) moves the field: seen again after
        self.call_after_refresh(w.scroll_visible)

    # -- writing -----------------------------------------------------------------------------------------------
    def load(self, cfg: spec.Config) -> None:
        """Fill every field from a Config; a Changed message goes out for each field whose value changed."""
        before = self.raw
        self._fill(cfg)
        sel = self.widget_for("device")
        if isinstance(sel, Select) and cfg.device not in {v for _l, v in sel._options}:
            sel.set_options(self.devices)
        for name in spec.FIELDS:
            w = self.widget_for(name)
            if w is not None:
                w.value = self.raw[name]
            self._show_error(name, None)
            if before.get(name) != self.raw[name]:
                self.post_message(self.Changed(self, name, None, by_app=True))
        self._follow_extras()

    def show_preset(self, name: str) -> None:
        """Name a preset loaded by other means (the palette) in the selector, without loading it again, and
        describe it in the line below, as choosing it there does."""
        with self.prevent(Select.Changed):
            self.query_one("#preset", Select).value = name
        self._describe_preset(name)

    def _describe_preset(self, name: str) -> None:
        p = PRESETS[name]
        self.query_one("#preset-summary", Static).update(f"{p.kind}: {p.summary}")

    def set_devices(self, devices: list[tuple[str, str]]) -> str | None:
        """Offer auto and the devices present; returns a warning when the chosen one is not among them."""
        current = self.raw["device"]
        self.devices = [("auto", "auto")] + [(label, dev) for dev, label in devices]
        present = {v for _l, v in self.devices}
        value, warning = current, None
        if current == "cuda" and "cuda:0" in present:
            value = "cuda:0"
        elif current not in present:
            value, warning = "auto", f"device {current} is not on this machine; using auto"
        self.raw["device"] = value
        sel = self.widget_for("device")
        if isinstance(sel, Select):
            with self.prevent(Select.Changed):      # the options' reset and the value set back are no edits
                sel.set_options(self.devices)
                sel.value = value
        if value != current:
            self.post_message(self.Changed(self, "device", None, by_app=True))
        return warning

    # -- events ------------------------------------------------------------------------------------------------
    def _show_error(self, name: str, error: str | None) -> None:
        widget = self.widget_for(name)
        if widget is not None:
            show_refusal(self._error_boxes, widget, name, error)

    def _changed(self, name: str | None, raw: Any) -> None:
        if name not in spec.FIELDS or self.raw.get(name) == raw:     # a widget echoing a value set by load()
            return
        self.raw[name] = raw
        error = spec.field_error(name, raw)
        self._show_error(name, error)
        self._follow_extras()
        self._summarise_preset()
        self.post_message(self.Changed(self, name, error))

    def _summarise_preset(self) -> None:
        """After an edit the selector no longer names the preset (the form is not it any more, and choosing the
        preset again then reloads it); the line below says which preset the form was."""
        try:
            sel = self.query_one("#preset", Select)
            line = self.query_one("#preset-summary", Static)
        except NoMatches:
            return
        p = PRESETS.get(sel.value) if isinstance(sel.value, str) else None
        if p is None:
            return
        try:
            same = p.held_by(spec.from_mapping(self.values()))
        except spec.SpecError:
            same = False
        if not same:
            with self.prevent(Select.Changed):
                sel.clear()
            line.update(f"edited after loading {p.name}: p and t run the form as it is")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed(event.input.name, event.value)

    def on_descendant_focus(self, event: Any) -> None:
        w = event.widget
        if isinstance(w, Input) and not w.select_on_focus and w.value:
            # a field left reads from its start (below); back in it, the view goes to the cursor again, which a
            # selected-on-focus field does by itself (a refusal puts the cursor back in a long grid)
            pos = w.cursor_position
            w.cursor_position = 0 if pos else len(w.value)
            w.cursor_position = pos

    def on_input_blurred(self, event: Input.Blurred) -> None:
        # a field left scrolled to its end shows the tail of a long value ("on=sigmoid,tanh" of a grid of
        # activations): read from its start, it shows what it sets. The cursor stays where it was: back in the
        # field (a refusal puts it there), typing goes on where it left off
        event.input.scroll_to(x=0, animate=False, immediate=True)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        event.checkbox.label = yes_no(event.value)
        self._changed(event.checkbox.name, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "preset":
            if event.value in PRESETS:
                self._describe_preset(event.value)
                self.post_message(self.PresetChosen(self, event.value))
            return
        self._changed(event.select.name, event.value)
