"""`initlab presets`: the named experiments that reproduce the reference lessons, one line each."""
from __future__ import annotations

import argparse
import textwrap

from .common import print_json, terminal_width, wants_json

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
    lead = w + 9        # name, two spaces, kind, two spaces
    width = terminal_width()
    for n, k, s in items:
        head = f"{n.ljust(w)}  {k:5s}  "
        if width is None or width - lead < 30:      # no terminal, or too narrow to wrap beside the names
            print(head + s)
            continue
        # wrapped at words, each line under the summary column: a terminal's own wrap splits words at column 0
        lines = textwrap.wrap(s, width - lead - 1) or [""]
        print(head + lines[0])
        for ln in lines[1:]:
            print(" " * lead + ln)
    print("\n" + "\n".join(textwrap.wrap("run one with `initlab probe --preset NAME`, `initlab train --preset NAME` or "
                                         "`initlab sweep --preset NAME`", (width or 200) - 1)))
    return 0
