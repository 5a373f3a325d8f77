"""Shared command-line pieces: a flag per Config field, preset/config/save-config handling, output helpers."""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import textwrap
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from initlab.engine import spec
from initlab.engine.export import writable_file_problem
from initlab.engine.spec import FIELDS, Config, SpecError
from initlab.engine.textplot import fmt


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(p: argparse.ArgumentParser, groups: Iterable[str] | None = None,
                     hidden: Iterable[str] = (), defaults: Config | None = None,
                     helps: dict[str, str] | None = None) -> None:
    """One flag per Config field (in the given groups); values stay strings until parse_value. Flags in `hidden`
    exist (so that the command refuses them in its own words) but are left out of the help. `defaults`: the
    command's own, where they differ from Config's; `helps`: the command's own words for a field."""
    defaults = defaults or Config()
    for name, info in FIELDS.items():
        if groups is not None and info.group not in groups:
            continue
        if helps and name in helps:
            info = dataclasses.replace(info, help=helps[name])
        if name in hidden:
            p.add_argument(flag(name), dest=name, default=None, help=argparse.SUPPRESS,
                           **({"action": argparse.BooleanOptionalAction} if info.kind is bool else {}))
            continue
        default = getattr(defaults, name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if info.kind is bool:
            p.add_argument(flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{info.help} (default {'on' if default else 'off'})")
        else:
            allowed = spec.allowed(name)
            text = (info.help if allowed == info.help else f"{info.help}: {allowed}") \
                + f"; default {'auto' if shown is None else shown}"
            p.add_argument(flag(name), dest=name, default=None, metavar=name.upper(), help=text.replace("%", "%%"))
    p.add_argument("--preset", default=None, help="start from a named experiment (see `initlab presets`)")
    p.add_argument("--config", default=None, metavar="FILE.toml", help="read settings from a TOML file")
    p.add_argument("--save-config", default=None, metavar="FILE.toml", help="write the settings to a TOML file")


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}


def preset_note(args: argparse.Namespace) -> str | None:
    """Where flags change a preset's settings, which did: the run is the preset's no longer, and its summary (std
    1/sqrt(n), say) may not hold."""
    given = {n: v for n, v in given_flags(args).items() if n != "device"}     # where it runs is not what it is
    if not getattr(args, "preset", None) or not given:
        return None
    changed = ", ".join(flag_text(n, v) for n, v in given.items())
    return f"initlab: note: preset {args.preset} with {changed} from the flags: the preset's other settings are kept"


def unread_notes(args: argparse.Namespace, cfg: Config, train: bool, skip: tuple[str, ...] = (),
                 points: list[Config] | None = None) -> list[str]:
    """A note per flag given that the run does not read (momentum under adam, std under xavier): it ran, but not
    as the flag asked; for a sweep (its `points`), a flag none of them reads. Settings from a config file are not
    named: a file holds every setting."""
    from initlab.engine.reads import read_nowhere, unread

    notes = []
    for name, value in given_flags(args).items():
        why = None if name in skip else read_nowhere(points, name, train) if points is not None \
            else unread(cfg, name, train)
        if why:
            notes.append(f"initlab: note: {why}; {flag_text(name, value)} was not used")
    return notes


def flag_text(name: str, value: Any) -> str:
    """A flag as the user typed it: `--gain 3`, `--no-bias`."""
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    return f"{flag(name)} {value}"


def as_typed(e: SpecError, args: argparse.Namespace) -> SpecError:
    """A refusal echoing a flag's value as typed: a command's own flag (its range is the engine's to check), or a
    setting's flag where the engine refused the value it parsed to (batch 1 under batch norm, a net too big)."""
    typed = getattr(args, e.field, None)
    if not isinstance(typed, str):
        return e
    if e.field in OWN_KEYS.get(getattr(args, "command", ""), ()):
        # the flag's value where the flag was typed; else the refusal is of the config file's value, as it says
        given = _flag_given(list(getattr(args, "argv", None) or []), e.field)
        return SpecError(e.field, typed.strip(), e.allowed) if given else e
    if e.field not in FIELDS or e.value is None or isinstance(e.value, str):
        return e
    try:
        same = spec.parse_value(e.field, typed) == e.value
    except SpecError:
        return e
    return SpecError(e.field, typed.strip(), e.allowed) if same else e


def check_output_path(name: str, path: str) -> None:
    """Refuse, before any work, an output path that is empty, a folder, or in a folder that does not exist."""
    if not path.strip():
        raise SpecError(name, path, "a file path, not an empty one")
    if os.path.isdir(path) or path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise SpecError(name, path, "a file path, not a folder")
    problem = writable_file_problem(path)
    if problem:
        raise SpecError(name, path, problem)
    printed = _printed_to(path)
    if printed:     # the file would be replaced by a new one, and what is printed go to the old, unlinked one
        raise SpecError(name, path, f"a file other than the one {printed} writes to")
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise SpecError(name, path, f"a file in an existing folder (no folder {folder})")
    try:        # the way the file will be written: a temporary file beside it (root passes any access() test)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".initlab-check-"):
            pass
    except OSError as e:
        raise SpecError(name, path, f"a file in a folder you can write to ({e.strerror or e})") from None


def _printed_to(path: str) -> str | None:
    """'stdout' or 'stderr' where that stream writes to the file at `path` (/dev/stdout redirected to a file, say)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    for fd, stream in ((1, "stdout"), (2, "stderr")):
        try:
            out = os.fstat(fd)
        except OSError:
            continue
        if (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino):
            return stream
    return None


# each command's own settings (not a Config's), saved with --save-config and read back by that command; the other
# commands pass over them, so that any saved file loads anywhere
OWN_KEYS = {"widths": ("widths", "steps"), "jacobian": ("inputs", "bins"), "sweep": ("vary", "train", "metric")}
_OWN_KINDS = {"widths": str, "steps": int, "inputs": int, "bins": int, "vary": list, "train": bool, "metric": str}


def _flag_given(argv: list[str], key: str) -> bool:
    return any(a == flag(key) or a.startswith(flag(key) + "=") for a in argv)


def _own_value(key: str, value: Any) -> Any:
    """A config file's value of a command's own setting, as its flag would hold it."""
    kind = _OWN_KINDS[key]
    if key == "widths" and isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in value):
        return ",".join(map(str, value))
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if kind in (str, bool) and type(value) is kind:
        return value
    words = {str: "a string", int: "an integer", bool: "true or false", list: "a list of NAME=V1,V2,... strings"}
    raise SpecError(key, value, f"{words[kind]} (in the config file)")


def _take_own_keys(args: argparse.Namespace, raw: dict[str, Any]) -> dict[str, Any]:
    """The config's settings without the commands' own; this command's own fill its flags not given."""
    own = OWN_KEYS.get(getattr(args, "command", ""), ())
    argv = list(getattr(args, "argv", None) or [])
    out = {}
    for key, value in raw.items():
        if key not in _OWN_KINDS:
            out[key] = value
        elif key in own and not _flag_given(argv, key):
            setattr(args, key, _own_value(key, value))
    return out


def own_toml_lines(args: argparse.Namespace) -> list[str]:
    """This command's own settings as TOML lines, for --save-config."""
    lines = []
    for key in OWN_KEYS.get(getattr(args, "command", ""), ()):
        v = getattr(args, key, None)
        if v is None or (key == "vary" and not v):
            continue
        if key == "vary":       # a grid's data files by their absolute paths, as a saved data setting's
            lines.append("vary = [" + ", ".join(spec.toml_string(spec.data_grid_paths(x, os.path.abspath))
                                                for x in v) + "]")
        elif _OWN_KINDS[key] is int:
            lines.append(f"{key} = {int(str(v).strip())}")
        elif _OWN_KINDS[key] is bool:
            lines.append(f"{key} = {'true' if v else 'false'}")
        else:
            lines.append(f"{key} = {spec.toml_string(str(v))}")
    return lines


def prepare(args: argparse.Namespace) -> None:
    """Before any work: refuse output paths that cannot be written (--out, --save-config, --csv, --report), read
    --config, and take its `preset` key where no --preset flag is given (flags win over the config, which wins over
    the preset)."""
    taken: dict[str, str] = {}
    for name in ("out", "save_config", "csv", "report"):
        path = getattr(args, name, None)
        if path is not None:
            check_output_path(name, path)
            real = os.path.realpath(path)
            if real in taken:       # the later write would replace the earlier one's file
                raise SpecError(name, path, f"a file other than {flag(taken[real])}'s (each output needs its own)")
            taken[real] = name
    if getattr(args, "preset", None) is not None and not args.preset.strip():
        raise SpecError("preset", args.preset, "a preset's name (see `initlab presets`)")
    path = getattr(args, "config", None)
    raw = _take_own_keys(args, spec.read_toml(path, extra=tuple(_OWN_KINDS))) if path is not None else {}
    args.config_keys = raw
    given = given_flags(args)
    for name, value in raw.items():     # every value the file holds is checked, those a flag overrides too
        if name in FIELDS:
            try:
                spec.parse_checked(name, value)
            except SpecError as e:      # said to be the file's, where a flag beside it gives the field another
                where = f" (the --config file's value; {flag(name)} gives another)" if name in given else ""
                raise SpecError(e.field, e.value, e.allowed + where) from None
    _refuse_outputs_over_inputs(args, taken)
    if "preset" in raw and getattr(args, "preset", None) is None:
        from initlab.engine.sweep import SWEEP_PRESETS

        # a sweep preset's name brings its grid to a sweep; to the other commands its net, under the file's settings
        if raw["preset"] in SWEEP_PRESETS and getattr(args, "command", "sweep") != "sweep":
            args.sweep_base = raw["preset"]
        else:
            args.preset = raw["preset"]
            args.preset_from_config = True


def _refuse_outputs_over_inputs(args: argparse.Namespace, taken: dict[str, str]) -> None:
    """An output that names a file the run reads (its --config, its --data or a sweep's, its --model's file) would
    replace it: refused before any work. --save-config may rewrite the --config it read: both hold settings."""
    if not taken:
        return
    inputs = [("config", getattr(args, "config", None)), ("data", given_settings(args).get("data"))]
    for item in getattr(args, "vary", None) or []:          # a sweep's grid of data files
        name, _, values = str(item).partition("=")
        if name.strip().replace("-", "_") == "data":
            inputs += [("vary", v.strip()) for v in values.split(",")]
    model = getattr(args, "model", None)
    if isinstance(model, str) and ":" in model:
        inputs.append(("model", _model_file(model.rsplit(":", 1)[0])))
    for name, path in inputs:
        if not isinstance(path, str) or not os.path.isfile(path):
            continue
        real = os.path.realpath(path)
        out = taken.get(real)
        if out is not None and not (out == "save_config" and name == "config"):
            raise SpecError(out, getattr(args, out), f"a file other than {flag(name)}'s, which this run reads")


def _model_file(where: str) -> str | None:
    """The file a --model names: FILE.py itself, or a module's source, found without running it (its parent
    packages are imported, as loading the model would)."""
    if where.endswith(".py"):
        return where
    import importlib.util

    try:
        found = importlib.util.find_spec(where)
    except Exception:       # not importable: the model's own check says so, in its words
        return None
    return getattr(found, "origin", None)


def config_keys(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the --config file gives (read by prepare), without its preset."""
    return {k: v for k, v in (getattr(args, "config_keys", None) or {}).items() if k != "preset"}


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given by the --config file or a flag (a flag wins), without the config's preset."""
    return {**config_keys(args), **given_flags(args)}


def command_preset(args: argparse.Namespace, kind: str, extra: tuple[str, ...] = ()):
    """The preset this command starts from, or None. A --preset flag must be of the command's kind; a config file's
    preset key may name any network preset, whose settings are then the base (a file saved by `probe --preset X
    --save-config` loads into train as well); only a training preset brings its seeds."""
    from initlab.engine import presets

    if not args.preset:
        return None
    if getattr(args, "preset_from_config", False) and args.preset in presets.PRESETS:
        return presets.PRESETS[args.preset]
    return preset_of_kind(args.preset, kind, extra)


def preset_of_kind(name: str, kind: str, extra: tuple[str, ...] = ()):
    """The named preset when it is of this command's kind ("probe" or "train"); else a refusal that lists this
    command's presets (and `extra` names it also takes) and says which command runs the one named."""
    from initlab.engine import presets
    from initlab.engine.sweep import SWEEP_PRESETS

    p = presets.PRESETS.get(name)
    if p is not None and p.kind == kind:
        return p
    other = p.kind if p is not None else "sweep" if name in SWEEP_PRESETS else "probe" if name == "random-matrix" \
        else ""
    where = f" ({name} is a {'training' if other == 'train' else other}: `initlab {other} --preset {name}`)" \
        if other else ""
    names = [n for n, q in presets.PRESETS.items() if q.kind == kind] + list(extra)
    raise spec.SpecError("preset", name, f"a {'training' if kind == 'train' else kind} preset: "
                         + ", ".join(names) + where)


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """Preset, then TOML config, then flags: each later source wins, and the rules that join fields are checked on
    the result. Raises SpecError naming the field. Nothing is written: see save_config."""
    from initlab.engine import presets

    cfg = base or Config()
    if args.preset:
        cfg = presets.get(args.preset).config
    elif getattr(args, "sweep_base", None):        # a config file's sweep preset: the net it sweeps
        from initlab.engine.sweep import SWEEP_PRESETS

        cfg = SWEEP_PRESETS[args.sweep_base].config
    return spec.from_mapping(given_settings(args), cfg)


def save_config(args: argparse.Namespace, cfg: Config) -> None:
    """Write --save-config, once every check of the command has passed: a refused run leaves the file as it was."""
    if getattr(args, "save_config", None):
        from initlab.engine import presets
        from initlab.engine.export import write_text

        from initlab.engine.sweep import SWEEP_PRESETS

        name = getattr(args, "preset", None) or getattr(args, "sweep_preset", None)
        named = name if name in SWEEP_PRESETS or name in presets.PRESETS else None
        # a preset of several seeds keeps them: its seed is left out unless one was given
        several = name in presets.PRESETS and len(presets.PRESETS[name].seeds) > 1
        write_text(args.save_config, spec.saved_toml(cfg, named, several and "seed" not in given_settings(args),
                                                     own_toml_lines(args)))
        sys.stderr.write(f"wrote {args.save_config}\n")       # as --out, --csv and --report say theirs


def verdict_line(v: dict) -> str:
    """The verdict line a probe and a training print under their tables."""
    where = f" from layer {v['from_layer']}" if v.get("from_layer") is not None else ""
    return (f"verdict: {v['kind']}{where}; first/last |dL/dW| ratio {fmt(v.get('first_last_grad_ratio'))}, "
            f"first/last dL/dz RMS ratio {fmt(v.get('first_last_gradz_ratio'))}")


def stdout_is_terminal() -> bool:
    return sys.stdout is not None and sys.stdout.isatty()      # a closed stdout (>&-) is None


def wants_json(args: argparse.Namespace) -> bool:
    """--json, or stdout is not a terminal (a pipe, a file): then stdout holds one JSON object and nothing else."""
    return bool(getattr(args, "json", False)) or not stdout_is_terminal()


@contextmanager
def sigint_held() -> Iterator[None]:
    """ctrl-c waits for the end of the block, then interrupts as usual (in the main thread; elsewhere it cannot be
    held). A handler, not a signal mask: a mask is per thread, and the kernel hands the signal to torch's."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    old = signal.signal(signal.SIGINT, lambda *a: pending.append(a))
    try:
        yield
    finally:
        # None: a handler not set from Python, which cannot be put back; the default stands in for it
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
    if pending and callable(old):
        old(*pending[0])        # Python's own handler raises KeyboardInterrupt
    elif pending and old in (signal.SIG_DFL, None):
        raise KeyboardInterrupt


def print_json(obj: Any) -> None:
    from initlab.engine.export import dumps

    text = dumps(obj) + "\n"
    if sys.stdout is None:          # closed (>&-): the result has nowhere to go, which is said, not an AttributeError
        raise OSError("stdout is closed: nowhere to write the result (give --out, --csv or --report a file)")
    with sigint_held():         # half an object is no JSON: an interrupt comes after the whole of it
        sys.stdout.write(text)
        sys.stdout.flush()


def terminal_width(stream=None) -> int | None:
    """The width of the terminal `stream` (stdout by default) writes to; None when it is no terminal."""
    stream = stream or sys.stdout
    try:
        if not stream.isatty():
            return None
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None
    return columns if columns > 0 else None     # a pty of no size (docker exec -t, some CI) says 0


def say(text: str, stream=None, indent: int = 2) -> None:
    """A line of prose (a note, a verdict) to `stream` (stderr by default), wrapped at words to its terminal's
    width with the lines after the first indented; as it is where no terminal is (a file, a pipe)."""
    stream = stream or sys.stderr
    width = terminal_width(stream)
    if width is not None and len(text) > width - 1 and width - 1 > indent + 20:
        text = "\n".join(textwrap.wrap(text, width - 1, subsequent_indent=" " * indent, break_on_hyphens=False))
    stream.write(text + "\n")


def table(rows: list[dict[str, Any]], columns: list[str], headers: list[str] | None = None, keys: int = 1,
          width: int | None = None) -> str:
    """A plain aligned text table. Wider than `width` (the terminal's, when stdout is one), its columns go in
    blocks one under the other, each led by the first `keys` columns, so that no row wraps and garbles them."""
    headers = headers or columns
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    width = width if width is not None else terminal_width()
    blocks = _column_blocks(widths, keys, width)

    def block(idx: list[int]) -> str:
        line = lambda vals: "  ".join(vals[i].rjust(widths[i]) for i in idx)
        return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
    return "\n\n".join(block(b) for b in blocks)


def _column_blocks(widths: list[int], keys: int, width: int | None) -> list[list[int]]:
    """Column indices per block: all in one where they fit (or no width is known), else as many as fit after the
    key columns, in order (a column wider than the room left still gets a block of its own)."""
    everything = list(range(len(widths)))
    span = lambda idx: sum(widths[i] for i in idx) + 2 * (len(idx) - 1)
    if width is None or span(everything) <= width:
        return [everything]
    keys = min(keys, len(widths))
    head, blocks = list(range(keys)), []
    current = list(head)
    for i in range(keys, len(widths)):
        if len(current) > keys and span(current + [i]) > width:
            blocks.append(current)
            current = list(head)
        current.append(i)
    blocks.append(current)
    return blocks
