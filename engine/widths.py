"""Width check (muP's coordinate check, Yang and Hu): mean |a| per layer against width over the first steps.

The same MLP is built at every width (the hidden width varies; input and output sizes stay), trained for a few
steps with the configured optimiser on one fixed N(0, 1) batch against fixed N(0, 1) targets, and every layer's
mean |a| is recorded before each step. Lines flat in width mean a width-stable parametrisation; under the
standard one, updates move the output by an amount that grows with width.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch import nn

from . import device as devices
from .jobs import DEFAULT_WIDTHS
from .models import build_mlp
from .reads import read_by_widths
from .spec import Config, SpecError, check_value, validate

MAX_STEPS = 1000


def fixed_batch(cfg: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs and targets every width sees: N(0, 1), drawn from their own seeded stream."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    x = torch.randn(cfg.batch, cfg.in_features, generator=g)
    y = torch.randn(cfg.batch, cfg.out_features, generator=g)
    return x.to(device), y.to(device)


def layer_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every block's output a, in order (the MLP's forward is exactly this loop)."""
    outs = []
    h = x
    for b in model.blocks:
        h = b(h)
        outs.append(h)
    return outs


def train_width(cfg: Config, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device,
                check: Callable[[], None] | None = None) -> tuple[list[list[float]], list[list[float]], list[float]]:
    """One width: (mean |a| [step][layer], mean |a - a_0| [step][layer], loss [step]) for steps 0..steps, where
    step t is the forward pass after t updates. Reduced on the device, one transfer at the end. With dropout the
    figures are of a forward without it (each training forward draws new masks, which would read as movement) and
    the update comes from a second forward with it."""
    from .train import make_optimizer

    check = check or (lambda: None)
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, device, sample=x, check=check)
    model.train()
    opt = make_optimizer(cfg, model.parameters())
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    first: list[torch.Tensor] = []
    rows = []
    for t in range(steps + 1):
        check()         # a wide net's steps take seconds: a stop need not wait for the width to end
        for m in dropouts:
            m.eval()
        with torch.set_grad_enabled(not dropouts):      # with dropout, the update takes a forward of its own
            outs = layer_outputs(model, x)
            loss = nn.functional.mse_loss(outs[-1], y)
        for m in dropouts:
            m.train()
        if t == 0:
            first = [a.detach() for a in outs]
        rows.append(torch.stack([a.detach().abs().mean() for a in outs]
                                + [(a.detach() - a0).abs().mean() for a, a0 in zip(outs, first)]
                                + [loss.detach()]))
        if t < steps:
            opt.zero_grad(set_to_none=True)
            if dropouts:
                loss = nn.functional.mse_loss(layer_outputs(model, x)[-1], y)
            loss.backward()
            if cfg.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
    table = torch.stack(rows).double().tolist()       # the one transfer
    n = len(model.blocks)
    return [r[:n] for r in table], [r[n:2 * n] for r in table], [r[-1] for r in table]


def loglog_slope(widths: list[int], values: list[float | None]) -> float | None:
    """Least-squares slope of log(value) against log(width): 0 is flat, 1 grows like the width."""
    pts = [(math.log(w), math.log(v)) for w, v in zip(widths, values)
           if v is not None and math.isfinite(v) and v > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else None


def width_check(cfg: Config, widths: list[int] | tuple[int, ...] = DEFAULT_WIDTHS, steps: int = 5,
                check: Callable[[], None] | None = None, progress: Callable[[int, int], None] | None = None
                ) -> dict[str, Any]:
    """The coordinate check over the widths. mean_abs_a[w][t][l] and mean_abs_delta[w][t][l] are width index,
    step, layer; slopes[t][l] and delta_slopes[t][l] their log-log slopes against width. check() is called
    before each width and each of its steps (it may raise to cancel), progress(done, total) after each width."""
    validate(cfg)
    if cfg.depth == 1:      # its one Linear maps in_features to out_features: no width to vary, nothing to check
        raise SpecError("depth", 1, "at least 2 for a width check: a net of one layer has no hidden width")
    widths = [int(w) for w in widths]
    if len(widths) < 2:
        raise SpecError("widths", widths, "at least two widths")
    for w in widths:
        check_value("width", w)
    if not 0 <= steps <= MAX_STEPS:
        raise SpecError("steps", steps, f"an integer in [0, {MAX_STEPS}]")
    dev = devices.resolve(cfg.device)
    devices.check_fits(cfg.replace(width=max(widths)), dev, training=True,
                       fields=("width", "depth", "batch", "in_features", "out_features"),
                       names={"width": ("widths", ",".join(map(str, widths)))})
    x, y = fixed_batch(cfg, dev)
    t0 = time.perf_counter()
    mean_abs, delta, losses = [], [], []
    for w in widths:
        if check is not None:
            check()
        a, d, l = train_width(cfg.replace(width=w), x, y, steps, dev, check)
        mean_abs.append(a)
        delta.append(d)
        losses.append(l)
        if progress is not None:
            progress(len(mean_abs), len(widths))
    n_layers = cfg.depth
    slopes = [[loglog_slope(widths, [mean_abs[i][t][l] for i in range(len(widths))]) for l in range(n_layers)]
              for t in range(steps + 1)]
    dslopes = [[loglog_slope(widths, [delta[i][t][l] for i in range(len(widths))]) for l in range(n_layers)]
               for t in range(steps + 1)]
    return {"widths": widths, "steps": steps, "layers": n_layers,
            "layer_names": [f"blocks.{i}" for i in range(n_layers)],
            "mean_abs_a": mean_abs, "mean_abs_delta": delta, "loss": losses,
            "nonfinite": first_nonfinite(widths, mean_abs, losses),
            "slopes": slopes, "delta_slopes": dslopes, "optimizer": cfg.optimizer, "lr": cfg.lr,
            "device": str(dev), "seconds": time.perf_counter() - t0, "config": read_by_widths(cfg.to_dict())}


def first_nonfinite(widths: list[int], mean_abs: list[list[list[float]]], losses: list[list[float]]
                    ) -> list[dict[str, Any]]:
    """Per width that went non-finite: the first step (0: as initialised) and there, in the order a forward computes
    them, the first layer whose mean |a| is non-finite (tensor "activation"), else the loss (tensor "loss", layer
    None: finite outputs whose squared error overflows)."""
    out = []
    for i, (w, per_step) in enumerate(zip(widths, mean_abs)):
        for t, row in enumerate(per_step):
            bad = [l for l, v in enumerate(row) if v is None or not math.isfinite(v)]
            if bad:
                out.append({"width": w, "step": t, "layer": bad[0], "tensor": "activation"})
                break
            loss = losses[i][t]
            if loss is None or not math.isfinite(loss):
                out.append({"width": w, "step": t, "layer": None, "tensor": "loss"})
                break
    return out


def __getattr__(name: str):
    if name == "WidthsJob":      # it lives in jobs.py now, whose jobs load no torch when made
        from .jobs import WidthsJob

        return WidthsJob
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
