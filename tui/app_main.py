"""Opens the Textual app; kept apart so the headless commands never import textual."""
from __future__ import annotations

import sys
from typing import Any


# settings of a command's own the app has no field for, with their defaults (a file holding these says nothing)
COMMAND_ONLY = {"metric": "log10_gradz_ratio", "steps": 5, "inputs": 1, "bins": 20}


def app_config(path: str) -> tuple[Any, dict[str, str], tuple[str, ...], str]:
    """What a TOML experiment gives the app (`initlab --config FILE`): the Config (its settings over its preset's, or
    over the app's own defaults), the Beyond fields' text (a sweep's vary and train, the widths; a sweep preset's
    grid where the file has none), the log's first lines, which name the file and what of it the app does not use,
    and the preset's name ('' for none: a training preset's seeds run while the form holds its settings). Raises
    SpecError naming the field."""
    from initlab.engine import presets, spec
    from initlab.engine.sweep import SWEEP_PRESETS

    from .app import APP_DEFAULTS
    from .commands.common import OWN_KEYS
    from .widgets.extra_fields import extras_from_toml

    own = tuple(dict.fromkeys(k for keys in OWN_KEYS.values() for k in keys))
    flat = spec.read_toml(path, extra=own)
    name = flat.pop("preset", None)
    if name is not None and name not in presets.PRESETS and name not in SWEEP_PRESETS:
        raise spec.SpecError("preset", name, "a network or sweep preset for the app: "
                             + ", ".join([*presets.PRESETS, *SWEEP_PRESETS]) + f" ({name} runs from the command line)")
    extras = extras_from_toml(flat)
    if name in SWEEP_PRESETS and "vary" not in extras:       # the preset's own grid, as the commands run it
        extras["vary"] = " ".join(f"{k}={','.join(repr(float(v)) for v in vals)}"
                                  for k, vals in SWEEP_PRESETS[name].vary.items())
    unused = [k for k, default in COMMAND_ONLY.items() if k in flat and flat[k] != default]
    # a sweep preset's net is the base, as the commands take it; its grid is the file's vary
    base = presets.PRESETS[name].config if name in presets.PRESETS else \
        SWEEP_PRESETS[name].config if name else APP_DEFAULTS
    cfg = spec.from_mapping({k: v for k, v in flat.items() if k not in own}, base)
    lines = [f"opened {path}" + (f": preset {name}, with the file's settings over it" if name else "")]
    if unused:
        lines.append(f"the file's {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} the command line's: the "
                     "app has no such field")
    # a seed the file names runs alone, as on the command line: no preset's seeds then
    several = len(getattr(presets.PRESETS.get(name or ""), "seeds", ())) > 1
    return cfg, extras, tuple(lines), "" if several and "seed" in flat else name or ""


def utf8_output(*streams: Any) -> None:
    """The app's lines, bars and arrows go out as UTF-8 whatever Python's stdio encoding (PYTHONIOENCODING=ascii
    wrote each as a literal \\u2502, and the widths it threw off broke the layout): terminals that draw them take it.
    Both streams: Textual draws on stderr, on Windows on stdout."""
    for stream in streams:
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if stream is not None and enc != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")


def run_app(config: Any = None, extras: dict[str, str] | None = None, opened: tuple[str, ...] = (),
            preset: str = "") -> int:
    from .app import InitlabApp

    utf8_output(sys.__stderr__, sys.__stdout__)
    app = InitlabApp(config, extras=extras, opened=opened, preset=preset)
    app.run()
    return app.return_code or 0     # 1 when the app stopped on an error, so that a script sees it
