"""On-device per-layer statistics of an MLP pass: hooks that capture tensors, and reductions stacked for one transfer."""
from __future__ import annotations

import torch
from torch import nn

from . import activations
from .moments import Moments, index

STAT_NAMES = (
    "z_mean", "z_std", "a_mean", "a_std", "a_min", "a_max", "saturated_frac", "dead_frac", "nonfinite_frac",
    "grad_z_std", "grad_z_rms", "grad_w_std", "grad_w_absmean", "grad_w_norm", "w_std", "grad_to_weight",
    "fwd_var_ratio", "bwd_var_ratio", "distinct_units",
)
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DIST_KINDS = ("weight", "activation", "gradient")
_QUANTILE_SAMPLE = 2048


class Capture:
    """Context manager: for one pass, every Block reports its input, the Linear's output z, the activation's input
    and output, and its own output a, with gradients retained. The taps are always removed on exit."""

    def __init__(self, blocks: nn.ModuleList, grads: bool = True):
        self.blocks = list(blocks)
        self.grads = grads
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
                self.x_in[i] = self._keep(x)
                self.z[i] = self._keep(z)
                self.pre[i], self.act[i], self.a[i] = pre, act, out

            b.tap = tap
        return self

    def __exit__(self, *exc) -> None:
        for b in self.blocks:
            b.tap = None


_PROJECTIONS: dict[tuple[int, str], torch.Tensor] = {}


def _projection(n: int, device: torch.device) -> torch.Tensor:
    """[n, 2] small random integers (as float64): a quantised row's projections on them are exact integers, the
    same whatever order a matmul sums in, so equal rows always project equally."""
    key = (n, str(device))
    if key not in _PROJECTIONS:
        g = torch.Generator(device="cpu").manual_seed(1234)
        _PROJECTIONS[key] = torch.randint(-512, 513, (n, 2), generator=g).double().to(device)
    return _PROJECTIONS[key]


