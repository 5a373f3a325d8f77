"""`initlab gain`: per activation, the largest derivative, torch's gain and the measured gain."""
from __future__ import annotations

import argparse
import sys

from .common import print_json, say, table, wants_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gain", help="activation gains: max f', torch's gain, std(x)/std(f(x)) and "
                                    "sqrt(E[x^2]/E[f(x)^2]) for x ~ N(0, 1)", description=__doc__)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from initlab.engine.activations import gain_table

    rows = gain_table()
    if wants_json(args):
        print_json({r.name: {"max_derivative": r.max_derivative, "torch_gain": r.torch_gain,
                             "empirical": r.empirical, "rms_gain": r.rms} for r in rows})
        return 0
    print(table([r.__dict__ for r in rows], ["name", "max_derivative", "torch_gain", "empirical", "rms"],
                ["activation", "max f'", "torch gain", "std ratio", "rms ratio"]))
    # the course's gain is the std ratio; Kaiming's is the second moment's, which a mean sets apart
    say("std ratio: std(x) / std(f(x)) for x ~ N(0, 1), the course's measured gain; rms ratio: sqrt(E[x^2] / "
        "E[f(x)^2]), the second moment's, which a Linear carries on: Kaiming's sqrt 2 for the ReLU family (the two "
        "ratios differ where f has a mean); torch's other gains are rules of thumb", sys.stdout)
    return 0
