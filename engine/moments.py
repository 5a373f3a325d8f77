"""Per-tensor moments of many tensors at once: float64 row sums gathered per tensor, one table on the device.

Every tensor gets its mean, population variance and element count; those flagged get mean |x| (ABS), or their
min, max and finite fraction (EXT). Small tensors with the same last dimension are concatenated along their rows and
reduced row by row, and the rows are then summed per tensor, so a deep net of equal widths costs a few dozen
operations whatever its depth; widths that hold few elements in all (a net's first and last layers) are reduced
together, each element a row. Large tensors are reduced one at a time, where an operation's fixed cost no longer
matters and a concatenated copy would. All sums run in float64 (float32 squares past 1e19 would overflow), and the
variance is two-pass: squares are taken around each row's mean and rows are combined with Chan's formula, so a
constant tensor has a variance of exactly 0.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch

ALL = ("mean", "var", "amin", "amax", "absmean", "finite")
FIELDS = ALL + ("count",)   # the columns of a moments table
ABS, EXT = 1, 2             # flags: mean |x|; min, max and finite fraction
BIG = 1 << 15               # elements from which a tensor is reduced on its own
CHUNK = 1 << 20             # elements at most in one concatenation or one pass over a large tensor
FEW = 1 << 12               # a width whose tensors hold fewer elements than this in all is reduced element-wise
_WORK: dict[tuple, torch.Tensor] = {}
_LOCK = threading.Lock()    # the work buffers are shared: one reduction at a time
_INDEX: dict[tuple, torch.Tensor] = {}
_PLANS: dict[tuple, "_Plan"] = {}
_RANK = {EXT: 0, EXT | ABS: 1, ABS: 2, 0: 3}


def index(values: list[int], device: torch.device) -> torch.Tensor:
    """A cached int64 index tensor on the device: made once per layout, so later steps copy nothing to the GPU."""
    key = (tuple(values), str(device))
    t = _INDEX.get(key)
    if t is None:
        if len(_INDEX) > 1024:
            _INDEX.clear()
        t = _INDEX[key] = torch.tensor(values, device=device)
    return t


def _as_rows(t: torch.Tensor, cols: int) -> torch.Tensor:
    return t if t.dim() == 2 and t.shape[1] == cols else t.reshape(-1, cols)


@dataclass
class _Group:
    items: list[int]            # item indices: EXT ones first, then ABS ones, then the rest
    n_ext: int                  # rows of the EXT items (they lead the concatenation)
    abs_rows: tuple[int, int]   # the row range of the ABS items
    rows: int
    cols: int
    zeros: torch.Tensor | None = None     # for a group of element rows: their (zero) spreads around their means


class _Plan:
    """How one layout (shapes, flags, device) is reduced; built once and cached, so a step only runs tensor ops."""

    def __init__(self, shapes: list[tuple[int, ...]], flags: list[int], device: torch.device):
        n = len(shapes)
        numel = [_numel(s) for s in shapes]
        self.n = n
        self.big = [i for i in range(n) if numel[i] >= BIG]
        width = [shapes[i][-1] if len(shapes[i]) >= 2 else numel[i] for i in range(n)]
        by_c: dict[int, list[int]] = {}
        for i in range(n):
            if numel[i] < BIG and numel[i] > 0:
                by_c.setdefault(width[i], []).append(i)
        # widths holding few elements in all (a net's first and last layers) are reduced together, element by
        # element: a group costs a dozen operations whatever its size, an element row costs nothing to centre
        few = [c for c, its in by_c.items() if c > 1 and sum(numel[i] for i in its) < FEW]
        if len(few) + (1 in by_c) > 1:
            for c in few:
                for i in by_c.pop(c):
                    width[i] = 1
                    by_c.setdefault(1, []).append(i)
        rows = lambda i: numel[i] // max(width[i], 1)
        self.groups: list[_Group] = []
        seg, cnt, seg_abs, seg_ext = [], [], [], []
        for c, its in by_c.items():
            # EXT-only, then EXT and ABS, then ABS-only: the EXT rows lead and the ABS rows are one range
            order = sorted(its, key=lambda i: _RANK[flags[i] & (EXT | ABS)])
            for part in _chunks(order, lambda i: numel[i]):
                n_ext = sum(rows(i) for i in part if flags[i] & EXT)
                a0 = sum(rows(i) for i in part if flags[i] & (EXT | ABS) == EXT)
                a1 = a0 + sum(rows(i) for i in part if flags[i] & ABS)
                n_rows = sum(rows(i) for i in part)
                self.groups.append(_Group(part, n_ext, (a0, a1), n_rows, c,
                                          torch.zeros(n_rows, dtype=torch.float64, device=device) if c == 1 else None))
                for i in part:
                    seg += [i] * rows(i)
                    cnt += [float(c)] * rows(i)
                    if flags[i] & ABS:
                        seg_abs += [i] * rows(i)
                    if flags[i] & EXT:
                        seg_ext += [i] * rows(i)
        # large tensors: one row per chunk of at most CHUNK elements, after the small rows
        self.pieces: list[tuple[int, int, int]] = []            # (item, start, length)
        for i in self.big:
            for start in range(0, numel[i], CHUNK):
                k = min(CHUNK, numel[i] - start)
                self.pieces.append((i, start, k))
                seg.append(i)
                cnt.append(float(k))
                if flags[i] & ABS:
                    seg_abs.append(i)
                if flags[i] & EXT:
                    seg_ext.append(i)
        self.piece_flags = [flags[i] for i, _, _ in self.pieces]
        self.n_abs_pieces = sum(1 for f in self.piece_flags if f & ABS)
        self.n_ext_pieces = sum(1 for f in self.piece_flags if f & EXT)
        t = lambda v, dt=torch.int64: torch.tensor(v, device=device, dtype=dt)
        self.seg, self.row_count = t(seg), t(cnt, torch.float64)
        self.seg_abs, self.seg_ext = t(seg_abs), t(seg_ext)
        self.count = t([float(c) for c in numel], torch.float64)
        has = lambda f: t([bool(fl & f) for fl in flags], torch.bool)
        self.no_abs, self.no_ext = ~has(ABS), ~has(EXT)
        self.any_abs, self.any_ext = bool(seg_abs), bool(seg_ext)
        self.has_rows = bool(seg)


def _chunks(order: list[int], size) -> list[list[int]]:
    """Consecutive runs of items of at most CHUNK elements in all (an item larger than that runs alone)."""
    out: list[list[int]] = [[]]
    total = 0
    for i in order:
        if out[-1] and total + size(i) > CHUNK:
            out.append([])
            total = 0
        out[-1].append(i)
        total += size(i)
    return out


def _work(slot: int, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A reusable flat buffer of at least numel elements: fresh megabyte-sized temporaries each step would cost
    page faults (the allocator hands large blocks back to the system) that dwarf the arithmetic on them."""
    key = (slot, dtype, str(device))
    buf = _WORK.get(key)
    if buf is None or buf.numel() < numel:
        buf = _WORK[key] = torch.empty(max(numel, 1 << 12), dtype=dtype, device=device)
    return buf[:numel]


