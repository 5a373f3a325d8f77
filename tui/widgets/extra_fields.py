"""The app's own fields below the configuration: your model, its input shape, a sweep's grid, widths.

Each is checked as it is typed (without torch), its refusal shown beside it.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from textual.containers import Grid
from textual.message import Message
from textual.widgets import Collapsible, Input, Label, Static

from initlab.engine.spec import Config, SpecError, parse_widths

from .refusal import show_refusal

SPEC_FORM = "FILE.py:FACTORY or package.module:FACTORY"      # as engine.usermodel words it
SHAPE_FORM = "comma-separated positive integers such as 16,3,32,32"
MAX_INPUT_ELEMENTS = 1 << 31
DEPTH_X_INIT = "depth=5,10,20,40 init=xavier_uniform,kaiming_normal,orthogonal"
DEFAULT_WIDTHS = "64,128,256,512"


def _is_file(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except (ValueError, OSError):      # a NUL byte or a name the system cannot take
        return False


def parse_model(raw: str) -> str | None:
    """'' -> None (the configured MLP); else the spec, checked as far as the form can without running it: the
    FILE:FACTORY form and, for a file, that it exists. Importing it happens on the job's thread."""
    text = raw.strip()
    if not text:
        return None
    where, colon, attr = text.rpartition(":")
    if not colon or not where.strip() or not attr.strip():
        raise SpecError("model", raw, SPEC_FORM)
    if where.endswith(".py") or "/" in where or os.sep in where:
        if not where.endswith(".py"):
            raise SpecError("model", raw, f"{SPEC_FORM} (a file path must end in .py)")
        if not _is_file(where):
            raise SpecError("model", raw, f"{SPEC_FORM} (no such file: {where!r})")
    return text


def parse_shape(raw: str) -> tuple[int, ...] | None:
    """'16,3,32,32' -> (16, 3, 32, 32); '' -> None (the factory's own inputs)."""
    if not raw.strip():
        return None
    try:
        dims = tuple(int(p.strip()) for p in raw.split(","))
    except ValueError:
        raise SpecError("input_shape", raw, SHAPE_FORM) from None
    if any(d < 1 for d in dims):
        raise SpecError("input_shape", raw, SHAPE_FORM)
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise SpecError("input_shape", raw, f"{SHAPE_FORM}, at most {MAX_INPUT_ELEMENTS} elements in all")
    return dims


def vary_items(raw: str) -> list[str]:
    """'depth=10,20 init=a,b' (or 'depth=10,20; init=a,b') -> ["depth=10,20", "init=a,b"], as --vary takes them. A
    ';' ends an item only where a NAME= follows: a tuple setting's values are separated by it (poly_w=2,-1;1,1)."""
    items: list[str] = []
    for word in raw.split():        # a space always ends an item: a stray word is refused as itself
        for k, piece in enumerate(word.split(";")):
            if k == 0 or "=" in piece:
                items.append(piece)
            else:
                items[-1] += ";" + piece
    return [item.rstrip(";") for item in items if item.rstrip(";")]


def parse_vary(raw: str) -> dict[str, list[Any]]:
    """'depth=10,20 init=a,b' -> {"depth": [10, 20], "init": ["a", "b"]}, each value checked as its field's; '' -> {}
    (no grid)."""
    from initlab.engine import sweep

    items = vary_items(raw)
    if not items:
        return {}
    try:
        vary = sweep.parse_vary(items)
    except SpecError as e:
        if e.allowed.startswith("a known setting"):
            # the form names every setting: its forty names, wrapped in the field's narrow column, ran 25 lines
            raise SpecError(e.field, e.value, e.allowed.partition(": ")[0] + ": a field of the form, by its name "
                                              "(lr, init, ...)") from None
        if re.search(r",\s", raw):        # "depth=3, 4": the space ended the setting at "depth=3,"
            raise SpecError(e.field, e.value, f"{e.allowed}, with no space after a ',' (a space separates "
                                              f"settings)") from None
        raise
    n = math.prod(len(v) for v in vary.values())
    if n > sweep.MAX_POINTS:
        raise SpecError("vary", raw, f"at most {sweep.MAX_POINTS} points (this grid has {n})")
    return vary


