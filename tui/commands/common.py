"""Shared command-line pieces: a flag per Config field, preset/config/save-config handling, output helpers."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterable

from initlab.engine import spec
from initlab.engine.spec import FIELDS, Config, SpecError
from initlab.engine.textplot import fmt


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(p: argparse.ArgumentParser, groups: Iterable[str] | None = None) -> None:
    """One flag per Config field (in the given groups); values stay strings until parse_value."""
    for name, info in FIELDS.items():
        if groups is not None and info.group not in groups:
            continue
        if info.kind is bool:
            p.add_argument(flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=info.help)
        else:
            p.add_argument(flag(name), dest=name, default=None, metavar=name.upper(), help=info.help)
    p.add_argument("--preset", default=None, help="start from a named experiment (see `initlab presets`)")
    p.add_argument("--config", default=None, metavar="FILE.toml", help="read settings from a TOML file")
    p.add_argument("--save-config", default=None, metavar="FILE.toml", help="write the settings to a TOML file")


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """Preset, then TOML config, then flags: each later source wins. Raises SpecError naming the field."""
    from initlab.engine import presets

    cfg = base or Config()
    if args.preset:
        cfg = presets.get(args.preset).config
    if args.config:
        cfg, _ = spec.load_toml(args.config, cfg)
    cfg = spec.from_mapping(given_flags(args), cfg)
    if args.save_config:
        from initlab.engine.export import write_text

        write_text(args.save_config, spec.to_toml(cfg))
    return cfg


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def print_json(obj: Any) -> None:
    from initlab.engine.export import dumps

    sys.stdout.write(dumps(obj) + "\n")


def table(rows: list[dict[str, Any]], columns: list[str], headers: list[str] | None = None) -> str:
    """A plain aligned text table."""
    headers = headers or columns
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def require(cond: bool, field_name: str, value: Any, allowed: str) -> None:
    if not cond:
        raise SpecError(field_name, value, allowed)


def dump_error(e: Exception) -> None:
    sys.stderr.write(f"initlab: error: {e}\n")


__all__ = ["add_config_flags", "config_from_args", "print_json", "table", "fmt", "wants_json", "json"]
