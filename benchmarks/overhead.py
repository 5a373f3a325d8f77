"""Training overhead: the engine against a plain hand-written PyTorch loop on the same model, data and steps.

Runs are interleaved and repeated; prints engine/plain time ratios at several stats_every values (the default
among them) and at every step. The plain loop does what a hand-written loop of the course does: the steps, and
the train and test loss after every epoch; the engine's extra work is its per-layer statistics and checks.
Two estimates per cadence: the best engine run against the best plain run (noise only ever adds time, so the
fastest run of each is the least disturbed), and the median of the paired ratios. The last line gives the best:
`overhead default=X every_step=Y`.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from initlab.engine.models import build_mlp
from initlab.engine.spec import Config
from initlab.engine.train import Trainer


def plain(cfg: Config, steps: int) -> float:
    """The loop a person would write: same data, same model, same optimiser, no statistics."""
    t = Trainer(cfg)        # only for its data and model construction; the loop below is plain
    model = build_mlp(t.cfg, t.device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    crit = nn.MSELoss()
    x, y = t.data.x_train, t.data.y_train
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    n, b = x.shape[0], cfg.batch
    done = 0
    losses = []
    t0 = time.perf_counter()
    while done < steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, b):
            idx = perm[i:i + b]
            loss = crit(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
        with torch.no_grad():
            losses.append((crit(model(x), y).item(), crit(model(t.data.x_test), t.data.y_test).item()))
    return time.perf_counter() - t0


def engine(cfg: Config, steps: int) -> float:
    tr = Trainer(cfg)
    t0 = time.perf_counter()
    tr.run()
    elapsed = time.perf_counter() - t0
    return elapsed * steps / max(tr.step, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = Config(depth=10, width=64, activation="tanh", init="xavier_uniform", data="poly", batch=10,
                  optimizer="sgd", lr=0.003, epochs=args.epochs, device=args.device)
    default_every = base.stats_every
    steps = Trainer(base).total_steps
    print(f"reference: 10 x 64 tanh MLP on poly data, batch 10, {steps} steps, device {args.device}")
    cadences = sorted({1, 10, 50, 100, 200, default_every, 500})
    times: dict[int, list[tuple[float, float]]] = {k: [] for k in cadences}
    for r in range(args.repeats):
        line = []
        for k in cadences:
            p = plain(base, steps)
            e = engine(base.replace(stats_every=k), steps)
            times[k].append((p, e))
            line.append(f"every {k}: {e / p:.3f}")
        print(f"repeat {r + 1}: " + ", ".join(line))
    best = {k: min(e for _, e in v) / min(p for p, _ in v) for k, v in times.items()}
    for k in cadences:
        med = statistics.median(e / p for p, e in times[k])
        print(f"stats_every={k}: engine/plain best {best[k]:.3f}, median of pairs {med:.3f}"
              + ("  (default)" if k == default_every else ""))
    print(f"overhead default={best[default_every]:.3f} every_step={best[1]:.3f}")


if __name__ == "__main__":
    main()
