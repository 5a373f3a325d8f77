"""Singular values of the input-output Jacobian at initialisation (Saxe et al. 2014; Pennington et al. 2017).

Dynamical isometry means every singular value of d(output)/d(input) near 1: a deep linear net with orthogonal
weights has exactly that, a Gaussian one spreads them over orders of magnitude as depth grows.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from . import device as devices
from .models import build_mlp
from .reads import scale_of
from .spec import Config, SpecError, validate

MAX_INPUTS = 256
CHUNK_INPUTS = 4         # inputs whose Jacobians are taken together, a stop honoured between such groups


def input_jacobians(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[n, out, in]: the Jacobian of the model at each row of x, every row pushed through alone."""
    from torch.func import jacrev, vmap

    def one(xi: torch.Tensor) -> torch.Tensor:
        return model(xi.unsqueeze(0)).squeeze(0)

    return vmap(jacrev(one))(x)


def _check_size(cfg: Config, inputs: int, dev: torch.device, itemsize: int) -> None:
    # reverse mode pushes an out x out identity back through the net: every layer keeps inputs x out cotangents
    # of its width (measured: 5.2 GB for 256 inputs of the default 20 x 256 net), besides J and its SVD
    o, i = cfg.out_features, cfg.in_features
    need = lambda k: (o * o + 2 * k * o * (i + o + cfg.depth * cfg.width)) * itemsize
    free = devices.free_bytes(dev)
    if need(inputs) > 0.5 * free:
        # the refusal names what can be lowered: the inputs where one input would fit, else the width where the
        # layers' cotangents outweigh J's sides, else J's larger side
        if need(1) <= 0.5 * free:
            field, value, what = "inputs", inputs, "fewer inputs or smaller in/out features"
        elif cfg.depth * cfg.width >= i + o:
            field, value, what = "width", cfg.width, f"a narrower or shallower net ({cfg.depth} x {cfg.width})"
        else:
            field, value = ("out_features", o) if o >= i else ("in_features", i)
            what = "smaller in/out features"
        many = f"{inputs} Jacobians of {o} x {i} need" if inputs != 1 else f"the Jacobian of {o} x {i} needs"
        raise SpecError(field, value, f"{what}: {many} about {need(inputs) / 2**30:.1f} GiB, "
                        f"{free / 2**30:.1f} GiB is free on {dev}")