SWEEP_RUNS = ("probe", "train")
TRAIN_HINT = "sweep_runs train"     # how the app asks for a sweep of trainings, as --train does on the command line


def parse_sweep_runs(raw: str) -> str:
    value = raw.strip()
    if value not in SWEEP_RUNS:
        raise SpecError("sweep_runs", raw, "one of " + ", ".join(SWEEP_RUNS))
    return value


def unread_by_sweep(vary: dict[str, list[Any]], base: Config, train: bool = False) -> str | None:
    """The refusal engine.sweep.point_configs gives the app's sweep (a probe or, with `train`, a training at every
    point) when it varies a setting no point reads, found without torch as the field is typed; None when every
    varied setting is read somewhere."""
    from initlab.engine.reads import read_nowhere
    from initlab.engine.sweep import grid

    for name in vary:
        why = read_nowhere((base.replace(**values) for values in grid(vary)), name, train, TRAIN_HINT)
        if why:
            return str(SpecError("vary", name, f"a setting these runs read ({why})"))
    return None


@dataclass(frozen=True)
class Extra:
    """One app-only field: its name, starting text, help, placeholder and parser (raises SpecError)."""

    name: str
    default: str
    help: str
    placeholder: str
    parse: Callable[[str], Any]


EXTRAS: dict[str, Extra] = {x.name: x for x in (
    Extra("model", "", "your own model, FILE.py:FACTORY or package.module:FACTORY: p probes it instead of the MLP "
          "(this runs the file's code)", "FILE.py:FACTORY", parse_model),
    Extra("input_shape", "", "with model: draw N(0, 1) inputs of this shape instead of the factory's inputs",
          "factory's inputs", parse_shape),
    Extra("vary", DEPTH_X_INIT, "the sweep's grid (r on the Sweep tab): a run at every combination",
          "depth=10,20 init=a,b", parse_vary),
    Extra("sweep_runs", "probe", "what the sweep runs at each point: probe, or train (the form's training, to its "
          "end state)", "probe or train", parse_sweep_runs),
    Extra("widths", DEFAULT_WIDTHS, "the width check's widths (r on the Widths tab)", "64,128,256", parse_widths),
)}


def extra_error(name: str, raw: str) -> str | None:
    """The one-line refusal for a raw value of an app-only field, or None when it is accepted."""
    try:
        EXTRAS[name].parse(raw)
    except SpecError as e:
        return str(e)
    return None


