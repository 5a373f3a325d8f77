"""`initlab probe --model FILE.py:FACTORY`: the probe of a user's own model, as a table or JSON."""
from __future__ import annotations

import argparse
import contextlib
import sys

from .common import config_from_args, fmt, given_flags, given_settings, print_json, say, table, wants_json
from .outputs import write_outputs

COLUMNS = ["index", "name", "kind", "shape", "calls", "a_mean", "a_std", "grad_z_std", "grad_w_absmean", "w_std",
           "grad_to_weight"]
HEADERS = ["#", "module", "kind", "output", "calls", "out mean", "out std", "dL/dout std", "|dL/dW| mean", "W std",
           "dW/W"]
KEPT = ("seed", "device")       # the MLP settings that still mean something for a user's model


def run_model(args: argparse.Namespace) -> int:
    from initlab.engine.anyprobe import run_user_probe
    from initlab.engine.spec import SpecError
    from initlab.engine.usermodel import make_spec

    given = given_settings(args)
    extra = [k for k in given if k not in KEPT]
    if extra:
        where = "" if extra[0] in given_flags(args) else f" ({extra[0]} is the --config file's)"
        raise SpecError(extra[0], given[extra[0]],
                        "not with --model (it sets the built-in MLP); --model takes --input-shape, --layers, --seed "
                        f"and --device{where}")
    if args.preset:
        raise SpecError("preset", args.preset, "not with --model")
    if args.save_config:
        raise SpecError("save_config", args.save_config, "not with --model (a config file holds the built-in "
                                                          "MLP's settings, not your model's)")
    cfg = config_from_args(args)
    # what the model's own code prints goes to stderr where stdout holds the JSON: one object and nothing else
    with contextlib.redirect_stdout(sys.stderr if wants_json(args) and sys.stderr is not None else sys.stdout):
        spec = make_spec(args.model, args.input_shape, args.layers, cfg.seed, cfg.device)
        res = run_user_probe(spec)
    out = res.to_json()
    write_outputs(args, "probe", out)
    if wants_json(args):
        print_json(out)
        return 0
    rows = [{**r, "shape": "x".join(map(str, r["shape"])) if r["shape"] else None} for r in res.layers]
    print(table(rows, COLUMNS, HEADERS, keys=3))       # the row's number, module and kind in every block
    v = res.verdict
    where = f" from module {v['from_layer']}" if v["from_layer"] is not None else ""
    print()
    say(f"verdict: {v['kind']}{where}; first/last |dL/dW| ratio {fmt(v['first_last_grad_ratio'])}, "
        f"first/last dL/dout RMS ratio {fmt(v['first_last_gradz_ratio'])}", sys.stdout)
    if v.get("note"):
        say(v["note"], sys.stdout)
    loss = f"loss {fmt(res.loss)} from {res.loss_source}" if res.loss is not None else f"loss from {res.loss_source}"
    print(f"{loss}; {len(res.params)} parameter tensors")
    for w in res.warnings:
        say(f"warning: {w['message']}", sys.stdout)
    print(f"{res.model} on {res.device}, torch {res.torch}, {res.seconds:.2f} s", file=sys.stderr)
    return 0
