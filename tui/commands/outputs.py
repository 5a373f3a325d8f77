"""Shared `--csv FILE` and `--report FILE.md` flags: checked before a run, written atomically after it.

The check is commands.common.prepare's.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


def add_output_flags(p: argparse.ArgumentParser, csv_help: str = "write the per-layer rows as CSV",
                     report_help: str = "settings, verdict, per-layer table, text figures") -> None:
    p.add_argument("--csv", default=None, metavar="FILE", help=csv_help + " (atomically)")
    p.add_argument("--report", default=None, metavar="FILE.md",
                   help=f"write a Markdown report: {report_help} (atomically)")


def write_outputs(args: argparse.Namespace, kind: str, result: dict[str, Any]) -> list[str]:
    """Write what --csv and --report ask for (kind: probe, train, sweep, theory, jacobian or widths); each written
    path is named on stderr so that stdout keeps only the command's own output."""
    from initlab.engine import report

    csv, md = getattr(args, "csv", None), getattr(args, "report", None)
    if not csv and not md:
        return []
    written = report.write(kind, result, csv=csv, report=md)
    for path in (p for p in (csv, md) if p):     # as given, as --out and --save-config name theirs
        sys.stderr.write(f"wrote {path}\n")
    return written
