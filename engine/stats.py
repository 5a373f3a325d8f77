"""On-device per-layer statistics of an MLP pass: hooks that capture tensors, and reductions stacked for one transfer."""
from __future__ import annotations

import torch
from torch import nn

from . import activations

STAT_NAMES = (
    "z_mean", "z_std", "a_mean", "a_std", "a_min", "a_max", "saturated_frac", "dead_frac", "nonfinite_frac",
    "grad_z_std", "grad_z_rms", "grad_w_std", "grad_w_absmean", "grad_w_norm", "w_std", "grad_to_weight",
    "fwd_var_ratio", "bwd_var_ratio", "distinct_units",
)
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DIST_KINDS = ("weight", "activation", "gradient")
_QUANTILE_SAMPLE = 65536


class Capture:
    """Context manager: forward hooks on every Block that keep the Linear's input and output z, the activation's
    input and output, and the block output a, with gradients retained. Handles are always removed on exit."""

    def __init__(self, blocks: nn.ModuleList, grads: bool = True):
        self.blocks = list(blocks)
        self.grads = grads
        self.x_in: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.z: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.pre: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.act: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.a: list[torch.Tensor | None] = [None] * len(self.blocks)
        self._handles: list = []

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        if self.grads and t.requires_grad:
            t.retain_grad()
        return t

    def __enter__(self) -> "Capture":
        for i, b in enumerate(self.blocks):
            def on_linear(mod, inp, out, i=i):
                self.x_in[i] = self._keep(inp[0])
                self.z[i] = self._keep(out)

            def on_act(mod, inp, out, i=i):
                self.pre[i] = inp[0]
                self.act[i] = out

            def on_block(mod, inp, out, i=i):
                self.a[i] = out

            self._handles += [b.linear.register_forward_hook(on_linear), b.act.register_forward_hook(on_act),
                              b.register_forward_hook(on_block)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def _std(t: torch.Tensor) -> torch.Tensor:
    return t.float().std(correction=0) if t.numel() > 0 else t.new_tensor(float("nan"))


def _var(t: torch.Tensor) -> torch.Tensor:
    return t.float().var(correction=0)


_PROJECTIONS: dict[tuple[int, str], torch.Tensor] = {}


def _projection(n: int, device: torch.device) -> torch.Tensor:
    key = (n, str(device))
    if key not in _PROJECTIONS:
        g = torch.Generator(device="cpu").manual_seed(1234)
        _PROJECTIONS[key] = torch.randn(n, generator=g, dtype=torch.float64).to(device)
    return _PROJECTIONS[key]


def distinct_rows(w: torch.Tensor, rel_tol: float = 1e-5) -> torch.Tensor:
    """How many rows of w differ (entries equal within rel_tol of max |w|), as a 0-d tensor, without a sync:
    rows are quantised, ordered by a fixed projection, and adjacent rows compared."""
    w = w.detach().float()
    if w.dim() == 1:
        w = w.unsqueeze(1)
    scale = w.abs().amax().clamp_min(1e-30)
    q = torch.round(w / (scale * rel_tol))
    r = _projection(q.shape[1], q.device)
    order = torch.argsort(q.double() @ r)
    qs = q[order]
    return 1 + (qs[1:] != qs[:-1]).any(dim=1).sum()


def layer_vector(cap: Capture, i: int, block: nn.Module, x_grad: torch.Tensor | None) -> torch.Tensor:
    """The STAT_NAMES of layer i as one float tensor on the device."""
    z, a, x_in = cap.z[i].detach(), cap.a[i].detach(), cap.x_in[i]
    act_out = cap.act[i].detach()
    name = block.activation_name
    nan = z.new_tensor(float("nan"), dtype=torch.float32)
    zero = z.new_tensor(0.0, dtype=torch.float32)
    sat = activations.saturated_mask(name, cap.pre[i].detach(), act_out)
    sat_frac = sat.float().mean() if sat is not None else zero
    dead = (act_out == 0).float().mean() if name in activations.RELU_FAMILY else zero
    w = block.linear.weight
    gw = w.grad
    gz = cap.z[i].grad
    gx = x_grad if i == 0 else (x_in.grad if x_in is not None else None)
    w_std = _std(w.detach())
    if gw is not None:
        gw_std, gw_abs, gw_norm = _std(gw), gw.float().abs().mean(), gw.float().norm()
    else:
        gw_std = gw_abs = gw_norm = nan
    gz_std = _std(gz) if gz is not None else nan
    gz_rms = gz.float().square().mean().sqrt() if gz is not None else nan
    bwd = _var(gx) / _var(gz) if (gx is not None and gz is not None) else nan
    fwd = _var(z) / _var(x_in.detach())
    return torch.stack([
        z.float().mean(), _std(z), a.float().mean(), _std(a), a.float().amin(), a.float().amax(), sat_frac, dead,
        (~torch.isfinite(a)).float().mean(), gz_std, gz_rms, gw_std, gw_abs, gw_norm, w_std, gw_std / w_std, fwd, bwd,
        distinct_rows(w).float(),
    ])


def _quantiles(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().float().flatten()
    if flat.numel() > _QUANTILE_SAMPLE:
        step = flat.numel() // _QUANTILE_SAMPLE
        flat = flat[::step][:_QUANTILE_SAMPLE]
    flat = torch.nan_to_num(flat, nan=0.0, posinf=3.0e38, neginf=-3.0e38)
    q = torch.tensor(QUANTILES, device=flat.device, dtype=flat.dtype)
    return torch.quantile(flat, q)


def distributions_tensor(cap: Capture, blocks: nn.ModuleList) -> torch.Tensor:
    """[layers, 3, 7]: quantiles of each layer's weights, outputs and weight gradients."""
    rows = []
    for i, b in enumerate(blocks):
        gw = b.linear.weight.grad
        rows.append(torch.stack([
            _quantiles(b.linear.weight), _quantiles(cap.a[i]),
            _quantiles(gw) if gw is not None else torch.full((len(QUANTILES),), float("nan"), device=cap.a[i].device),
        ]))
    return torch.stack(rows)


def collect(cap: Capture, blocks: nn.ModuleList, x_grad: torch.Tensor | None, extra: list[torch.Tensor],
            with_distributions: bool = False) -> tuple[list[dict[str, float]], list[float], list | None]:
    """Reduce every layer on the device and bring the lot to the host in one transfer.
    Returns (per-layer dicts, the extra scalars in order, distributions or None)."""
    table = torch.stack([layer_vector(cap, i, b, x_grad) for i, b in enumerate(blocks)])
    parts = [table.flatten(), torch.stack([e.detach().float().reshape(()) for e in extra]) if extra else None]
    dist = distributions_tensor(cap, blocks) if with_distributions else None
    if dist is not None:
        parts.append(dist.flatten())
    flat = torch.cat([p.to(table.device) for p in parts if p is not None]).tolist()   # the one transfer
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
