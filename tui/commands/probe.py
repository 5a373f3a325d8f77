"""`initlab probe`: one forward and backward pass, a table of per-layer statistics and the verdict."""
from __future__ import annotations

import argparse
import sys

from .common import (add_config_flags, command_preset, config_from_args, fmt, given_settings, print_json, save_config,
                    preset_note, say, table, unread_notes, verdict_line, wants_json)
from .outputs import add_output_flags, write_outputs

COLUMNS = ["index", "fan_in", "fan_out", "z_std", "a_std", "saturated_frac", "dead_frac", "grad_z_std",
           "grad_w_absmean", "grad_to_weight", "fwd_var_ratio", "bwd_var_ratio", "distinct_units"]
HEADERS = ["layer", "in", "out", "z std", "a std", "sat", "dead", "dL/dz std", "|dL/dW| mean", "dL/dW / W",
           "fwd var", "bwd var", "units"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="probe a freshly initialised network", description=__doc__)
    add_config_flags(p, groups=("model", "init", "probe", "run"))
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--model", default=None, metavar="FILE.py:FACTORY",
                   help="probe your own model: FILE.py:FACTORY or package.module:FACTORY; factory() returns an "
                        "nn.Module, (module, inputs) or (module, inputs, loss_fn)")
    p.add_argument("--input-shape", default=None, metavar="N,C,H,W",
                   help="with --model: draw N(0, 1) inputs of this shape (replaces the factory's inputs)")
    p.add_argument("--layers", default=None, metavar="REGEX", help="with --model: keep the modules whose names match")
    add_output_flags(p)
    p.set_defaults(func=run)


def run_matrix(args: argparse.Namespace) -> int:
    from initlab.engine.probe import random_matrix_run
    from initlab.engine.spec import SpecError, check_value, parse_value

    given = given_settings(args)
    # the preset named by a config file's preset key is said as such: the flag given beside it is not the mistake
    which = ("preset random-matrix (the --config file's preset key)" if getattr(args, "preset_from_config", False)
             else "--preset random-matrix")
    for name, value in given.items():
        if name != "seed":
            raise SpecError(name, value, f"not with {which} (it takes --seed and --json)")
    if args.save_config:
        raise SpecError("save_config", args.save_config, f"not with {which} (it has no network)")
    raw = given.get("seed", 0)
    seed = parse_value("seed", raw)
    check_value("seed", seed)
    run = random_matrix_run(4, 100, seed)
    norms = run["norms"]
    if wants_json(args):
        print_json({"experiment": "random-matrix", "n": 4, "steps": 100, "seed": seed, **run})
    else:
        for i in (0, 9, 24, 49, 74, 99):
            print(f"after {i + 1:3d} products: norm {norms[i]:.3e}")
        print(f"largest |entry| after 100 products: {run['max_entry']:.3e} (seed {seed})")
        print(f"over {run['draws']} products drawn alike: median {run['max_entry_median']:.2e}, "
              f"10% to 90% of them {run['max_entry_p10']:.2e} to {run['max_entry_p90']:.2e}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        from .probe_model import run_model

        return run_model(args)
    for name in ("input_shape", "layers"):
        if getattr(args, name) is not None:
            from initlab.engine.spec import SpecError

            raise SpecError(name, getattr(args, name), "only with --model")
    if args.preset == "random-matrix":
        if args.csv or args.report:
            from initlab.engine.spec import SpecError

            raise SpecError("preset", args.preset, "a network probe with --csv or --report (random-matrix prints "
                                                   "its norms; use --json)")
        return run_matrix(args)
    from initlab.engine.probe import run_probe
    from initlab.engine.verdict import symmetry_note

    command_preset(args, "probe", extra=("random-matrix",))
    cfg = config_from_args(args)
    res = run_probe(cfg, distributions=False)     # the quantile boxes are the app's; the table does not show them
    save_config(args, cfg)
    write_outputs(args, "probe", res.to_json())
    for note in filter(None, [preset_note(args)]):
        say(note)
    for note in unread_notes(args, cfg, train=False):
        say(note)
    if wants_json(args):
        out = res.to_json()
        out.pop("distributions")
        print_json(out)
        return 0
    print(table(res.layers, COLUMNS, HEADERS))
    v = res.verdict
    print("\n" + verdict_line(v))
    for note in (v.get("note"), symmetry_note(res.layers)):
        if note:
            say(note, sys.stdout)
    if res.first_nonfinite_layer is not None:
        print(f"first non-finite output: layer {res.first_nonfinite_layer}")
    if res.loss is not None:
        print(f"loss: {fmt(res.loss)}")
    print(f"device {res.device}, torch {res.torch}, {res.seconds:.2f} s", file=sys.stderr)
    return 0
