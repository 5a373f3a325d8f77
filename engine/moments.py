"""Batched per-slot moments of many tensors: mean, variance, min, max, mean |x|, finite fraction, count.

Slots (a layer's z, its weight gradient, ...) whose tensors have the same number of elements are stacked into one
matrix and reduced along its rows, so a deep net of equal widths costs a handful of vectorised operations rather
than a few per layer. Work runs in float64 (squares of float32 values past 1e19 would overflow), in groups of at
most CHUNK elements so that memory stays bounded.
"""
from __future__ import annotations

import torch

CHUNK = 1 << 23
FIELDS = ("mean", "var", "amin", "amax", "absmean", "finite", "count")
_INDEX: dict[tuple, torch.Tensor] = {}


def index(values: list[int], device: torch.device) -> torch.Tensor:
    """A cached int64 index tensor on the device: made once per layout, so later steps copy nothing to the GPU."""
    key = (tuple(values), str(device))
    t = _INDEX.get(key)
    if t is None:
        if len(_INDEX) > 1024:
            _INDEX.clear()
        t = _INDEX[key] = torch.tensor(values, device=device)
    return t


def _groups(items: list[tuple[int, torch.Tensor]]) -> list[list[tuple[int, torch.Tensor]]]:
    by_size: dict[int, list[tuple[int, torch.Tensor]]] = {}
    for slot, t in items:
        by_size.setdefault(t.numel(), []).append((slot, t))
    out = []
    for size, its in by_size.items():
        per = max(1, CHUNK // max(size, 1))
        out += [its[i:i + per] for i in range(0, len(its), per)]
    return out


class Moments:
    """Per-slot statistics as float64 tensors of length n_slots (NaN for slots with no tensor)."""

    def __init__(self, items: list[tuple[int, torch.Tensor]], n_slots: int, device: torch.device,
                 full: bool = True):
        rows, slots = [], []
        for group in _groups(items):
            m = torch.stack([t.detach().reshape(-1) for _, t in group]).double()
            if full:
                mean = m.mean(1)
                d = m - mean.unsqueeze(1)
                lo, hi = m.amin(1), m.amax(1)
                a = m.abs()
                stats = [mean, (d * d).mean(1), lo, hi, a.mean(1), (a < float("inf")).double().mean(1)]
            else:
                mean = m.mean(1)
                stats = [mean] + [torch.full_like(mean, float("nan"))] * 5
            stats.append(torch.full_like(mean, float(m.shape[1])))
            rows.append(torch.stack(stats, dim=1))
            slots += [s for s, _ in group]
        table = torch.full((n_slots, len(FIELDS)), float("nan"), device=device, dtype=torch.float64)
        if rows:
            table[index(slots, device)] = torch.cat(rows)
        self.table = table
        for i, name in enumerate(FIELDS):
            setattr(self, name, table[:, i])
