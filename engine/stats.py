"""On-device per-layer statistics of an MLP pass: hooks that capture tensors, and reductions stacked for one transfer."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import activations
from .moments import ABS, BIG, EXT, index, reduce, scratch

STAT_NAMES = (
    "z_mean", "z_std", "a_mean", "a_std", "a_min", "a_max", "saturated_frac", "dead_frac", "nonfinite_frac",
    "grad_z_std", "grad_z_rms", "grad_w_std", "grad_w_absmean", "grad_w_norm", "w_std", "grad_to_weight",
    "fwd_var_ratio", "bwd_var_ratio", "distinct_units",
)
# each ratio and the spreads of the table that are its terms (those the table holds): where they are exactly 0 a
# NaN ratio is 0 / 0; any other NaN comes of a non-finite term, and stays to be seen as such
ZERO_TERMS = {"grad_to_weight": ("grad_w_std", "w_std"), "fwd_var_ratio": ("z_std",),
              "bwd_var_ratio": ("grad_z_std",), "update_to_weight_log10": ("w_std",)}


def undefined_as_none(d: dict[str, Any]) -> dict[str, Any]:
    """A ratio of two zero spreads (a zero-init weight, a one-value output) is not a number to show: None, as a
    ratio the engine does not compute. A ratio made NaN by a non-finite tensor (a net that blew up) stays NaN."""
    for k, terms in ZERO_TERMS.items():
        v = d.get(k)
        # the update's own spread is not in the table: weights made non-finite by the update are, as a flag
        if v is not None and v != v and all(d.get(t) == 0 for t in terms) and d.get("weights_finite", 1) == 1:
            d[k] = None
    return d


QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DIST_KINDS = ("weight", "activation", "gradient")
_QUANTILE_SAMPLE = 1024   # values sampled (strided) from a larger tensor for its quantiles


class Capture:
    """Context manager: for one pass, every Block reports its input, the Linear's output z, the activation's input
    and output, and its own output a, with gradients retained. The taps are always removed on exit."""

    def __init__(self, blocks: nn.ModuleList, grads: bool = True, check=None, backward_check: bool = False):
        self.blocks = list(blocks)
        self.grads = grads
        self.check = check          # called at every block's tap (it raises to cancel a long pass)
        # and, asked for, as each block's gradient arrives: a probe's long backward stops part-way too (a
        # training's steps leave it out: a hook a block costs at every sampled step)
        self.backward_check = backward_check and check is not None
        n = len(self.blocks)
        self.x_in: list[torch.Tensor | None] = [None] * n
        self.z: list[torch.Tensor | None] = [None] * n
        self.pre: list[torch.Tensor | None] = [None] * n
        self.act: list[torch.Tensor | None] = [None] * n
        self.a: list[torch.Tensor | None] = [None] * n

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        if self.grads and t.requires_grad:
            t.retain_grad()
        return t

    def __enter__(self) -> "Capture":
        for i, b in enumerate(self.blocks):
            def tap(x, z, pre, act, out, i=i):
                if self.check is not None:
                    self.check()
                self.x_in[i] = self._keep(x)
                self.z[i] = self._keep(z)
                if self.backward_check and z.requires_grad:
                    # the check alone, not a method of this Capture: autograd holds a hook where the collector
                    # cannot see it, so a hook reaching the Capture, which holds z, kept every probe's net for ever
                    z.register_hook(_grad_check(self.check))
                self.pre[i], self.act[i], self.a[i] = pre, act, out

            _set_tap(b, tap)
        return self

    def __exit__(self, *exc) -> None:
        for b in self.blocks:
            _set_tap(b, None)


def _grad_check(check):
    def hook(g: torch.Tensor) -> None:
        check()
    return hook


def _set_tap(block: nn.Module, tap) -> None:
    # a plain function, never a Parameter or Module: nn.Module's own __setattr__ checks cost a microsecond a block
    object.__setattr__(block, "tap", tap)


_PROJECTIONS: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}


# Directions each row is projected on. Two rows closer than the tolerance differ by no more than it on every
# direction; two rows farther apart by d pass as one only if every projection happens to fall within it, each with a
# chance of about tol sqrt(cols) / d. With two directions, a random 4096 x 4096 matrix lost a row in most draws (the
# first projection, by which rows are sorted, is close for neighbours anyway); with four it would take about
# (3.6e-4)^3 per neighbouring pair.
DIRECTIONS = 4


def _projection(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, DIRECTIONS] fixed random directions in float64, entries in [-1, 1], and their Euclidean lengths."""
    key = (n, str(device))
    if key not in _PROJECTIONS:
        g = torch.Generator(device="cpu").manual_seed(1234)
        r = (2 * torch.rand(n, DIRECTIONS, generator=g, dtype=torch.float64) - 1).to(device)
        _PROJECTIONS[key] = (r, torch.linalg.vector_norm(r, dim=0))
    return _PROJECTIONS[key]


