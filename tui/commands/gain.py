"""`initlab gain`: per activation, the largest derivative, torch's gain and the measured gain."""
from __future__ import annotations

import argparse

from .common import print_json, table, wants_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gain", help="activation gains: max f', torch's gain, empirical std(x)/std(f(x))",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from initlab.engine.activations import gain_table

    rows = gain_table()
    if wants_json(args):
        print_json({r.name: {"max_derivative": r.max_derivative, "torch_gain": r.torch_gain,
                             "empirical": r.empirical} for r in rows})
        return 0
    print(table([r.__dict__ for r in rows], ["name", "max_derivative", "torch_gain", "empirical"],
                ["activation", "max f'", "torch gain", "empirical gain"]))
    return 0
