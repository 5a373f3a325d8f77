"""`initlab train`: train an MLP with per-layer statistics every few steps; a progress bar, a table, or JSON."""
from __future__ import annotations

import argparse
import sys
import time

from initlab.engine.spec import Config

from .common import (add_config_flags, command_preset, config_from_args, fmt, given_flags, given_settings, print_json,
                    preset_note, save_config, say, table, terminal_width, unread_notes, verdict_line,
                    wants_json)
from .outputs import add_output_flags, write_outputs

TRAIN_DEFAULTS = Config(batch=10)     # the lessons' batches of 10 (a probe's default batch is 64)

LAYER_COLUMNS = ["index", "a_std", "saturated_frac", "dead_frac", "grad_z_std", "grad_w_absmean", "grad_to_weight",
                 "fwd_var_ratio", "bwd_var_ratio", "distinct_units"]
LAYER_HEADERS = ["layer", "a std", "sat", "dead", "dL/dz std", "|dL/dW| mean", "dL/dW / W", "fwd var", "bwd var",
                 "units"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network and watch its per-layer statistics", description=__doc__)
    add_config_flags(p, defaults=TRAIN_DEFAULTS)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--out", default=None, metavar="FILE.json",
                   help="write the run's history, every epoch and sampled step (a long run's series keep every other "
                        "entry past 2048 epochs or 512 sampled steps, the first and latest always; a note says so) "
                        "(atomically)")
    add_output_flags(p, csv_help="write a CSV of the epochs (table=epoch) and the final per-layer statistics "
                                 "(table=final_layer), one file")
    p.set_defaults(func=run)


class Bar:
    """A one-line progress bar on stderr, redrawn at most ten times a second, fitted to the terminal's width (a
    line that wraps cannot be redrawn in place); a training of several seeds gets a line per run."""

    def __init__(self) -> None:
        self.last = 0.0
        self.pending = None         # an update not drawn yet (too soon after the one before)
        self.run = None             # the run whose line is being drawn
        self.drawn = 0              # characters on the line now (cleared by the next draw)

    def __call__(self, ev) -> None:
        from initlab.engine.events import Progress

        if not isinstance(ev, Progress):
            return
        if self.run is not None and ev.run != self.run:     # the run before ends on its own line
            self.close()
        now = time.monotonic()
        if now - self.last < 0.1 and ev.step < ev.total_steps and self.run is not None:
            self.pending = ev
            return
        self.last = now
        self._draw(ev)

    def close(self) -> None:
        """Draw the latest update if it was held back (a run that stopped short ends where it stopped), then end
        the line."""
        if self.pending is not None:
            self._draw(self.pending)
        if self.run is not None:
            sys.stderr.write("\n")
        self.run, self.drawn = None, 0

    def clear(self) -> None:
        """Blank the line drawn so far, and a terminal's echo of ^C after it, for a message in its place (the next
        draw starts a fresh line)."""
        if self.drawn:
            sys.stderr.write("\r" + " " * (self.drawn + 2) + "\r")      # bar_text leaves the 2 columns free
            self.drawn = 0

    def _draw(self, ev) -> None:
        self.pending = None
        self.run = ev.run
        width = terminal_width(sys.stderr) or 80
        text = bar_text(ev, width)
        if self.drawn >= width:
            # the terminal narrowed under the line drawn: it wrapped, and a return goes back to its last row only
            # (the rows above stayed as fragments): the bar goes on on a fresh line
            sys.stderr.write("\n")
            self.drawn = 0
        # spaces over what is left of a longer line before it: no ending of it stays to be misread
        sys.stderr.write("\r" + text + " " * max(0, self.drawn - len(text)))
        self.drawn = len(text)
        sys.stderr.flush()


