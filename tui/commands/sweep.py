"""`initlab sweep`: the probe (or a short training) over a grid of settings; a table per point, a heatmap for two."""
from __future__ import annotations

import argparse
import sys

from initlab.engine.report import edge_of_chaos_text, heatmap_text
from initlab.engine.sweep import METRICS

from .outputs import add_output_flags, write_outputs
from .common import (add_config_flags, config_from_args, flag_text, given_flags, given_settings, print_json,
                    save_config, say, table, terminal_width, unread_notes, wants_json)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run the probe or a short training over a grid of settings",
                       description=__doc__ + " Example: initlab sweep --vary depth=10,20,50 "
                       "--vary init=xavier_uniform,kaiming_normal; --vary seed=0,1,2 gives mean and std; "
                       "--preset edge-of-chaos-tanh draws the phase diagram. Ctrl-C keeps the points done.")
    add_config_flags(p)
    p.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="a setting and its values (repeat for a grid; poly_w values are separated by ';')")
    p.add_argument("--train", action="store_true", help="train at every point instead of probing")
    p.add_argument("--metric", default="log10_gradz_ratio",
                   help="the number the heatmap shows when two settings vary, and the report's figure: one of "
                   + ", ".join(METRICS) + " (default log10_gradz_ratio)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    add_output_flags(p, csv_help="write a row per point as CSV",
                     report_help="settings, a row per point, a text figure, the heatmap when two settings vary")
    p.set_defaults(func=run)


def plan(args: argparse.Namespace):
    """(base config, vary) from a sweep preset or a config preset, --config, the flags and --vary."""
    from initlab.engine import sweep
    from initlab.engine.spec import SpecError

    from initlab.engine.presets import PRESETS

    vary: dict = {}
    base = None
    if args.preset and args.preset not in sweep.SWEEP_PRESETS and args.preset not in PRESETS:
        raise SpecError("preset", args.preset, "a sweep preset (" + ", ".join(sweep.SWEEP_PRESETS)
                        + ") or an experiment to start from (" + ", ".join(PRESETS) + ")")
    if args.preset in sweep.SWEEP_PRESETS:
        sp = sweep.get_preset(args.preset)
        base, vary = sp.config, {k: list(v) for k, v in sp.vary.items()}
        args.sweep_preset, args.preset = args.preset, None     # named in a saved config, whose grid it brings
    cfg = config_from_args(args, base)
    vary.update(sweep.parse_vary(args.vary))
    seeds = PRESETS[args.preset].seeds if args.preset in PRESETS else ()
    if len(seeds) > 1 and "seed" not in vary and "seed" not in given_settings(args):
        vary["seed"] = list(seeds)         # a preset of several seeds runs them all at every point
    if not vary:
        raise SpecError("vary", "", "at least one --vary NAME=V1,V2,... or --preset "
                        + ", ".join(sweep.SWEEP_PRESETS))
    if args.metric not in sweep.METRICS:
        raise SpecError("metric", args.metric, "one of " + ", ".join(sweep.METRICS))
    if args.metric in ("train_loss", "test_loss") and not args.train:
        probes = [m for m in sweep.METRICS if m not in ("train_loss", "test_loss")]
        raise SpecError("metric", args.metric, "with --train only; a probe's: " + ", ".join(probes))
    if args.metric in sweep.THEORY_METRICS and not any(sweep.described_by_theory(cfg.replace(**values))
                                                       for values in sweep.grid(vary)):
        # refused before any point runs: the theory's figures exist only for the net it describes
        raise SpecError("metric", args.metric, f"a metric these points have (mean field's {args.metric} needs "
                                               f"{sweep.THEORY_NET}: --init scaled_normal)")
    return cfg, vary


def repeats_noted(items: list[str]) -> list[str]:
    """A note for each --vary that gives a value twice (`depth=4,4`): the grid runs it once."""
    from initlab.engine.spec import FIELDS
    from initlab.engine.sweep import parse_vary

    notes = []
    for item in items:
        ((name, values),) = parse_vary([item]).items()
        given = item.partition("=")[2].split(";" if FIELDS[name].kind is tuple else ",")
        if len(given) > len(values):
            notes.append(f"initlab: note: --vary {name} gives a value more than once; each runs once "
                         f"({len(values)} of {len(given)})")
    return notes