@contextmanager
def scratch():
    """The shared work buffers, held for the block: `with scratch() as work: work(slot, numel, dtype, device)`."""
    with _LOCK:
        yield _work


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _plan(tensors: list[torch.Tensor], flags: list[int], device: torch.device) -> _Plan:
    key = (tuple(tuple(t.shape) for t in tensors), tuple(flags), str(device))
    p = _PLANS.get(key)
    if p is None:
        if len(_PLANS) > 256:
            _PLANS.clear()
        p = _PLANS[key] = _Plan(list(key[0]), flags, device)
    return p


def _pieces(tensors: list[torch.Tensor], p: _Plan, device: torch.device, check) -> tuple[torch.Tensor, ...]:
    """Per chunk of each large tensor: sum, sum of squares around the chunk's mean, and where flagged sum |x|, min,
    max and finite count; each written in place into one preallocated vector per statistic (no per-chunk stack)."""
    f64 = dict(device=device, dtype=torch.float64)
    s, q = torch.empty(len(p.pieces), **f64), torch.empty(len(p.pieces), **f64)
    ab, lo, hi, fin = (torch.empty(p.n_abs_pieces, **f64), torch.empty(p.n_ext_pieces, **f64),
                       torch.empty(p.n_ext_pieces, **f64), torch.empty(p.n_ext_pieces, **f64))
    ia = ie = 0
    for r, ((i, start, k), flag) in enumerate(zip(p.pieces, p.piece_flags)):
        check()
        d = _work(0, k, torch.float64, device).copy_(tensors[i].detach().reshape(-1)[start:start + k])
        torch.sum(d, 0, out=s[r])
        # s / k, not s * (1 / k): the rounded reciprocal would shift a constant tensor off its own value
        c = torch.sub(d, s[r] / k, out=_work(1, k, torch.float64, device))
        torch.dot(c, c, out=q[r])
        if flag & EXT:
            torch.amin(d, 0, out=lo[ie])
            torch.amax(d, 0, out=hi[ie])
            torch.sum(torch.isfinite(d), 0, dtype=torch.float64, out=fin[ie])
            ie += 1
        if flag & ABS:
            torch.sum(d.abs_(), 0, out=ab[ia])
            ia += 1
    return s, q, ab, lo, hi, fin


def _group_rows(tensors: list[torch.Tensor], g: _Group) -> torch.Tensor:
    """The group's tensors, concatenated along their rows into a float64 work buffer [rows, cols]."""
    parts = [_as_rows(tensors[i], g.cols) for i in g.items]
    device, n = parts[0].device, g.rows * g.cols
    dtype = parts[0].dtype if all(p.dtype == parts[0].dtype for p in parts) else torch.float64
    out = _work(0, n, torch.float64, device).view(g.rows, g.cols)
    if dtype == torch.float64:
        return torch.cat(parts, out=out) if len(parts) > 1 else out.copy_(parts[0])
    if len(parts) == 1:
        return out.copy_(parts[0])
    return out.copy_(torch.cat(parts, out=_work(2, n, dtype, device).view(g.rows, g.cols)))