def _by_shape(tensors: list[torch.Tensor]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    return groups


def distinct_units(weights: list[torch.Tensor], rel_tol: float = 1e-5,
                   row_rms: torch.Tensor | None = None) -> torch.Tensor:
    """How many rows of each matrix differ: two rows are one unit when their difference is within rel_tol of the
    matrix's root-mean-square row norm (`row_rms`, per matrix, computed here if not given). Returned as a float64
    tensor, without a sync. Rows are projected on DIRECTIONS fixed random directions in float64; sorted by the
    first, a row starts a new unit where any projection moves by more than a difference within the tolerance could
    move it (|dw . r| <= |dw| |r|). Small matrices of one shape are projected together, large ones one by one."""
    mats = [w.detach().unsqueeze(1) if w.dim() == 1 else w.detach() for w in weights]
    device = mats[0].device
    if row_rms is None:
        row_rms = torch.stack([torch.linalg.vector_norm(m.double()) / max(m.shape[0], 1) ** 0.5 for m in mats])
    proj: list[torch.Tensor | None] = [None] * len(mats)
    for (rows, cols), idx in _by_shape(mats).items():
        r = _projection(cols, device)[0]
        if rows * cols >= BIG:
            with scratch() as work:
                for i in idx:
                    proj[i] = work(0, rows * cols, torch.float64, device).view(rows, cols).copy_(mats[i]) @ r
        else:
            for i, p in zip(idx, torch.stack([mats[i] for i in idx]).double() @ r):
                proj[i] = p
    out = torch.empty(len(mats), device=device, dtype=torch.float64)
    for (rows, _), idx in _by_shape(proj).items():
        p = torch.stack([proj[i] for i in idx])                      # [k, rows, DIRECTIONS]
        reach = torch.stack([_projection(mats[i].shape[1], device)[1] for i in idx])
        thr = (rel_tol * row_rms[index(idx, device)]).unsqueeze(1) * reach          # [k, DIRECTIONS]
        order = torch.argsort(p[..., 0], dim=1)
        ps = torch.gather(p, 1, order.unsqueeze(2).expand(-1, -1, DIRECTIONS))
        units = 1 + ((ps[:, 1:] - ps[:, :-1]).abs() > thr.unsqueeze(1)).any(dim=2).sum(dim=1)
        out[index(idx, device)] = units.double()
    return out


def _stacked(tensors: list[torch.Tensor], idx: list[int]) -> torch.Tensor:
    """[len(idx), ...]: the chosen tensors, detached and stacked (one of them: a view, no copy)."""
    return torch.stack([tensors[i].detach() for i in idx]) if len(idx) > 1 else tensors[idx[0]].detach().unsqueeze(0)


def _fractions(cap: Capture, blocks: list[nn.Module], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Saturated and dead fractions per layer: one masked reduction per activation and shape."""
    device = cap.z[0].device
    sat = torch.zeros(n, device=device, dtype=torch.float64)
    dead = torch.zeros(n, device=device, dtype=torch.float64)
    groups: dict[tuple, list[int]] = {}
    for i, b in enumerate(blocks):
        if b.activation_name != "identity":
            groups.setdefault((b.activation_name, tuple(cap.act[i].shape)), []).append(i)
    for (name, shape), idx in groups.items():
        k = len(idx)
        act = _stacked(cap.act, idx)
        numel = max(act[0].numel(), 1)
        where = index(idx, device)
        if name in activations.RELU_FAMILY:
            dead = dead.index_copy(0, where, (act == 0).reshape(k, -1).sum(1).double() / numel)
        if name not in activations.SATURATING:
            continue
        pre = act if name in activations.SATURATING_OUTPUT else _stacked(cap.pre, idx)
        mask = activations.saturated_mask(name, pre, act)
        sat = sat.index_copy(0, where, mask.reshape(k, -1).sum(1).double() / numel)
    return sat, dead


def layer_table(cap: Capture, blocks: nn.ModuleList, distinct: bool = True,
                weights: list[torch.Tensor] | None = None, updates: list[torch.Tensor] | None = None,
                grads: list[torch.Tensor] | None = None, check=None) -> torch.Tensor:
    """[layers, len(STAT_NAMES)]: every statistic of every layer as one float64 tensor on the device, from one
    batched reduction whatever the depth. Without `distinct`, distinct_units is NaN (it costs a sort per layer).
    `weights` stand in for the Linear weights (copies taken before an update); with `updates` (each layer's
    W_after - W_before) two columns follow: update_to_weight_log10 and weights_finite (1 or 0, after the update).
    `grads` stand in for the weight gradients (copies taken before clipping)."""
    blocks = list(blocks)
    n = len(blocks)
    device = cap.z[0].device
    weights = weights if weights is not None else [b.linear.weight.detach() for b in blocks]
    missing = torch.full((1,), float("nan"), device=device)
    # dL/d(input) through the Linear alone, as Glorot's backward condition has it: autograd's input gradient
    # where the Linear is the input's only consumer, else dL/dz @ W (a residual path adds to the input's gradient)
    gx = []
    for i, (b, z, w) in enumerate(zip(blocks, cap.z, weights)):
        x = cap.x_in[i]
        own = i > 0 and not b.residual and x is not None and x.grad is not None
        gx.append(x.grad if own else (z.grad @ w.detach() if z.grad is not None else missing))
    if grads is None:
        grads = [b.linear.weight.grad for b in blocks]
    kinds = [cap.z, cap.a, [z.grad if z.grad is not None else missing for z in cap.z], gx, weights,
             [g if g is not None else missing for g in grads]]
    flags = [0] + [0] * n + [EXT] * n + [0] * (3 * n) + [ABS] * n
    tensors = [cap.x_in[0]] + [t for ts in kinds for t in ts]
    if updates is not None:
        tensors += updates
        flags += [0] * n
    m = reduce(tensors, flags, check)
    mean, var, count = m[:, 0], m[:, 1], m[:, 6]
    std, rms = var.sqrt(), (var + mean * mean).sqrt()
    pool = torch.stack([mean, std, rms, rms * count.sqrt(), m[:, 2], m[:, 3], m[:, 4], 1.0 - m[:, 5], var], 1)
    at = _columns(n, updates is not None, device)
    flat = pool.view(-1)
    ratios = flat[at.num] / flat[at.den]
    sat, dead = _fractions(cap, blocks, n)
    if distinct:
        w_rms = flat[at.w_rms] * torch.tensor([float(w.shape[1]) for w in weights], dtype=torch.float64,
                                              device=device).sqrt()
        units = distinct_units(weights, row_rms=w_rms)
    else:
        units = torch.full((n,), float("nan"), device=device, dtype=torch.float64)
    parts = [flat[at.direct], ratios, sat.unsqueeze(1), dead.unsqueeze(1), units.unsqueeze(1)]
    if updates is not None:
        parts += [ratios[:, -1:].log10(), flat[at.dw_ok].isfinite().all(1, keepdim=True).double()]
    return torch.cat(parts, 1).index_select(1, at.order)


class _Columns:
    """Where each column of the layer table comes from in the pool of per-tensor statistics, as cached indices."""

    POOL = ("mean", "std", "rms", "norm", "amin", "amax", "absmean", "nonfinite", "var")
    Z, A, GZ, GX, W, GW, DW, X = range(8)   # kinds of tensor, in the order layer_table reduces them; X: the input
    DIRECT = (("z_mean", Z, "mean"), ("z_std", Z, "std"), ("a_mean", A, "mean"), ("a_std", A, "std"),
              ("a_min", A, "amin"), ("a_max", A, "amax"), ("nonfinite_frac", A, "nonfinite"),
              ("grad_z_std", GZ, "std"), ("grad_z_rms", GZ, "rms"), ("grad_w_std", GW, "std"),
              ("grad_w_absmean", GW, "absmean"), ("grad_w_norm", GW, "norm"), ("w_std", W, "std"))
    RATIOS = (("grad_to_weight", (GW, "std"), (W, "std")), ("fwd_var_ratio", (Z, "var"), (X, "var")),
              ("bwd_var_ratio", (GX, "var"), (GZ, "var")), ("update_ratio", (DW, "std"), (W, "std")))

    def __init__(self, n: int, updates: bool, device: torch.device):
        K = len(self.POOL)

        def at(kind: int, col: str, i: int) -> int:
            if kind == self.X:      # each block's input is the previous block's output (the first: the data)
                row = 0 if i == 0 else 1 + self.A * n + i - 1
            else:
                row = 1 + kind * n + i
            return row * K + self.POOL.index(col)

        ratios = self.RATIOS if updates else self.RATIOS[:3]
        t = lambda v: torch.tensor(v, device=device)
        self.direct = t([[at(k, c, i) for _, k, c in self.DIRECT] for i in range(n)])
        self.num = t([[at(*r[1], i) for r in ratios] for i in range(n)])
        self.den = t([[at(*r[2], i) for r in ratios] for i in range(n)])
        self.w_rms = t([at(self.W, "rms", i) for i in range(n)])
        self.dw_ok = t([[at(self.DW, "mean", i), at(self.DW, "var", i)] for i in range(n)]) if updates else None
        names = [d[0] for d in self.DIRECT] + [r[0] for r in ratios] + ["saturated_frac", "dead_frac",
                                                                          "distinct_units"]
        if updates:
            names += ["update_to_weight_log10", "weights_finite"]
        want = list(STAT_NAMES) + (["update_to_weight_log10", "weights_finite"] if updates else [])
        self.order = t([names.index(w) for w in want])


_COLUMNS: dict[tuple, _Columns] = {}


def _columns(n: int, updates: bool, device: torch.device) -> _Columns:
    key = (n, updates, str(device))
    if key not in _COLUMNS:
        if len(_COLUMNS) > 64:
            _COLUMNS.clear()
        _COLUMNS[key] = _Columns(n, updates, device)
    return _COLUMNS[key]


_PICKS: dict[tuple[int, str], torch.Tensor] = {}


def _picks(numel: int, device: torch.device) -> torch.Tensor:
    """_QUANTILE_SAMPLE positions drawn at random (fixed seed) among numel, in order; cached per size. A stride
    would keep whole columns of a matrix and drop the rest (every 64th of a 256-wide row: 4 units of 256)."""
    key = (numel, str(device))
    t = _PICKS.get(key)
    if t is None:
        if len(_PICKS) > 256:
            _PICKS.clear()
        g = torch.Generator(device="cpu").manual_seed(4321)
        if numel <= _QUANTILE_SAMPLE << 10:
            picks = torch.randperm(numel, generator=g)[:_QUANTILE_SAMPLE].sort().values
        else:   # a permutation of a GPU layer's millions costs seconds: drawn with replacement, repeats dropped
            picks = torch.unique(torch.randint(numel, (_QUANTILE_SAMPLE,), generator=g))
        t = _PICKS[key] = picks.to(device)
    return t


def _sample(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().reshape(-1)
    if flat.numel() > _QUANTILE_SAMPLE:
        flat = flat.index_select(0, _picks(flat.numel(), flat.device))
    return flat


def distributions_tensor(cap: Capture, blocks: nn.ModuleList) -> torch.Tensor:
    """[layers, 3, 7]: quantiles of each layer's weights, outputs and weight gradients: of the whole tensor up to
    _QUANTILE_SAMPLE values, else of that many drawn at random (samples of one length are sorted together). A
    sample holding inf or NaN has NaN quantiles: the order of the rest says nothing a chart could draw."""
    n = len(blocks)
    device = cap.a[0].device
    samples: list[torch.Tensor | None] = []
    for i, b in enumerate(blocks):
        gw = b.linear.weight.grad
        samples += [_sample(b.linear.weight), _sample(cap.a[i]), _sample(gw) if gw is not None else None]
    out = torch.full((3 * n, len(QUANTILES)), float("nan"), device=device, dtype=torch.float64)
    present = [i for i, t in enumerate(samples) if t is not None]
    for (length,), idx in _by_shape([samples[i] for i in present]).items():
        rows = [present[j] for j in idx]
        m = torch.stack([samples[r] for r in rows])
        lo, hi, frac = _quantile_points(length, device)
        v = m.sort(dim=1).values                # in the samples' own precision: sorting moves values, exactly
        a, b = v[:, lo].double(), v[:, hi].double()
        q = a + frac * (b - a)                  # numpy's default (linear) interpolation
        out[index(rows, device)] = q.masked_fill(~torch.isfinite(m).all(1, keepdim=True), float("nan"))
    return out.reshape(n, 3, len(QUANTILES))


_POINTS: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _quantile_points(length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For QUANTILES of `length` sorted values: the lower and upper positions and the fraction between them."""
    key = (length, str(device))
    if key not in _POINTS:
        pos = [q * (length - 1) for q in QUANTILES]
        lo = [int(p) for p in pos]
        _POINTS[key] = (torch.tensor(lo, device=device), torch.tensor([min(i + 1, length - 1) for i in lo], device=device),
                        torch.tensor([p - i for p, i in zip(pos, lo)], device=device, dtype=torch.float64))
    return _POINTS[key]


def collect(cap: Capture, blocks: nn.ModuleList, extra: list[torch.Tensor], with_distributions: bool = False,
            check=None) -> tuple[list[dict[str, float]], list[float], list | None]:
    """Reduce every layer on the device and bring the lot to the host in one transfer (`check` is called between
    the reduction's groups; it raises to stop). Returns (per-layer dicts, the extra scalars in order, distributions
    or None)."""
    table = layer_table(cap, blocks, check=check)
    parts = [table.flatten(), torch.stack([e.detach().double().reshape(()) for e in extra]) if extra else None]
    dist = distributions_tensor(cap, blocks) if with_distributions else None
    if dist is not None:
        parts.append(dist.flatten())
    flat = torch.cat([p.to(table.device, torch.float64) for p in parts if p is not None]).tolist()   # the one transfer
    L, K = table.shape
    layers = [dict(zip(STAT_NAMES, flat[r * K:(r + 1) * K])) for r in range(L)]
    for d in layers:
        d["distinct_units"] = int(d["distinct_units"]) if d["distinct_units"] == d["distinct_units"] else None
        undefined_as_none(d)
    pos = L * K
    extras = flat[pos:pos + len(extra)]
    pos += len(extra)
    dists = None
    if dist is not None:
        nq = len(QUANTILES)
        dists = [{k: flat[pos + (r * 3 + j) * nq: pos + (r * 3 + j + 1) * nq] for j, k in enumerate(DIST_KINDS)}
                 for r in range(L)]
    return layers, extras, dists