class ExtraFields(Collapsible):
    """The app-only fields in a group of their own; `raw` holds their text, refused ones are marked as the
    configuration's are."""

    @dataclass
    class Changed(Message):
        """An app-only field changed; error is its one-line refusal, or None."""

        fields: "ExtraFields"
        name: str
        error: str | None

    def __init__(self, base: Config | None = None, initial: dict[str, str] | None = None, **kwargs: Any):
        self.raw = {x.name: x.default for x in EXTRAS.values()} | {k: v for k, v in (initial or {}).items()
                                                                   if k in EXTRAS}
        self.base = base        # the form's configuration, a sweep's base; None while the form refuses a field
        rows: list[Any] = []
        for x in EXTRAS.values():
            rows += [Label(x.name, classes="field-name"),
                     Input(self.raw[x.name], placeholder=x.placeholder, compact=True, id=f"field-{x.name}",
                           name=x.name, tooltip=x.help, select_on_focus=False)]
        super().__init__(Grid(*rows, classes="fields"), title="Beyond: your model, sweep, widths", collapsed=True,
                         **kwargs)
        self._error_boxes: dict[str, tuple[Label, Static]] = {}

    def on_mount(self) -> None:
        # a field filled from a file (initlab --config) is checked as if typed: its refusal shows at once
        if any(self.raw[x.name] != x.default for x in EXTRAS.values()):
            self.call_after_refresh(lambda: [self.recheck(x.name) for x in EXTRAS.values()])

    def values(self) -> dict[str, str]:
        return dict(self.raw)

    def errors(self) -> dict[str, str]:
        """The fields that do not parse: they stop every run. (A grid the sweep would not read is shown beside its
        field but stops the sweep alone, which checks it again.)"""
        out = {}
        for name, raw in self.raw.items():
            msg = extra_error(name, raw)
            if msg:
                out[name] = msg
        return out

    def _error(self, name: str, raw: str) -> str | None:
        error = extra_error(name, raw)
        if error is None and name == "vary" and self.base is not None:
            error = unread_by_sweep(parse_vary(raw), self.base, self.sweep_trains())
        return error

    def sweep_trains(self) -> bool:
        """Whether the sweep runs trainings (the sweep_runs field reads train; refused, it runs nothing anyway)."""
        return self.raw.get("sweep_runs", "").strip() == "train"

    def set_base(self, base: Config | None) -> None:
        """Follow the form: whether the sweep reads a varied setting depends on its settings (init, bias, ...)."""
        self.base = base
        if self.is_mounted:
            self._show_error("vary", self._error("vary", self.raw["vary"]))

    def parsed(self, name: str) -> Any:
        """The field's parsed value; raises SpecError when it is refused."""
        return EXTRAS[name].parse(self.raw[name])

    def set_value(self, name: str, raw: str) -> None:
        """Set a field as if typed (its widget follows once mounted)."""
        self.query_one(f"#field-{name}", Input).value = raw
        self._changed(name, raw)

    def mark(self, name: str, error: str) -> None:
        """Show a refusal beside a field that its value alone does not give (an empty grid, refused by the sweep);
        the field's next change, or recheck, clears it or replaces it with its own."""
        self._show_error(name, error)

    def recheck(self, name: str) -> None:
        """Show the field's own refusal, or none: a mark from a run before is not this run's."""
        if self.is_mounted:
            self._show_error(name, self._error(name, self.raw[name]))

    def _show_error(self, name: str, error: str | None) -> None:
        show_refusal(self._error_boxes, self.query_one(f"#field-{name}", Input), name, error)

    def _changed(self, name: str, raw: str) -> None:
        if name not in EXTRAS or self.raw.get(name) == raw:
            return
        self.raw[name] = raw
        error = self._error(name, raw)
        self._show_error(name, error)
        if name == "model":         # input_shape's need is the model's: a mark for the model before goes
            self.recheck("input_shape")
        if name == "sweep_runs":    # a training reads settings a probe does not: the grid is checked again
            self.recheck("vary")
        self.post_message(self.Changed(self, name, error))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.name in EXTRAS:
            event.stop()
            self._changed(event.input.name, event.value)


# what a TOML experiment holds of the app-only fields, under the command line's own keys (sweep's vary and train,
# widths' widths): the app's w writes them, initlab --config and the commands' --config read them
def extras_toml_lines(raw: dict[str, str]) -> list[str]:
    """The sweep's grid, what it runs and the width check's widths as TOML lines (the model fields are flags only)."""
    import os

    from initlab.engine.spec import data_grid_paths, toml_string

    # a grid's data files by their absolute paths, as the commands save them: the file is read from any folder
    items = [data_grid_paths(x, os.path.abspath) for x in vary_items(raw.get("vary", ""))]
    lines = ["vary = [" + ", ".join(toml_string(x) for x in items) + "]"]      # [] too: no grid, as the field had
    lines.append(f"train = {'true' if raw.get('sweep_runs', '').strip() == 'train' else 'false'}")
    if raw.get("widths", "").strip():
        lines.append(f"widths = {toml_string(raw['widths'].strip())}")
    return lines


def extras_from_toml(values: dict[str, Any]) -> dict[str, str]:
    """The app-only fields' text from a TOML experiment's vary, train and widths keys (as the commands write them);
    SpecError for a value of the wrong kind, as the commands refuse it."""
    out = {}
    if "vary" in values:
        v = values["vary"]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise SpecError("vary", v, 'a list of NAME=V1,V2 strings, such as ["depth=10,20"]')
        # --vary took "depth=2, 3" as one item; the field ends an item at a space
        out["vary"] = " ".join("".join(x.split()) for x in v)
    if "train" in values:
        if not isinstance(values["train"], bool):
            raise SpecError("train", values["train"], "true or false")
        out["sweep_runs"] = "train" if values["train"] else "probe"
    if "widths" in values:
        w = values["widths"]
        if isinstance(w, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in w):
            out["widths"] = ",".join(map(str, w))
        elif isinstance(w, str):
            out["widths"] = w
        else:
            raise SpecError("widths", w, 'a list of widths such as [64, 128], or "64,128"')
    return out