def reduce(tensors: list[torch.Tensor], flags: list[int] | None = None, check=None) -> torch.Tensor:
    """[len(tensors), 7] float64 on the device: mean, var (population), amin, amax, absmean, finite (fraction),
    count per tensor; absmean only where flagged ABS, amin/amax/finite only where flagged EXT (NaN elsewhere).
    `check` is called between groups and large tensors' chunks (it raises to stop a long reduction)."""
    flags = flags if flags is not None else [0] * len(tensors)
    device = tensors[0].device
    with _LOCK, torch.no_grad():
        return _reduce(tensors, device, _plan(tensors, flags, device), check or (lambda: None))


def _reduce(tensors: list[torch.Tensor], device: torch.device, p: _Plan, check) -> torch.Tensor:
    n = p.n
    z = torch.zeros(n, device=device, dtype=torch.float64)
    nan = torch.full((n,), float("nan"), device=device, dtype=torch.float64)
    mean = var = absmean = amin = amax = finite = nan
    if p.has_rows:
        rsum, rm2, rabs, rmax, rmin, rfin = [], [], [], [], [], []
        for g in p.groups:
            check()
            m = _group_rows(tensors, g)
            s = m.sum(1)
            rsum.append(s)
            # the extremes and |x| first: the rows are then centred in place, so that a step touches one work
            # buffer of float64s rather than two (a second megabyte evicts the training's own data from the cache)
            if g.n_ext:
                e = m[:g.n_ext]
                rmax.append(e.amax(1))
                rmin.append(e.amin(1))
                rfin.append(torch.isfinite(e).sum(1, dtype=torch.float64))
            a0, a1 = g.abs_rows
            if a1 > a0:
                rabs.append(torch.abs(m[a0:a1], out=_work(1, (a1 - a0) * g.cols, torch.float64, device)
                                      .view(a1 - a0, g.cols)).sum(1))
            if g.cols == 1:     # one element a row: nothing to spread around its mean
                rm2.append(g.zeros)
            else:
                c = m.sub_((s / g.cols).unsqueeze(1))
                rm2.append(c.mul_(c).sum(1))
        if p.pieces:
            for v, piece in zip((rsum, rm2, rabs, rmin, rmax, rfin), _pieces(tensors, p, device, check)):
                v.append(piece)
        cat = lambda v: torch.cat(v) if len(v) > 1 else v[0]
        rs = cat(rsum)
        mean = z.index_add(0, p.seg, rs) / p.count
        shift = rs / p.row_count - mean[p.seg]
        var = z.index_add(0, p.seg, cat(rm2) + p.row_count * shift * shift) / p.count
        if p.any_abs:
            absmean = (z.index_add(0, p.seg_abs, cat(rabs)) / p.count).masked_fill(p.no_abs, float("nan"))
        if p.any_ext:
            amax = z.scatter_reduce(0, p.seg_ext, cat(rmax), "amax", include_self=False) \
                .masked_fill(p.no_ext, float("nan"))
            amin = z.scatter_reduce(0, p.seg_ext, cat(rmin), "amin", include_self=False) \
                .masked_fill(p.no_ext, float("nan"))
            finite = (z.index_add(0, p.seg_ext, cat(rfin)) / p.count).masked_fill(p.no_ext, float("nan"))
    return torch.stack([mean, var, amin, amax, absmean, finite, p.count], dim=1)


class Moments:
    """Per-slot statistics as float64 tensors of length n_slots (NaN for slots with no tensor, or not asked for):
    mean, var (population), amin, amax, absmean, finite (fraction) and count. Fill it with add()."""

    def __init__(self, n_slots: int, device: torch.device):
        self.device = device
        self.table = torch.full((n_slots, len(FIELDS)), float("nan"), device=device, dtype=torch.float64)

    def add(self, items: list[tuple[int, torch.Tensor]], stats: tuple[str, ...] = ALL) -> "Moments":
        """Reduce the tensors given as (slot, tensor) into their slots; mean and var are always computed, absmean
        and the extremes (amin, amax, finite) where listed."""
        items = [(s, t) for s, t in items if t.numel() > 0]
        if not items:
            return self
        flag = (ABS if "absmean" in stats else 0) | (EXT if {"amin", "amax", "finite"} & set(stats) else 0)
        rows = reduce([t for _, t in items], [flag] * len(items))
        self.table[index([s for s, _ in items], self.device)] = rows
        return self

    def __getattr__(self, name: str) -> torch.Tensor:
        if name in FIELDS:
            return self.table[:, FIELDS.index(name)]
        raise AttributeError(name)
