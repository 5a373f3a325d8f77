"""Soak: 100,000 training steps of a small net with statistics at the default cadence; resident memory over the run.

The run is one Trainer (depth 3, width 16, poly data, batch 10, statistics at the default cadence): 1,429 rows give
1,000 training rows, 100 steps an epoch, and 1,000 epochs make 100,000 steps, each epoch ending in an evaluation.
Resident memory (from /proc/self/statm, or the peak from resource where /proc is missing) is sampled from the
engine's own Progress events every 10,000 steps and once after the run. Growth is measured from the 10,000-step
sample (after warm-up: allocator pools, the bounded histories filling) to the end.
Last line: `soak_growth_mb=X`.
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time

from initlab.engine.events import Progress
from initlab.engine.spec import Config
from initlab.engine.train import Trainer

MB = 1024 * 1024


def rss_bytes() -> int:
    """Resident set size now; the peak where /proc is not there (macOS)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000, help="training steps, a multiple of 100")
    ap.add_argument("--every", type=int, default=10_000, help="sample memory every this many steps")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.steps % 100 or args.steps < args.every:
        ap.error("--steps must be a multiple of 100 and at least --every")

    cfg = Config(depth=3, width=16, activation="tanh", data="poly", n_rows=1429, batch=10,
                 epochs=args.steps // 100, lr=0.01, device=args.device)
    samples: list[tuple[int, float, float]] = []       # (step, seconds, rss MB)
    t0 = time.perf_counter()

    def emit(ev) -> None:
        # Progress is emitted on every sampled step with step = index + 1; index 0, 10000, ... are sampled steps
        if isinstance(ev, Progress) and (ev.step - 1) % args.every == 0:
            samples.append((ev.step - 1, time.perf_counter() - t0, rss_bytes() / MB))

    trainer = Trainer(cfg, emit)
    assert trainer.total_steps == args.steps, trainer.total_steps
    res = trainer.run()
    gc.collect()
    samples.append((res["steps_done"], time.perf_counter() - t0, rss_bytes() / MB))
    if res["stopped"] != "finished":
        print(f"run stopped early: {res['stopped']} at step {res['steps_done']}", file=sys.stderr)
        return 1

    print(f"{'step':>8}  {'seconds':>8}  {'rss MB':>8}")
    for step, sec, mb in samples:
        print(f"{step:8d}  {sec:8.1f}  {mb:8.1f}")
    warm = next(mb for step, _, mb in samples if step == args.every)
    growth = samples[-1][2] - warm
    rate = res["steps_done"] / res["seconds"]
    print(f"{res['steps_done']} steps in {res['seconds']:.1f} s ({rate:,.0f} steps/s) on {res['device']}, "
          f"torch {res['torch']}; final train loss {res['epochs'][-1]['train_loss']:.4g}")
    print(f"soak_growth_mb={growth:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
