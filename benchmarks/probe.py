"""Probe cost: a probe of the 100 x 256 net against a plain forward and backward of the same net.

Both build the net with the same init and draw the same batch; the plain side only runs forward and backward.
The probe is timed as the app runs it (with the per-layer quantile boxes of the Distributions tab) and as
`initlab probe` runs it (without them). Interleaved and repeated; the median ratio of the app's probe is printed
last as `probe_ratio=X`.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from initlab.engine import device as devices
from initlab.engine.models import build_mlp
from initlab.engine.presets import PRESETS
from initlab.engine.probe import run_probe


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def plain(cfg, dev) -> float:
    sync(dev)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, dev)
    x = torch.randn(cfg.batch, cfg.in_features, device=dev)
    out = model(x)
    (out * torch.randn_like(out)).sum().backward()
    sync(dev)
    return time.perf_counter() - t0


def probe(cfg, dev, distributions: bool) -> float:
    sync(dev)
    t0 = time.perf_counter()
    run_probe(cfg, distributions=distributions)
    sync(dev)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    args = ap.parse_args()
    cfg = PRESETS["linear-scaled"].config.replace(device=args.device, depth=args.depth, width=args.width,
                                                  in_features=args.width, out_features=args.width)
    dev = devices.resolve(args.device)
    probe(cfg, dev, True)               # warm-up: first-call costs are not the probe's
    plain(cfg, dev)
    ratios, ratios_nd, times = [], [], []
    for r in range(args.repeats):
        p = plain(cfg, dev)
        q = probe(cfg, dev, True)
        qn = probe(cfg, dev, False)
        ratios.append(q / p)
        ratios_nd.append(qn / p)
        times.append(q)
        print(f"repeat {r + 1}: plain {p * 1e3:.1f} ms, probe {q * 1e3:.1f} ms, "
              f"probe without distributions {qn * 1e3:.1f} ms")
    print(f"{args.depth} x {args.width} on {dev}: probe {statistics.median(times) * 1e3:.1f} ms; "
          f"ratio without the quantile boxes (initlab probe) {statistics.median(ratios_nd):.3f}")
    print(f"probe_ratio={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
