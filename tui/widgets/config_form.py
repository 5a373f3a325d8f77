"""The configuration form, generated from spec.FIELDS: one row per field, checked as it is typed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Collapsible, Input, Label, Select, Static

from initlab.engine import spec
from initlab.engine.presets import PRESETS

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


def field_widget(info: spec.FieldInfo, value: Any) -> Input | Select | Checkbox:
    wid = f"field-{info.name}"
    if info.name == "device":
        options = [("auto", "auto")] + ([(value, value)] if value != "auto" else [])
        return Select(options, value=value, allow_blank=False, compact=True, id=wid, name=info.name,
                      tooltip=info.help)
    if info.choices:
        return Select([(c, c) for c in info.choices], value=value, allow_blank=False, compact=True, id=wid,
                      name=info.name, tooltip=info.help)
    if info.kind is bool:
        return Checkbox(yes_no(value), value=bool(value), compact=True, id=wid, name=info.name, tooltip=info.help)
    placeholder = "auto" if info.optional else ""
    return Input(text_of(value), placeholder=placeholder, compact=True, id=wid, name=info.name, tooltip=info.help,
                 select_on_focus=False)


class ConfigForm(VerticalScroll):
    """Every setting of an experiment, grouped as spec.FIELDS groups them, and a preset selector on top."""

    @dataclass
    class Changed(Message):
        """A field changed; error is its one-line refusal, or None when the value is accepted."""

        form: "ConfigForm"
        name: str
        error: str | None

    @dataclass
    class PresetChosen(Message):
        form: "ConfigForm"
        name: str

    def __init__(self, config: spec.Config, **kwargs: Any):
        super().__init__(**kwargs)
        self._initial = config
        self._errors: dict[str, str] = {}
        self._device_values = ["auto"] + ([config.device] if config.device != "auto" else [])
        self._device_labels: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("Configuration", classes="pane-title")
        with Horizontal(classes="field-row"):
            yield Label("preset", classes="field-name")
            yield Select([(n, n) for n in PRESETS], prompt="choose a preset", compact=True, id="preset",
                         tooltip="fill the form with a named experiment")
        yield Static("", id="preset-summary")
        for group, title in GROUPS:
            with Collapsible(title=title, collapsed=group not in OPEN_GROUPS, id=f"group-{group}"):
                for info in spec.FIELDS.values():
                    if info.group != group:
                        continue
                    with Horizontal(classes="field-row"):
                        yield Label(info.name, classes="field-name")
                        yield field_widget(info, getattr(self._initial, info.name))
                    yield Static("", id=f"error-{info.name}", classes="field-error")

    # -- reading -----------------------------------------------------------------------------------------------
    def widget_for(self, name: str) -> Input | Select | Checkbox:
        return self.query_one(f"#field-{name}")  # type: ignore[return-value]

    def values(self) -> dict[str, Any]:
        """The raw value of every field: Input text, Select choice, Checkbox state."""
        return {name: self.widget_for(name).value for name in spec.FIELDS}

    def errors(self) -> dict[str, str]:
        """Field name -> refusal, for every field whose value is refused now."""
        out = {}
        for name, raw in self.values().items():
            msg = spec.field_error(name, raw)
            if msg:
                out[name] = msg
        return out

    def config(self) -> spec.Config:
        """The validated Config the form describes; raises SpecError with the first refusal."""
        return spec.from_mapping(self.values())

    # -- writing -----------------------------------------------------------------------------------------------
    def load(self, cfg: spec.Config) -> None:
        """Fill every field from a Config."""
        for name, info in spec.FIELDS.items():
            value = getattr(cfg, name)
            w = self.widget_for(name)
            if isinstance(w, Input):
                w.value = text_of(value)
            elif isinstance(w, Checkbox):
                w.value = bool(value)
            else:
                if name == "device" and value not in self._device_values:
                    self._device_values.append(value)
                    w.set_options([(v, v) if v == "auto" else (self._device_labels.get(v, v), v)
                                   for v in self._device_values])
                w.value = value
            self._show_error(name, None)

    def set_devices(self, devices: list[tuple[str, str]]) -> str | None:
        """Offer auto and the devices present; returns a warning when the chosen one is not among them."""
        sel: Select = self.widget_for("device")  # type: ignore[assignment]
        current = sel.value
        self._device_values = ["auto"] + [dev for dev, _label in devices]
        self._device_labels = dict(devices)
        options = [("auto", "auto")] + [(label, dev) for dev, label in devices]
        sel.set_options(options)
        present = set(self._device_values)
        if current in present or (current == "cuda" and "cuda:0" in present):
            sel.value = "cuda:0" if current == "cuda" else current
            return None
        sel.value = "auto"
        return f"device {current} is not on this machine; using auto"

    # -- events ------------------------------------------------------------------------------------------------
    def _show_error(self, name: str, error: str | None) -> None:
        box = self.query_one(f"#error-{name}", Static)
        box.update(error or "")
        box.set_class(bool(error), "-shown")
        self.widget_for(name).set_class(bool(error), "-refused")
        if error:
            self._errors[name] = error
        else:
            self._errors.pop(name, None)

    def _changed(self, name: str | None, raw: Any) -> None:
        if not name or name not in spec.FIELDS:
            return
        error = spec.field_error(name, raw)
        self._show_error(name, error)
        self.post_message(self.Changed(self, name, error))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed(event.input.name, event.value)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        event.checkbox.label = yes_no(event.value)
        self._changed(event.checkbox.name, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "preset":
            if event.value in PRESETS:
                p = PRESETS[event.value]
                self.query_one("#preset-summary", Static).update(f"{p.kind}: {p.summary}")
                self.post_message(self.PresetChosen(self, p.name))
            return
        self._changed(event.select.name, event.value)
