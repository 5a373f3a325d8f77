"""`initlab theory`: the mean-field fixed point q*, chi_1, the depth scales and the phase for one setting."""
from __future__ import annotations

import argparse
import sys

from initlab.engine.textplot import fmt_near_one

from .common import fmt, print_json, say, unread_notes, wants_json
from .outputs import add_output_flags, write_outputs

FLAGS = ("activation", "sigma_w", "sigma_b", "slope")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("theory", help="mean-field theory: q*, chi_1, depth scales, ordered or chaotic",
                       description=__doc__ + " The variance map starts from a pre-activation variance of 1 (q0); "
                       "where another start reaches another fixed point, a note says so. Depth scales are infinite "
                       "at criticality, and q* where the variance grows without bound (null in JSON, with "
                       "q_star_infinite true); a negative backward depth scale means gradients grow towards the "
                       "input.")
    from initlab.engine.spec import allowed

    p.add_argument("--activation", default=None, help=f"activation: {allowed('activation')} (default tanh)")
    p.add_argument("--sigma-w", dest="sigma_w", default=None, metavar="W",
                   help=f"weight std times sqrt(fan_in): {allowed('sigma_w')} (default 1)")
    p.add_argument("--sigma-b", dest="sigma_b", default=None, metavar="B",
                   help=f"bias std: {allowed('sigma_b')} (default 0)")
    p.add_argument("--slope", default=None, help=f"negative slope of leaky_relu: {allowed('slope')} (default 0.01)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    add_output_flags(p, csv_help="write the figures as one CSV row", report_help="settings and the mean-field figures")
    p.set_defaults(func=run)


def compute(activation: str, sigma_w: float, sigma_b: float, slope: float) -> dict:
    from initlab.engine import theory

    out = theory.mean_field(activation, sigma_w, sigma_b, slope)
    if activation == "leaky_relu":      # the figures depend on it: the result says which
        out = {**{k: out[k] for k in ("activation", "sigma_w", "sigma_b")}, "slope": float(slope), **out}
    out.update(theory.elsewhere(activation, sigma_w, sigma_b, slope, q_star=out["q_star"]))
    sw = theory.critical_sigma_w(activation, sigma_b, slope)
    out["critical_sigma_w"] = sw
    out["critical_sigma_w2"] = None if sw is None else sw * sw
    return out


def run(args: argparse.Namespace) -> int:
    from initlab.engine import spec
    from initlab.engine.report import theory_notes

    given = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
    cfg = spec.from_mapping(given)
    res = compute(cfg.activation, cfg.sigma_w, cfg.sigma_b, cfg.slope)
    write_outputs(args, "theory", res)
    # slope alone may go unread (an activation other than leaky_relu); the sigmas are the theory's own, whatever init
    for note in unread_notes(args, cfg, train=False, skip=("activation", "sigma_w", "sigma_b")):
        say(note)
    if wants_json(args):
        print_json(res)
        return 0
    rows = [("q*", res["q_star"]), ("c*", res["c_star"]), ("chi_1", res["chi1"]), ("chi_c", res["chi_c"]),
            ("phase", res["phase"]), ("forward depth scale", res["depth_scale_forward"]),
            ("backward depth scale", res["depth_scale_backward"])]
    slope = f" (slope {fmt(cfg.slope)})" if "slope" in res else ""
    print(f"{cfg.activation}{slope}, sigma_w {fmt_near_one(cfg.sigma_w)} (sigma_w^2 {fmt_near_one(cfg.sigma_w ** 2)}), "
          f"sigma_b {fmt(cfg.sigma_b)} (sigma_b^2 {fmt(cfg.sigma_b ** 2)})")
    for name, v in rows:
        print(f"  {name:22s}{fmt_near_one(v) if name in ('chi_1', 'chi_c') else fmt(v)}")
    for note in theory_notes(res):
        say(note, sys.stdout)
    return 0
