"""Training steps per second with the app open against headless training of the same run.

Headless is the engine's run_training on the main thread (what `initlab train` runs). With the app, the same
config is trained from the `t` key in a headless Textual app (run_test) at 160x48 with a chart tab showing, so
the merged statistics, the status line and the visible chart are redrawn as they would be on screen. Each
measurement is a fresh process: a process whose main thread has run torch's thread pool slows training on any
other thread to less than half on a two-core machine, and the app's main thread never runs torch. Both rates are
the run's own steps_done / seconds. Runs alternate and repeat; the best of each is compared (other processes on
the machine only ever slow a run down, so the best run is the one they disturbed least); medians are printed too.
Also times key presses (1 and 2 in turn) while a run trains, until their tab shows.
Last line: `app_ratio=X`: the best app steps/s over the best headless steps/s (the least disturbed runs on a shared
machine); the medians and their ratio are printed above it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

from initlab.engine.spec import Config

MEDIUM = Config(depth=8, width=128, data="poly", n_rows=20_000, batch=64, epochs=10, loss="mse", lr=0.01,
                init="xavier_uniform", activation="tanh", stats_every=10, seed=0, device="cpu")
TABS = ("forward", "backward", "glorot", "distributions", "training", "heatmap", "activation")


def headless(cfg: Config) -> dict:
    from initlab.engine.train import run_training

    r = run_training(cfg)
    return {"rate": r["steps_done"] / r["seconds"], "steps": r["steps_done"]}


async def with_app(cfg: Config, tab: str) -> dict:
    from initlab.tui.app import InitlabApp

    app = InitlabApp(cfg, autoprobe=False)
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.settled:
            await pilot.pause(0.05)
        await pilot.press(str(1 + TABS.index(tab)))
        cpu0, wall0 = time.thread_time(), time.perf_counter()      # this coroutine runs on the UI thread
        await pilot.press("t")
        # poll with a plain sleep: Pilot.pause() sends a callback to every widget each time, which a person at
        # the keyboard does not
        await asyncio.sleep(0.05)
        while not app.settled:
            await asyncio.sleep(0.05)
            if app.return_code is not None or time.perf_counter() - wall0 > 900:
                raise SystemExit(f"the app stopped or hung: {app.run_state}")
        busy = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)
        r = app.last_result
        return {"rate": r["steps_done"] / r["seconds"], "steps": r["steps_done"],
                "redraws": app.charts.chart(tab).builds / max(r["seconds"], 1e-9), "busy": busy}


async def key_latency(cfg: Config, presses: int = 8) -> dict:
    """While the run trains, press 1 and 2 in turn and time each press until its tab is the active one."""
    from textual import events

    from initlab.tui.app import InitlabApp

    app = InitlabApp(cfg.replace(epochs=max(cfg.epochs, 50)), autoprobe=False)
    lat = []
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.settled:
            await pilot.pause(0.05)
        await pilot.press("t")
        while not app.run_state.startswith("training epoch"):
            await asyncio.sleep(0.01)
        for i in range(presses):
            key, tab = ("2", "backward") if i % 2 == 0 else ("1", "forward")
            await asyncio.sleep(0.3)
            t0 = time.perf_counter()
            app.post_message(events.Key(key, key))
            while app.charts.active != tab:
                await asyncio.sleep(0.001)
            lat.append(time.perf_counter() - t0)
        app.bridge.cancel(wait=True)
    return {"median_ms": 1000 * statistics.median(lat), "max_ms": 1000 * max(lat)}


def child(spec: dict) -> None:
    """One measurement in this (fresh) process; prints its JSON."""
    if spec["threads"]:
        import torch

        torch.set_num_threads(spec["threads"])
    cfg = Config(**{**spec["config"], "poly_w": tuple(spec["config"]["poly_w"])})
    if spec["mode"] == "headless":
        out = headless(cfg)
    elif spec["mode"] == "latency":
        out = asyncio.run(key_latency(cfg))
    else:
        out = asyncio.run(with_app(cfg, spec["tab"]))
    print(json.dumps(out))


def measure(mode: str, cfg: Config, tab: str, threads: int) -> dict:
    spec = {"mode": mode, "config": cfg.to_dict(), "tab": tab, "threads": threads}
    p = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="medium", help="medium, or the name of a training preset")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tab", default="forward", choices=TABS, help="the chart tab shown while training")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=0, help="override the run's epochs (0: keep)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads for both (0: torch's default)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from initlab.engine.presets import PRESETS

    cfg = MEDIUM if args.run == "medium" else PRESETS[args.run].config
    cfg = cfg.replace(device=args.device, epochs=args.epochs or cfg.epochs)
    print(f"run: {args.run}: {cfg.depth} x {cfg.width} {cfg.activation}, batch {cfg.batch}, "
          f"{cfg.epochs} epochs on {cfg.data} ({cfg.n_rows} rows), stats every {cfg.stats_every}, {cfg.device}, "
          f"torch threads {args.threads or 'default'}", flush=True)
    plain, inapp = [], []
    for i in range(args.repeats):
        h = measure("headless", cfg, args.tab, args.threads)
        plain.append(h)
        print(f"headless {i + 1}: {h['rate']:9.1f} steps/s ({h['steps']} steps)", flush=True)
        a = measure("app", cfg, args.tab, args.threads)
        inapp.append(a)
        print(f"app      {i + 1}: {a['rate']:9.1f} steps/s ({a['steps']} steps; {args.tab} chart drawn "
              f"{a['redraws']:.1f} times/s; UI thread busy {100 * a['busy']:.0f}% of the run)", flush=True)
    hp, ap_ = [h["rate"] for h in plain], [a["rate"] for a in inapp]
    print(f"median headless {statistics.median(hp):.1f} steps/s, with the app {statistics.median(ap_):.1f} "
          f"steps/s (ratio {statistics.median(ap_) / statistics.median(hp):.3f}); UI thread busy "
          f"{100 * statistics.median(a['busy'] for a in inapp):.0f}%")
    print(f"best headless {max(hp):.1f} steps/s, best with the app {max(ap_):.1f} steps/s")
    lat = measure("latency", cfg, args.tab, args.threads)
    print(f"key press to tab switch while training: median {lat['median_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
    print(f"app_ratio={max(ap_) / max(hp):.3f}")


if __name__ == "__main__":
    main()