def bar_text(ev, width: int) -> str:
    """The bar and as many of its fields as fit in width - 3 columns (the last ones left free: a line that fills
    it wraps on some terminals, and a terminal echoes ^C after it): the bar narrows to 10 cells, then the speed and
    the epoch give way; with no room for a bar, whole fields while they fit. The bar is sized against the fields
    at their widest, so that it keeps its length while the loss's text changes."""
    run = f"run {ev.run + 1}/{ev.runs}" if ev.runs > 1 else ""
    fields = [f"{ev.step}/{ev.total_steps}", f"epoch {ev.epoch}/{ev.epochs}", f"loss {fmt(ev.loss)}",
              f"{ev.steps_per_sec:,.0f} steps/s"]
    widest = [f"{ev.total_steps}/{ev.total_steps}", f"epoch {ev.epochs}/{ev.epochs}", "loss -1.000e-100",
              f"{max(ev.steps_per_sec, 999_999):,.0f} steps/s"]
    room = width - 3
    lead = run + " " if run else ""
    for drop in ((), (3,), (3, 1)):
        keep = lambda fs: " ".join(f for i, f in enumerate(fs) if i not in drop)
        cells = min(30, room - len(lead) - len(keep(widest)) - 3)
        if cells >= 10:
            done = int(cells * ev.step / max(ev.total_steps, 1))
            return f"{lead}[{'#' * done}{'.' * (cells - done)}] {keep(fields)}"
    parts: list[str] = []
    for f in ([run] if run else []) + [fields[0], fields[2]]:
        if len(" ".join(parts + [f])) <= room:
            parts.append(f)
    return " ".join(parts)


def thinned_note(res: dict) -> str:
    """A note when the history kept fewer epochs or sampled steps than the run had (a bounded series thins)."""
    from initlab.engine.report import thinned_text

    text = thinned_text(res)
    return f"initlab: note: {text}" if text else ""


def print_run(res: dict) -> None:
    from initlab.engine.verdict import symmetry_note

    step = res["final"].get("step")
    layers = res["final"]["layers"]
    if res["stopped"] == "finished":
        print(f"per-layer statistics after training (step {step}, on the first training batch)")
    elif layers:
        why = "interrupted" if res["stopped"] == "cancelled" else "the run stopped on a non-finite value"
        print(f"per-layer statistics of the last sampled step (step {step}, {why})")
    # a sampled step does not count distinct units (a sort per layer): a column of dashes says nothing
    keep = [i for i, c in enumerate(LAYER_COLUMNS) if c != "distinct_units" or any(r.get(c) is not None
                                                                                  for r in layers)]
    print(table(layers, [LAYER_COLUMNS[i] for i in keep], [LAYER_HEADERS[i] for i in keep]))
    v = res["final"].get("verdict")
    if v:       # of the backward signal in the rows above, as a probe's, with its note on a drift short of it
        for line in filter(None, (verdict_line(v), v.get("note"))):
            say(line, sys.stdout)
    note = symmetry_note(layers) if res["stopped"] == "finished" else None
    if note:        # zero-init-symmetry's lesson, said as the app's log says it
        say(f"end state: {note}", sys.stdout)
    print()
    cols = ["epoch", "train_loss", "test_loss"] + (["train_acc", "test_acc"] if res.get("task") == "classification"
                                                   else [])
    print(table(res["epochs"], cols, [c.replace("_", " ") for c in cols]))


def stop_on_interrupt(bar: Bar | None = None):
    """(check, stopped): the first ctrl-c asks the run to stop after its step (check() then raises JobCancelled), so
    that what it learnt is still shown and written; a second one quits at once. The message takes the bar's line."""
    import signal
    import threading

    from initlab.engine.session import JobCancelled

    asked = threading.Event()

    def on_interrupt(signum, frame) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        if bar is not None and bar.drawn:
            bar.clear()
            sys.stderr.write("initlab: stopping after this step (ctrl-c again to quit at once)\n")
        else:
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
    cfg = config_from_args(args, TRAIN_DEFAULTS)
    # the bar goes to stderr, where that is a terminal, and only beside the table: with --json, or stdout piped, a
    # script reads the run, and no bar is drawn
    bar = Bar() if not wants_json(args) and sys.stderr is not None and sys.stderr.isatty() else None
    check, restore = stop_on_interrupt(bar)
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
            say(f"initlab: note: {k} follows the data ({res['config'][k]}); {given[k]} was not used")
    for note in filter(None, [preset_note(args)]):
        say(note)
    for note in unread_notes(args, cfg, train=True, skip=("in_features", "out_features")):
        say(note)
    for r in res.get("runs", [res]):
        note = thinned_note(r)
        if note:
            say(note)
    stopped = [r["stopped"] for r in res.get("runs", [res])]
    if "cancelled" in stopped:
        return 130
    return 1 if "nonfinite" in stopped else 0