def histogram(log_values: torch.Tensor, bins: int, mask: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts of the values (those where `mask` holds) in `bins` equal bins from their min to their max (a
    one-decade window around them when they are all equal, around 0 when there are none), and that min and max; all
    on the device, no transfer (a mask rather than an index: picking the values out would wait for their count)."""
    if mask is None:
        mask = torch.ones_like(log_values, dtype=torch.bool)
    some = mask.any()
    lo = torch.where(some, torch.where(mask, log_values, torch.inf).min(), 0.0)
    hi = torch.where(some, torch.where(mask, log_values, -torch.inf).max(), 0.0)
    flat = (hi - lo) < 1e-9
    lo = torch.where(flat, lo - 0.5, lo)
    hi = torch.where(flat, hi + 0.5, hi)
    idx = ((log_values - lo) / (hi - lo) * bins).nan_to_num(0.0).floor().clamp(0, bins - 1).long()
    return torch.bincount(idx, weights=mask.double(), minlength=bins).round().long(), lo, hi


def jacobian_spectrum(cfg: Config, inputs: int = 1, bins: int = 20,
                      check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Build and initialise the MLP as the probe does (same seed), take its Jacobian at `inputs` N(0, 1) inputs in
    eval mode (dropout off, batch norm on its running statistics) and in float64 where the device has it, so the
    smallest singular values are not lost to rounding.

    singular_values: the sorted spectra averaged over the inputs (descending); max and min of that average.
    resolution: max x max(out, in) x the dtype's epsilon, the smallest singular value the SVD can tell from zero
    here (numpy's matrix_rank tolerance); numerical_rank: how many averaged values reach it. condition_number is
    max / min when min is resolved, else inf (singular), with condition_at_least max / resolution where the min is
    computed above zero but below the resolution; None for a zero Jacobian (0 / 0: no direction gets through).
    histogram: counts of log10 of every resolved singular value of every input (each input against its own
    resolution); exact zeros and unresolved values counted apart. `check` (which raises to cancel) is called
    between groups of CHUNK_INPUTS inputs: one group's Jacobians and SVDs run to their end."""
    check = check or (lambda: None)
    validate(cfg)
    if not 1 <= inputs <= MAX_INPUTS:
        raise SpecError("inputs", inputs, f"an integer in [1, {MAX_INPUTS}]")
    if not 1 <= bins <= 1000:
        raise SpecError("bins", bins, "an integer in [1, 1000]")
    dev = devices.resolve(cfg.device)
    dtype = torch.float32 if dev.type == "mps" else torch.float64
    _check_size(cfg, inputs, dev, torch.finfo(dtype).bits // 8)
    # no batch here: its inputs are counted by _check_size
    devices.check_fits(cfg.replace(batch=1), dev, fields=("width", "depth", "in_features", "out_features"))
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, dev, check=check).to(dtype).eval()
    x = torch.randn(inputs, cfg.in_features, device=dev, dtype=dtype)
    spectra, finites = [], []
    for start in range(0, inputs, CHUNK_INPUTS):
        check()
        jac = input_jacobians(model, x[start:start + CHUNK_INPUTS]).detach()
        ok = torch.isfinite(jac)
        finites.append(ok.all())
        # an SVD of inf or NaN fails (or gives NaN): it runs on the finite entries, and the overflow is said once
        # the one transfer has brought the flag to the host, rather than torch's LinAlgError
        spectra.append(torch.linalg.svdvals(torch.where(ok, jac, torch.zeros_like(jac))))  # [chunk, k], descending
    check()
    s = torch.cat(spectra)
    mean_s = s.mean(0)
    eps = torch.finfo(dtype).eps * max(cfg.out_features, cfg.in_features)
    flat = s.flatten()
    resolved = (s >= s[:, :1] * eps).flatten() & (flat > 0)
    # no value above zero or the resolution: no bar, only the counts apart
    counts, lo, hi = histogram(torch.log10(torch.where(resolved, flat, torch.ones_like(flat))), bins, resolved)
    zeros = (flat == 0).sum()
    unresolved = (~resolved).sum() - zeros
    finite = torch.stack(finites).all()
    dt = mean_s.dtype
    host = torch.cat([mean_s, counts.to(dt), torch.stack([zeros.to(dt), unresolved.to(dt), finite.to(dt),
                                                          (flat ** 2).mean(), lo, hi])]).tolist()   # one transfer
    k = mean_s.numel()
    sv = host[:k]
    hist = [int(c) for c in host[k:k + bins]]
    n_zero, n_unresolved, all_finite, mean_sq, lo, hi = host[k + bins:]
    if not all_finite:
        scale = scale_of(cfg.init)
        raise NonFiniteJacobian(f"the Jacobian is not finite: the net's derivatives overflow {dtype_name(dtype)} at "
                                f"these settings (an exploding net: lower {scale + ' or ' if scale else ''}the depth)")
    smax, smin = sv[0], sv[-1]
    resolution = smax * eps
    below = sum(1 for v in sv if v < resolution or v == 0)
    # the values descend: any below the resolution includes min
    cond = None if smax == 0 else math.inf if below else smax / smin
    return {
        "singular_values": sv, "max": smax, "min": smin, "condition_number": cond,
        "log10_spread": math.log10(cond) if cond is not None and 0 < cond < math.inf else None, "mean_squared": mean_sq,
        "resolution": resolution, "numerical_rank": k - below,
        # a bound only where the min is computed but unresolved; an exact zero (a dead or pruned path) is singular
        "condition_at_least": smax / resolution if 0 < smin < resolution else None,
        "histogram": {"edges": [lo + (hi - lo) * i / bins for i in range(bins + 1)], "counts": hist,
                      "zeros": int(n_zero), "unresolved": int(n_unresolved), "log10": True},
        "inputs": inputs, "shape": [cfg.out_features, cfg.in_features],
        "dtype": dtype_name(dtype), "device": str(dev), "config": cfg.to_dict(),
    }


class NonFiniteJacobian(ValueError):
    """The Jacobian overflowed its dtype: there is no spectrum to take."""

    plain_message = True        # its message is worded for the user: no class name before it


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def shortfall(res: dict[str, Any]) -> tuple[int, int]:
    """(exactly zero, below the resolution, zeros included) among a result's averaged singular values: what its min
    and condition number can be said to be."""
    sv = res["singular_values"]
    return sum(1 for v in sv if v == 0), len(sv) - res.get("numerical_rank", len(sv))


def __getattr__(name: str):
    if name == "JacobianJob":      # it lives in jobs.py now, whose jobs load no torch when made
        from .jobs import JacobianJob

        return JacobianJob
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
