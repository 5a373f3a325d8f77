"""Training beside a busy Python thread, at several GIL switch intervals, against the same training alone.

The app trains on a job thread while its UI thread runs Python. A torch op gives up the GIL and must win it back
when it returns; a thread that wants the GIL waits up to the switch interval for the holder to let go. So when the
UI is busy (a hundred keys a second, a slow terminal), every op of the training step can wait that long. This
benchmark trains the reference 10 x 64 tanh net on a thread for a few seconds while the main thread spins in pure
Python, at Python's default interval (5 ms) and at shorter ones, and prints the steps per second of each as a
ratio to the same training with the main thread idle, measured in the same run. It also prints how much work the
busy thread got done, relative to its rate with no training beside it: the cost of a shorter interval.
Last line: `handoff default=X app=Y`: training rates beside a busy thread over training alone, at the default
interval and at the app's (`initlab.tui.app.SWITCH_INTERVAL`).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import torch

from initlab.tui.app import SWITCH_INTERVAL


def make_step():
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[m for _ in range(10) for m in (torch.nn.Linear(64, 64), torch.nn.Tanh())])
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(10, 64), torch.randn(10, 64)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return step


def busy_work() -> None:
    sum(i * i for i in range(1000))


def measure(interval: float, seconds: float, busy: bool, train: bool) -> tuple[float, float]:
    """(training steps per second, busy-loop rounds per second)."""
    sys.setswitchinterval(interval)
    step = make_step()
    stop = threading.Event()
    steps = 0

    def trainer() -> None:
        nonlocal steps
        while not stop.is_set():
            step()
            steps += 1

    t = threading.Thread(target=trainer)
    if train:
        t.start()
    rounds = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if busy:
            busy_work()
            rounds += 1
        else:
            time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    stop.set()
    if train:
        t.join()
    return steps / elapsed, rounds / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)     # the op count, not the thread pool, is what this measures
    default = sys.getswitchinterval()
    intervals = sorted({default, 0.001, SWITCH_INTERVAL, 0.0001}, reverse=True)
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = max(best.get(name, 0.0), value)

    for _ in range(args.repeats):       # interleaved; the best of each is the least disturbed by the machine
        keep("alone", measure(default, args.seconds, busy=False, train=True)[0])
        keep("busy alone", measure(default, args.seconds, busy=True, train=False)[1])
        for iv in intervals:
            rate, rounds = measure(iv, args.seconds, busy=True, train=True)
            keep(f"train {iv}", rate)
            keep(f"busy {iv}", rounds)
    sys.setswitchinterval(default)
    print(f"training alone: {best['alone']:.0f} steps/s; busy thread alone: {best['busy alone']:.0f} rounds/s")
    for iv in intervals:
        print(f"interval {iv * 1e3:5.2f} ms: training {best[f'train {iv}'] / best['alone']:.3f} of alone, "
              f"busy thread {best[f'busy {iv}'] / best['busy alone']:.3f} of alone")
    print(f"handoff default={best[f'train {default}'] / best['alone']:.3f} "
          f"app={best[f'train {SWITCH_INTERVAL}'] / best['alone']:.3f}")


if __name__ == "__main__":
    main()
