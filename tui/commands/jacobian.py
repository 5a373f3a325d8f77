"""`initlab jacobian`: singular values of the network's input-output Jacobian at init, as a log10 histogram."""
from __future__ import annotations

import argparse
import sys
import math

from .outputs import add_output_flags, write_outputs
from .common import (add_config_flags, config_from_args, fmt, given_flags, print_json, save_config, say, unread_notes,
                     wants_json)

BAR = 40


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jacobian", help="singular values of the input-output Jacobian at init",
                       description=__doc__ + " All equal to 1 is dynamical isometry (an orthogonal linear net); "
                       "a wide spread means some input directions are amplified far more than others (most "
                       "often, many nearly vanish).")
    add_config_flags(p, groups=("model", "init", "run"))
    p.add_argument("--inputs", default="1", metavar="N",
                   help="average the sorted spectra over N random N(0, 1) inputs: an integer in [1, 256] (default 1)")
    p.add_argument("--bins", default="20", metavar="K",
                   help="histogram bins over log10 of the values: an integer in [1, 1000] (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    add_output_flags(p, csv_help="write the singular values as CSV",
                     report_help="settings, the spectrum's max, min, condition number and rank, the histogram")
    p.set_defaults(func=run)


ALLOWED = {"inputs": "an integer in [1, 256]", "bins": "an integer in [1, 1000]"}


def _int(name: str, raw: str) -> int:
    from initlab.engine.spec import SpecError, plain_int

    try:
        return plain_int(raw)
    except ValueError:
        raise SpecError(name, raw, ALLOWED[name]) from None


def histogram_text(hist: dict) -> str:
    counts, edges = hist["counts"], hist["edges"]
    top = max(counts + [1])
    # as many decimals as it takes for neighbouring edges to differ (a spread of 1e-7 is not one label repeated)
    step = min((b - a for a, b in zip(edges[:-1], edges[1:]) if b > a), default=1.0)
    dec = min(12, max(2, 1 - math.floor(math.log10(step)))) if step > 0 and math.isfinite(step) else 2
    w = dec + 5
    lines = ["log10(singular value)   count"]
    if not sum(counts):     # nothing above zero to bin: the counts apart say it all
        lines = ["log10(singular value): no value above zero or the resolution to bin"]
        counts = []
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        lines.append(f"[{a:{w}.{dec}f}, {b:{w}.{dec}f})  {'#' * round(BAR * c / top):<{BAR}} {c}")
    if hist["zeros"]:
        lines.append(f"exactly zero: {hist['zeros']}")
    if hist.get("unresolved"):
        lines.append(f"below the resolution (numerically zero): {hist['unresolved']}")
    return "\n".join(lines)


def min_text(res: dict) -> str:
    """The smallest singular value, or what can be said of it when it is below what the SVD resolves."""
    from initlab.engine.jacobian import shortfall

    k = len(res["singular_values"])
    zeros, below = shortfall(res)
    if res["max"] == 0:
        return (f"0 (all {k} values exactly zero: no input direction reaches the output, or what does is below "
                f"{res['dtype']}'s smallest number)")
    if zeros:
        more = f", and {below - zeros} more below {fmt(res['resolution'])}, the resolution here" if below > zeros else ""
        return f"0 ({zeros} of {k} values exactly zero{more})"
    if below:
        return (f"below {fmt(res['resolution'])}, the resolution of {res['dtype']} here "
                f"({below} of {k} values; computed {fmt(res['min'])}, rounding noise)")
    return fmt(res["min"])


def condition_text(res: dict) -> str:
    if res.get("condition_at_least") is not None:
        return f"above {fmt(res['condition_at_least'])} (numerically singular)"
    if res["max"] == 0:
        return "undefined (0 / 0: the Jacobian is zero)"
    if res["condition_number"] == float("inf"):
        return "inf (singular)"
    return fmt(res["condition_number"])


def run(args: argparse.Namespace) -> int:
    from initlab.engine.jacobian import jacobian_spectrum
    from initlab.engine.report import averaged_note

    cfg = config_from_args(args)
    res = jacobian_spectrum(cfg, _int("inputs", args.inputs), _int("bins", args.bins))
    save_config(args, cfg)
    for note in unread_notes(args, cfg, train=False, skip=("dropout",)):
        say(note)
    given = given_flags(args)
    if cfg.dropout > 0 and "dropout" in given:      # in eval mode: a note, as for any setting the run does not read
        say(f"initlab: note: the Jacobian is taken in eval mode, dropout off; --dropout {fmt(cfg.dropout)} was not "
            "used")
    if cfg.norm == "batch" and "norm" in given:
        say("initlab: note: in eval mode batch norm uses its running statistics, at init mean 0 and variance 1: "
            "it leaves z as it is (up to its eps)")
    write_outputs(args, "jacobian", res)
    if wants_json(args):
        print_json(res)
        return 0
    out, inp = res["shape"]
    say(f"Jacobian {out} x {inp} of {cfg.depth} x {cfg.width} {cfg.activation}, init {cfg.init}, "
        f"{res['inputs']} input(s), {res['dtype']} on {res['device']}", sys.stdout)
    print(f"  max singular value   {fmt(res['max'])}")
    say(f"  min singular value   {min_text(res)}", sys.stdout, indent=23)      # under the values
    say(f"  condition number     {condition_text(res)}", sys.stdout, indent=23)
    print(f"  mean squared         {fmt(res['mean_squared'])}")
    note = averaged_note(res)
    if note:
        say(f"  ({note})", sys.stdout, indent=3)
    print()
    print(histogram_text(res["histogram"]))
    return 0
