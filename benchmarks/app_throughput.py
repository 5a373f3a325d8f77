"""Training steps per second with the app open against headless training of the same run.

Headless is the engine's run_training (what `initlab train` runs). With the app, the same config is trained from
the `t` key in a headless Textual app (run_test) at 160x48 with a chart tab showing, so the merged statistics,
the header and the visible chart are redrawn as they would be on screen. Both rates are the run's own
steps_done / seconds. Runs alternate and repeat; medians are compared.
Last line: `app_ratio=X` (app steps/s over headless steps/s).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from initlab.engine.presets import PRESETS
from initlab.engine.spec import Config
from initlab.engine.train import run_training
from initlab.tui.app import InitlabApp

MEDIUM = Config(depth=8, width=128, data="poly", n_rows=20_000, batch=64, epochs=3, loss="mse", lr=0.01,
                init="xavier_uniform", activation="tanh", stats_every=10, seed=0, device="cpu")


def headless(cfg: Config) -> tuple[float, int]:
    r = run_training(cfg)
    return r["steps_done"] / r["seconds"], r["steps_done"]


async def with_app(cfg: Config, tab: str) -> tuple[float, int, float]:
    app = InitlabApp(cfg, autoprobe=False)
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.settled:
            await pilot.pause(0.05)
        await pilot.press(str(1 + ["forward", "backward", "glorot", "distributions", "training", "heatmap",
                                   "activation"].index(tab)))
        await pilot.press("t")
        # poll with a plain sleep: Pilot.pause() sends a callback to every widget each time, which a person at
        # the keyboard does not
        await asyncio.sleep(0.05)
        while not app.settled:
            await asyncio.sleep(0.05)
        r = app.last_result
        builds = app.charts.chart(tab).builds
        return r["steps_done"] / r["seconds"], r["steps_done"], builds / max(r["seconds"], 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="medium", help="medium, or the name of a training preset")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tab", default="forward", help="the chart tab shown while training")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cfg = MEDIUM if args.run == "medium" else PRESETS[args.run].config
    cfg = cfg.replace(device=args.device)
    print(f"run: {args.run}: {cfg.depth} x {cfg.width} {cfg.activation}, batch {cfg.batch}, "
          f"{cfg.epochs} epochs on {cfg.data} ({cfg.n_rows} rows), stats every {cfg.stats_every}, {cfg.device}")
    headless(cfg)          # warm-up: torch import, first kernels
    plain, inapp, redraws = [], [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        rate, steps = headless(cfg)
        plain.append(rate)
        print(f"headless {i + 1}: {rate:9.1f} steps/s ({steps} steps, {time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        rate, steps, hz = asyncio.run(with_app(cfg, args.tab))
        inapp.append(rate)
        redraws.append(hz)
        print(f"app      {i + 1}: {rate:9.1f} steps/s ({steps} steps, {time.perf_counter() - t0:.1f} s with "
              f"start-up; {args.tab} chart redrawn {hz:.1f} times/s)")
    ratio = statistics.median(inapp) / statistics.median(plain)
    print(f"median headless {statistics.median(plain):.1f} steps/s, with the app {statistics.median(inapp):.1f} "
          f"steps/s, chart redraws {statistics.median(redraws):.1f}/s")
    print(f"app_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
