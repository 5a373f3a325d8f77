"""`initlab widths`: muP's coordinate check, mean |a| per layer against width over the first training steps."""
from __future__ import annotations

import argparse

from initlab.engine.reads import WIDTHS_GROUPS, WIDTHS_UNREAD

from .outputs import add_output_flags, write_outputs
from .common import (add_config_flags, config_from_args, fmt, given_flags, print_json, save_config, say, table,
                    unread_notes, wants_json)

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("widths", help="coordinate check: per-layer mean |a| against width over the first steps",
                       description=__doc__ + " Slope is d log(mean |a|) / d log(width): near 0 is width-stable.")
    # no data: every width trains on one fixed N(0, 1) batch toward fixed N(0, 1) targets
    add_config_flags(p, groups=WIDTHS_GROUPS, hidden=WIDTHS_UNREAD,
                     helps={"in_features": "input size (the columns of the fixed N(0, 1) batch)",
                            "out_features": "output size (the columns of the batch's N(0, 1) targets)",
                            "batch": "rows of the fixed batch every width trains on"})
    p.add_argument("--widths", default="64,128,256,512,1024", metavar="W1,W2,...",
                   help="hidden widths to compare (default 64,128,256,512,1024)")
    p.add_argument("--steps", default="5", metavar="N", help="training steps on one fixed N(0, 1) batch: an integer in [0, 1000] (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    add_output_flags(p, csv_help="write a row per width, step and layer as CSV",
                     report_help="settings, mean |a| per layer against width at each step, the slopes")
    p.set_defaults(func=run)


def nonfinite_notes(res: dict) -> list[str]:
    """Per width whose training went non-finite, where it first did: the table's nan cells say it, this says when."""
    from initlab.engine.report import widths_nonfinite_text

    return [f"initlab: note: {text}" for text in widths_nonfinite_text(res)]


def step_table(res: dict, key: str, slope_key: str, t: int) -> str:
    rows = []
    for l, name in enumerate(res["layer_names"]):
        row = {"layer": l}
        for i, w in enumerate(res["widths"]):
            row[str(w)] = res[key][i][t][l]
        row["slope"] = res[slope_key][t][l]
        rows.append(row)
    cols = ["layer"] + [str(w) for w in res["widths"]] + ["slope"]
    return table(rows, cols, ["layer"] + [f"w={w}" for w in res["widths"]] + ["slope"])


def run(args: argparse.Namespace) -> int:
    from initlab.engine.spec import SpecError
    from initlab.engine.spec import parse_widths, plain_int
    from initlab.engine.widths import MAX_STEPS, width_check

    for name, value in given_flags(args).items():
        if name in WIDTHS_UNREAD:     # refused as flags rather than ignored (a config file's are passed over)
            raise SpecError(name, value, f"not with widths: {WIDTHS_UNREAD[name]}")
    cfg = config_from_args(args)
    widths = parse_widths(args.widths)
    try:
        steps = plain_int(args.steps)
    except ValueError:
        raise SpecError("steps", args.steps, f"an integer in [0, {MAX_STEPS}]") from None
    res = width_check(cfg, widths, steps)
    save_config(args, cfg)
    for note in unread_notes(args, cfg, train=True, skip=("in_features", "out_features")):     # its own batch
        say(note)
    broken = nonfinite_notes(res)
    for note in broken:
        say(note)
    write_outputs(args, "widths", res)
    status = 1 if broken else 0         # as train's: a run that went non-finite did not give its figures
    if wants_json(args):
        print_json(res)
        return status
    print(f"{cfg.depth} layers, {cfg.activation}, init {cfg.init}, {cfg.optimizer} lr {fmt(cfg.lr)}, "
          f"batch {cfg.batch}, widths {', '.join(map(str, widths))}")
    print("\nmean |a| at step 0 (before training)")
    print(step_table(res, "mean_abs_a", "slopes", 0))
    if steps > 0:
        after = f"{steps} step{'s' if steps != 1 else ''}"
        print(f"\nmean |a| after {after}")
        print(step_table(res, "mean_abs_a", "slopes", steps))
        print(f"\nmean |a - a_0| after {after} (how far training moved each layer)")
        print(step_table(res, "mean_abs_delta", "delta_slopes", steps))
    print("\nslope: d log(mean |a|) / d log(width); near 0 is width-stable, 1 grows like the width"
          + (" (after a few steps mean |a| is mostly the init's: the slope of mean |a - a_0| says how training's "
             "moves scale)" if steps > 0 else ""))
    return status
