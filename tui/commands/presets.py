"""`initlab presets`: the named experiments that reproduce the reference lessons, one line each."""
from __future__ import annotations

import argparse

from .common import print_json, wants_json

MATRIX = ("random-matrix", "probe", "100 products of random 4 x 4 N(0, 1) matrices: the largest entry is about 1e25 in the median over draws (10% to 90% of them: 4e22 to 9e26)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the named experiments", description=__doc__)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.set_defaults(func=run)


def rows() -> list[tuple[str, str, str]]:
    from initlab.engine.presets import PRESETS
    from initlab.engine.sweep import SWEEP_PRESETS

    return ([(p.name, p.kind, p.summary) for p in PRESETS.values()] + [MATRIX]
            + [(p.name, "sweep", p.summary) for p in SWEEP_PRESETS.values()])


def run(args: argparse.Namespace) -> int:
    items = rows()
    if wants_json(args):
        print_json({n: {"kind": k, "summary": s} for n, k, s in items})
        return 0
    w = max(len(n) for n, _, _ in items)
    for n, k, s in items:
        print(f"{n.ljust(w)}  {k:5s}  {s}")
    print("\nrun one with `initlab probe --preset NAME`, `initlab train --preset NAME` or `initlab sweep --preset NAME`")
    return 0