def columns(vary: dict, rows: list[dict], train: bool) -> tuple[list[str], list[str]]:
    from initlab.engine.sweep import varied_axes

    cols = varied_axes(vary) + ["verdict", "first_last_gradz_ratio", "log10_gradz_ratio"]
    heads = varied_axes(vary) + ["verdict", "dL/dz first/last", "log10"]
    seeds = any(r.get("runs", 1) > 1 for r in rows)
    if seeds:
        cols, heads = cols + ["log10_gradz_ratio_std"], heads + ["log10 std"]
    cols += ["first_last_grad_ratio", "last_a_std"]
    heads += ["|dW| first/last", "last a std"]
    if seeds:
        cols, heads = cols + ["last_a_std_std"], heads + ["a std std"]
    if any("chi1" in r for r in rows):
        cols += ["chi1", "phase", "predicted_log10_gradz_ratio"]
        heads += ["chi_1", "phase", "theory log10"]
    if train:
        cols += ["train_loss", "test_loss"]
        heads += ["train loss", "test loss"]
    if seeds:
        cols, heads = cols + ["runs"], heads + ["seeds"]
    return cols, heads


def run(args: argparse.Namespace) -> int:
    from initlab.engine import sweep
    from initlab.engine.inits import grid_gain_note

    cfg, vary = plan(args)
    grid = sweep.point_configs(cfg, vary, args.train)       # every point checked before saving
    points = [c for _, c in grid]
    save_config(args, cfg)
    notes = unread_notes(args, cfg, train=args.train, skip=tuple(vary), points=points)
    # a flag naming a varied setting: the grid's values stand in for it at every point
    notes += [f"initlab: note: --vary {k}=... gives its values; {flag_text(k, v)} was not used"
              for k, v in given_flags(args).items() if k in vary]
    notes += repeats_noted(args.vary or [])
    if args.metric != "log10_gradz_ratio" and len(sweep.varied_axes(vary)) != 2 and not args.report:
        notes.append(f"initlab: note: --metric {args.metric} was not used (it picks the heatmap's number, drawn "
                     f"when two settings vary, and the figure of --report)")
    gains = grid_gain_note(points)
    notes += [f"initlab: note: {gains}"] if gains else []
    for note in notes:
        say(note)
    runs: list[dict] = []
    interrupted = False
    try:
        for r in sweep.sweep(cfg, vary, train=args.train, plan=grid):
            runs.append(r)
            print(sweep.describe_run(r), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
    res = sweep.summary(cfg, vary, runs, args.train)
    res["metric"] = args.metric         # the report's figure, and the heatmap's
    if args.metric != "log10_gradz_ratio" and "heatmap" in res:
        res["heatmap"] = sweep.heatmap(res["points"], vary, args.metric)
    if res["points"] and all(p.get(args.metric) is None for p in res["points"]):
        if args.metric == "log10_gradz_ratio" and all(p.get("first_last_gradz_ratio") == 0 for p in res["points"]):
            # measured, and -inf: the first layer's gradient vanished completely (in a seed at least)
            say("initlab: note: every point's first/last dL/dz ratio is 0 (a first layer's gradient underflowed): "
                "its log10 is -inf, no value to show")
        else:   # e.g. chi1 without a mean-field init, or a training's losses from probes
            say(f"initlab: note: no point has a value of {args.metric}")
    write_outputs(args, "sweep", res)
    if interrupted:
        # over the terminal's echo of ^C, which would lead the line
        lead = "\r" if terminal_width(sys.stderr) else ""
        say(f"{lead}initlab: interrupted after {res['done']} of {res['total']} runs; showing those")
    if wants_json(args):
        print_json(res)
        return 130 if interrupted else 0
    if res["points"]:
        cols, heads = columns(vary, res["points"], args.train)
        # a split verdict says so; an automatic gain reads auto, not the '-' of a value not measured
        shown = [{**p, "verdict": sweep.verdict_cell(p), **({"gain": sweep.value_text("gain", None)}
                                                            if "gain" in p and p["gain"] is None else {})}
                 for p in res["points"]]
        print(table(shown, cols, heads, keys=len(sweep.varied_axes(vary))))
    if "heatmap" in res:
        print()
        print(heatmap_text(res["heatmap"]))
    edge = edge_of_chaos_text(res)
    if edge:
        print("\n" + edge)
    return 130 if interrupted else 0
