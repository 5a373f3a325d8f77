"""Batched per-slot moments of many tensors: mean, variance, min, max, mean |x|, finite fraction, count.

Small tensors (a layer's z on a batch, say) of one size are stacked into a matrix and reduced along its rows, so a
deep net of equal widths costs a handful of operations rather than a few per layer; large ones (weight matrices)
are reduced one by one, where an operation's fixed cost no longer matters and a stacked copy would. Stacked work
runs in float64 (squares of float32 values past 1e19 would overflow); large tensors use torch's own std and norms,
which accumulate in float64 on the CPU (in float32 on a GPU, where values past 1e19 read as an infinite std).
Only the statistics asked for are computed.
"""
from __future__ import annotations

import torch

ALL = ("mean", "var", "amin", "amax", "absmean", "finite")
FIELDS = ALL + ("count",)   # the columns of Moments.table
BIG = 1 << 14           # elements from which a tensor is reduced on its own
CHUNK = 1 << 22         # elements at most in one stacked matrix
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
    out = []
    for slot, t in items:
        if t.numel() >= BIG:
            out.append([(slot, t)])
        else:
            by_size.setdefault(t.numel(), []).append((slot, t))
    for size, its in by_size.items():
        per = max(1, CHUNK // max(size, 1))
        out += [its[i:i + per] for i in range(0, len(its), per)]
    return out


def _reduce(m: torch.Tensor, stats: tuple[str, ...]) -> list[torch.Tensor]:
    """Row-wise statistics of a float64 matrix, NaN for those not asked for."""
    mean = m.mean(1)
    nan = torch.full_like(mean, float("nan"))
    out = {"mean": mean}
    if "var" in stats:
        d = m - mean.unsqueeze(1)
        out["var"] = (d * d).mean(1)
    if "amin" in stats or "amax" in stats:
        out["amin"], out["amax"] = m.amin(1), m.amax(1)
    if "absmean" in stats or "finite" in stats:
        a = m.abs()
        out["absmean"] = a.mean(1)
        out["finite"] = (a < float("inf")).double().mean(1)
    return [out.get(k, nan) for k in ALL] + [torch.full_like(mean, float(m.shape[1]))]


def _reduce_one(t: torch.Tensor, stats: tuple[str, ...]) -> torch.Tensor:
    """The statistics of one large tensor in its own precision: torch's std and norms accumulate in float64 on the
    CPU, so they neither overflow nor lose digits there, and no float64 copy of the tensor is made."""
    x = t.detach().reshape(-1)
    n = x.numel()
    mean = x.mean().double()
    nan = torch.full_like(mean, float("nan"))
    out = {"mean": mean}
    if "var" in stats:
        out["var"] = x.std(correction=0).double() ** 2
    if "amin" in stats or "amax" in stats:
        out["amin"], out["amax"] = x.amin().double(), x.amax().double()
    if "absmean" in stats:
        out["absmean"] = torch.linalg.vector_norm(x, 1).double() / n
    if "finite" in stats:
        out["finite"] = torch.isfinite(x).double().mean()
    return torch.stack([out.get(k, nan) for k in ALL] + [torch.full_like(mean, float(n))]).unsqueeze(0)


class Moments:
    """Per-slot statistics as float64 tensors of length n_slots (NaN for slots with no tensor, or not asked for):
    mean, var (population), amin, amax, absmean, finite (fraction) and count. Fill it with add()."""

    def __init__(self, n_slots: int, device: torch.device):
        self.device = device
        self.table = torch.full((n_slots, len(FIELDS)), float("nan"), device=device, dtype=torch.float64)

    def add(self, items: list[tuple[int, torch.Tensor]], stats: tuple[str, ...] = ALL) -> "Moments":
        """Reduce the tensors given as (slot, tensor) into their slots, computing only the listed statistics."""
        rows, slots = [], []
        for group in _groups(items):
            if len(group) == 1 and group[0][1].numel() >= BIG and group[0][1].is_floating_point():
                rows.append(_reduce_one(group[0][1], stats))
            else:
                m = torch.stack([t.detach().reshape(-1) for _, t in group]).double()
                rows.append(torch.stack(_reduce(m, stats), dim=1))
            slots += [s for s, _ in group]
        if rows:
            self.table[index(slots, self.device)] = torch.cat(rows)
        return self

    def __getattr__(self, name: str) -> torch.Tensor:
        if name in FIELDS:
            return self.table[:, FIELDS.index(name)]
        raise AttributeError(name)