def _by_shape(tensors: list[torch.Tensor]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    return groups


def distinct_units(weights: list[torch.Tensor], rel_tol: float = 1e-5) -> torch.Tensor:
    """How many rows of each matrix differ (entries equal within rel_tol of its max |w|), as a float64 tensor,
    without a sync. Rows are quantised and hashed by two exact integer projections; sorted by the first, equal rows
    sit together, and a change in either projection starts a new unit. Matrices of one shape are done together."""
    mats = [w.detach().unsqueeze(1) if w.dim() == 1 else w.detach() for w in weights]
    out = torch.empty(len(mats), device=mats[0].device, dtype=torch.float64)
    for (rows, cols), idx in _by_shape(mats).items():
        w = torch.stack([mats[i] for i in idx]).float()
        scale = w.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
        # quantised entries stay below 2^17 in size, so projections stay exact in float64
        q = torch.round(w / (scale * rel_tol)).clamp_(-(1 << 17), 1 << 17).double()
        p = q @ _projection(cols, w.device)                      # [k, rows, 2]
        order = torch.argsort(p[..., 0], dim=1)
        ps = torch.gather(p, 1, order.unsqueeze(2).expand(-1, -1, 2))
        units = 1 + (ps[:, 1:] != ps[:, :-1]).any(dim=2).sum(dim=1)
        out[index(idx, w.device)] = units.double()
    return out


def distinct_rows(w: torch.Tensor, rel_tol: float = 1e-5) -> torch.Tensor:
    """distinct_units of one matrix (or of a vector's entries), as a 0-d tensor."""
    return distinct_units([w], rel_tol)[0]


def _by_activation(cap: Capture, blocks: list[nn.Module], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Saturated and dead fractions per layer: one masked reduction per distinct activation."""
    device = cap.z[0].device
    items: list[tuple[int, torch.Tensor]] = []
    groups: dict[str, list[int]] = {}
    for i, b in enumerate(blocks):
        groups.setdefault(b.activation_name, []).append(i)
    for name, idx in groups.items():
        if name in activations.RELU_FAMILY:
            items += [(n + i, cap.act[i].detach() == 0) for i in idx]
        pre = torch.cat([cap.pre[i].detach().reshape(-1) for i in idx])
        act = torch.cat([cap.act[i].detach().reshape(-1) for i in idx])
        mask = activations.saturated_mask(name, pre, act)
        if mask is not None:
            items += [(i, m) for i, m in zip(idx, mask.split([cap.pre[i].numel() for i in idx]))]
    if not items:
        z = torch.zeros(n, device=device, dtype=torch.float64)
        return z, z
    m = Moments(2 * n, device).add(items, ("mean",)).mean.nan_to_num(0.0)
    return m[:n], m[n:]


def layer_table(cap: Capture, blocks: nn.ModuleList, distinct: bool = True) -> torch.Tensor:
    """[layers, len(STAT_NAMES)]: every statistic of every layer as one float64 tensor on the device, from a few
    batched reductions whatever the depth. Without `distinct`, distinct_units is NaN (it costs a sort per layer)."""
    blocks = list(blocks)
    n = len(blocks)
    device = cap.z[0].device
    Z, A, GZ, GW, W, GX, X = range(7)
    weights = [b.linear.weight for b in blocks]
    # dL/d(input) through the Linear alone, as Glorot's backward condition has it: autograd's input gradient
    # where the Linear is the input's only consumer, else dL/dz @ W (a residual path adds to the input's gradient)
    gx = []
    for i, (b, z, w) in enumerate(zip(blocks, cap.z, weights)):
        x = cap.x_in[i]
        own = i > 0 and not b.residual and x is not None and x.grad is not None
        gx.append(x.grad if own else (z.grad @ w.detach() if z.grad is not None else None))
    items: list[tuple[int, torch.Tensor]] = [(X * n, cap.x_in[0])]
    for kind, tensors in ((Z, cap.z), (GZ, [z.grad for z in cap.z]), (W, weights), (GX, gx)):
        items += [(kind * n + i, t) for i, t in enumerate(tensors) if t is not None]
    m = (Moments(7 * n, device).add(items, ("mean", "var"))
         .add([(A * n + i, t) for i, t in enumerate(cap.a)])
         .add([(GW * n + i, w.grad) for i, w in enumerate(weights) if w.grad is not None],
              ("mean", "var", "absmean")))
    row = lambda v, k: v[k * n:(k + 1) * n]
    mean, var = m.mean, m.var
    # each block's input is the previous block's output: its variance is the previous a's
    x_var = torch.cat([var[X * n:X * n + 1], row(var, A)[:-1]])
    sat, dead = _by_activation(cap, blocks, n)
    gw_std, w_std = row(var, GW).sqrt(), row(var, W).sqrt()
    gz_var, gz_mean = row(var, GZ), row(mean, GZ)
    gw_norm = (row(m.count, GW) * (row(var, GW) + row(mean, GW) ** 2)).sqrt()
    units = distinct_units(weights) if distinct \
        else torch.full((n,), float("nan"), device=device, dtype=torch.float64)
    return torch.stack([
        row(mean, Z), row(var, Z).sqrt(), row(mean, A), row(var, A).sqrt(), row(m.amin, A), row(m.amax, A), sat, dead,
        1.0 - row(m.finite, A), gz_var.sqrt(), (gz_var + gz_mean * gz_mean).sqrt(), gw_std, row(m.absmean, GW),
        gw_norm, w_std, gw_std / w_std, row(var, Z) / x_var, row(var, GX) / gz_var, units,
    ], dim=1)


def _sample(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().reshape(-1)
    if flat.numel() > _QUANTILE_SAMPLE:
        flat = flat[:: flat.numel() // _QUANTILE_SAMPLE][:_QUANTILE_SAMPLE]
    return flat


def distributions_tensor(cap: Capture, blocks: nn.ModuleList) -> torch.Tensor:
    """[layers, 3, 7]: quantiles of each layer's weights, outputs and weight gradients (a strided sample of at most
    _QUANTILE_SAMPLE values each; samples of one length are sorted together)."""
    n = len(blocks)
    device = cap.a[0].device
    samples: list[torch.Tensor | None] = []
    for i, b in enumerate(blocks):
        gw = b.linear.weight.grad
        samples += [_sample(b.linear.weight), _sample(cap.a[i]), _sample(gw) if gw is not None else None]
    out = torch.full((3 * n, len(QUANTILES)), float("nan"), device=device, dtype=torch.float64)
    present = [i for i, t in enumerate(samples) if t is not None]
    q = torch.tensor(QUANTILES, device=device, dtype=torch.float64)
    for _, idx in _by_shape([samples[i] for i in present]).items():
        rows = [present[j] for j in idx]
        m = torch.stack([samples[r] for r in rows]).double()
        m = torch.nan_to_num(m, nan=0.0, posinf=3.0e38, neginf=-3.0e38)
        out[index(rows, device)] = torch.quantile(m, q, dim=1).T
    return out.reshape(n, 3, len(QUANTILES))


def collect(cap: Capture, blocks: nn.ModuleList, extra: list[torch.Tensor],
            with_distributions: bool = False) -> tuple[list[dict[str, float]], list[float], list | None]:
    """Reduce every layer on the device and bring the lot to the host in one transfer.
    Returns (per-layer dicts, the extra scalars in order, distributions or None)."""
    table = layer_table(cap, blocks)
    parts = [table.flatten(), torch.stack([e.detach().double().reshape(()) for e in extra]) if extra else None]
    dist = distributions_tensor(cap, blocks) if with_distributions else None
    if dist is not None:
        parts.append(dist.flatten())
    flat = torch.cat([p.to(table.device, torch.float64) for p in parts if p is not None]).tolist()   # the one transfer
    L, K = table.shape
    layers = [dict(zip(STAT_NAMES, flat[r * K:(r + 1) * K])) for r in range(L)]
    for d in layers:
        d["distinct_units"] = int(d["distinct_units"]) if d["distinct_units"] == d["distinct_units"] else None
    pos = L * K
    extras = flat[pos:pos + len(extra)]
    pos += len(extra)
    dists = None
    if dist is not None:
        nq = len(QUANTILES)
        dists = [{k: flat[pos + (r * 3 + j) * nq: pos + (r * 3 + j + 1) * nq] for j, k in enumerate(DIST_KINDS)}
                 for r in range(L)]
    return layers, extras, dists
