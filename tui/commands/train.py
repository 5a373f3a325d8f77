"""`initlab train`: train an MLP with per-layer statistics every few steps; a progress bar, a table, or JSON."""
from __future__ import annotations

import argparse
import sys
import time

from .common import (add_config_flags, config_from_args, fmt, given_flags, given_settings, command_preset,
                     print_json, save_config, table, unread_notes, wants_json)
from .outputs import add_output_flags, write_outputs

LAYER_COLUMNS = ["index", "a_std", "saturated_frac", "dead_frac", "grad_z_std", "grad_w_absmean", "grad_to_weight",
                 "fwd_var_ratio", "bwd_var_ratio", "distinct_units"]
LAYER_HEADERS = ["layer", "a std", "sat", "dead", "dL/dz std", "|dW| mean", "dW/W", "fwd var", "bwd var", "units"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network and watch its per-layer statistics", description=__doc__)
    add_config_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--out", default=None, metavar="FILE.json",
                   help="write the run's history, every epoch and sampled step (a long run's series keep every other "
                        "entry past 2048 epochs or 512 sampled steps, the first and latest always; a note says so) "
                        "(atomically)")
    add_output_flags(p, csv_help="write a CSV of the epochs (table=epoch) and the final per-layer statistics "
                                 "(table=final_layer), one file")
    p.set_defaults(func=run)


class Bar:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.pending = None         # an update not drawn yet (too soon after the one before)

    def __call__(self, ev) -> None:
        from initlab.engine.events import Progress

        if not isinstance(ev, Progress):
            return
        now = time.monotonic()
        if now - self.last < 0.1 and ev.step < ev.total_steps:
            self.pending = ev
            return
        self.last = now
        self._draw(ev)

    def close(self) -> None:
        """Draw the latest update if it was held back (a run that stopped short ends where it stopped), then end
        the line."""
        if self.pending is not None:
            self._draw(self.pending)
        sys.stderr.write("\n")

    def _draw(self, ev) -> None:
        self.pending = None
        frac = ev.step / max(ev.total_steps, 1)
        done = int(30 * frac)
        sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {ev.step}/{ev.total_steps} epoch {ev.epoch}/"
                         f"{ev.epochs} loss {fmt(ev.loss)} {ev.steps_per_sec:,.0f} steps/s ")
        sys.stderr.flush()


def thinned_note(res: dict) -> str:
    """A note when the history kept fewer epochs or sampled steps than the run had (a bounded series thins)."""
    ran = res["epochs"][-1]["epoch"] if res["epochs"] else 0
    every = int(res["config"]["stats_every"])
    sampled = -(-res["steps_done"] // every)
    parts = []
    if len(res["epochs"]) < ran:
        parts.append(f"{len(res['epochs'])} of {ran} epochs")
    if len(res["steps"]) < sampled:
        parts.append(f"{len(res['steps'])} of {sampled} sampled steps")
    if not parts:
        return ""
    return (f"initlab: note: the history keeps {' and '.join(parts)} (a series past its capacity keeps every other "
            f"entry, the first and the latest always)")


def print_run(res: dict) -> None:
    print(table(res["final"]["layers"], LAYER_COLUMNS, LAYER_HEADERS))
    print()
    cols = ["epoch", "train_loss", "test_loss"] + (["train_acc", "test_acc"] if res.get("task") == "classification"
                                                   else [])
    print(table(res["epochs"], cols, [c.replace("_", " ") for c in cols]))


def stop_on_interrupt():
    """(check, stopped): the first ctrl-c asks the run to stop after its step (check() then raises JobCancelled), so
    that what it learnt is still shown and written; a second one quits at once."""
    import signal
    import threading

    from initlab.engine.session import JobCancelled

    asked = threading.Event()

    def on_interrupt(signum, frame) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        sys.stderr.write("\ninitlab: stopping after this step (ctrl-c again to quit at once)\n")

    def check() -> None:
        if asked.is_set():
            raise JobCancelled()

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:          # not the main thread: ctrl-c cannot reach this run anyway
        return check, lambda: None
    return check, lambda: signal.signal(signal.SIGINT, previous)


def print_stopped(res: dict) -> None:
    runs = res.get("runs", [res])
    for i, r in enumerate(runs):
        which = f"run {i + 1} (seed {r['config']['seed']}) " if len(runs) > 1 else ""
        if r["stopped"] == "nonfinite":
            nf = r["nonfinite"]
            print(f"\n{which}stopped: non-finite {nf['tensor']} at step {nf['step']}"
                  + (f", layer {nf['layer']}" if nf["layer"] is not None else ""))
        elif r["stopped"] == "cancelled":
            print(f"\n{which}stopped: interrupted at step {r['steps_done']} of {r['total_steps']}")


def run(args: argparse.Namespace) -> int:
    from initlab.engine.export import write_json
    from initlab.engine.train import run_training

    seeds: tuple[int, ...] = ()
    p = command_preset(args, "train")
    if p is not None and p.kind == "train" and "seed" not in given_settings(args):     # a seed given runs it alone
        seeds = p.seeds
    cfg = config_from_args(args)
    interactive = not wants_json(args)
    bar = Bar() if interactive else None
    check, restore = stop_on_interrupt()
    try:
        res = run_training(cfg, emit=bar, check=check, seeds=seeds, ready=lambda: save_config(args, cfg))
    finally:
        restore()
    if bar is not None:
        bar.close()
    write_outputs(args, "train", res)      # built before any is written: a failure there leaves --out as it was
    if args.out:
        write_json(args.out, res)
        sys.stderr.write(f"wrote {args.out}\n")       # as every other file is named: stdout keeps the output
    if wants_json(args):
        print_json(res)
    else:
        for i, r in enumerate(res.get("runs", [res])):
            if "runs" in res:
                print(f"\nrun {i + 1}: seed {r['config']['seed']}")
            print_run(r)
        print_stopped(res)
    given = given_flags(args)       # a config file holds every setting: its sizes are not the user's ask
    for k in ("in_features", "out_features"):
        if k in given and str(given[k]).strip() != str(res["config"][k]):
            sys.stderr.write(f"initlab: note: {k} follows the data ({res['config'][k]}); {given[k]} was not used\n")
    for note in unread_notes(args, cfg, train=True, skip=("in_features", "out_features")):
        sys.stderr.write(note + "\n")
    for r in res.get("runs", [res]):
        note = thinned_note(r)
        if note:
            sys.stderr.write(note + "\n")
    stopped = [r["stopped"] for r in res.get("runs", [res])]
    if "cancelled" in stopped:
        return 130
    return 1 if "nonfinite" in stopped else 0
