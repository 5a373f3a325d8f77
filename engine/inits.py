"""Initialisation registry: name -> in-place init of every Linear layer (torch.nn.init where it exists), LSUV."""
from __future__ import annotations

import math

import torch
from torch import nn

from . import activations
from .reads import INIT_PARAMS
from .spec import Config

# Kaiming needs a torch nonlinearity name; the smooth ReLU-like activations take ReLU's.
_KAIMING_NONLINEARITY = {"identity": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
                         "leaky_relu": "leaky_relu", "selu": "selu", "elu": "relu", "gelu": "relu",
                         "silu": "relu", "softplus": "relu"}


GAIN_INITS = INIT_PARAMS["gain"]        # the schemes that read the gain


def resolved_gain(cfg: Config) -> float:
    """The gain an init uses: the configured number, else the activation's torch gain, else 1."""
    if cfg.gain is not None:
        return float(cfg.gain)
    g = activations.torch_gain(cfg.activation, cfg.slope)
    return 1.0 if g is None else g


def gain_note(cfg: Config) -> str:
    """', gain 1.414 (relu's)' for an init that reads the gain: which it used, and whence when the field is empty
    (torch's gain for the activation, or 1 where torch has none); '' for an init that does not read it."""
    if cfg.init not in GAIN_INITS:
        return ""
    g = resolved_gain(cfg)
    if cfg.gain is not None:
        return f", gain {g:.4g}"
    if activations.torch_gain(cfg.activation, cfg.slope) is None:
        return f", gain 1 ({cfg.activation} has no torch gain)"
    return f", gain {g:.4g} ({cfg.activation}'s)"


def grid_gain_note(points: list[Config]) -> str:
    """For a grid whose points take the empty gain's default and do not all get the same one (a grid of
    activations): which gain each activation got. '' where every point has the same gain or none reads it."""
    auto = {}
    for c in points:
        if c.init in GAIN_INITS and c.gain is None:
            # leaky_relu's gain follows its slope, which no other activation reads
            name = f"leaky_relu (slope {c.slope:g})" if c.activation == "leaky_relu" else c.activation
            auto.setdefault(name, (resolved_gain(c), activations.torch_gain(c.activation, c.slope) is None))
    if len({g for g, _ in auto.values()}) < 2:
        return ""
    said = [f"{name} {g:.4g}" + (" (none in torch)" if none else "") for name, (g, none) in auto.items()]
    return "gain left empty: each activation's torch gain, " + ", ".join(said)


def init_linear(layer: nn.Linear, cfg: Config) -> None:
    """Initialise one Linear in place according to cfg.init (LSUV's orthogonal start included)."""
    w, b = layer.weight, layer.bias
    s = cfg.init
    with torch.no_grad():
        if s == "default":
            layer.reset_parameters()
            return
        if s == "zeros":
            nn.init.zeros_(w)
        elif s == "constant":
            nn.init.constant_(w, cfg.value)
        elif s == "normal":
            nn.init.normal_(w, 0.0, cfg.std)
        elif s == "uniform":
            nn.init.uniform_(w, -cfg.bound, cfg.bound)
        elif s == "scaled_normal":
            nn.init.normal_(w, 0.0, cfg.sigma_w / math.sqrt(w.shape[1]))
            if b is not None:
                nn.init.normal_(b, 0.0, cfg.sigma_b)
                return
        elif s == "xavier_uniform":
            nn.init.xavier_uniform_(w, gain=resolved_gain(cfg))
        elif s == "xavier_normal":
            nn.init.xavier_normal_(w, gain=resolved_gain(cfg))
        elif s in ("kaiming_uniform", "kaiming_normal"):
            nl = _KAIMING_NONLINEARITY[cfg.activation]
            fn = nn.init.kaiming_uniform_ if s == "kaiming_uniform" else nn.init.kaiming_normal_
            fn(w, a=cfg.slope if nl == "leaky_relu" else 0.0, mode=cfg.mode, nonlinearity=nl)
        elif s == "orthogonal":
            nn.init.orthogonal_(w, gain=resolved_gain(cfg))
        elif s == "lsuv":
            nn.init.orthogonal_(w, gain=1.0)
        elif s == "eye":
            nn.init.eye_(w)
        elif s == "sparse":
            nn.init.sparse_(w, cfg.sparsity, std=cfg.std)
        else:
            raise ValueError(f"init: unknown scheme {s!r}")
        if b is not None:
            nn.init.zeros_(b)


def _lsuv_blocks(blocks: nn.ModuleList, x: torch.Tensor, tol: float, max_iter: int, check) -> list[int]:
    """LSUV on a chain of blocks: the input of each is computed once, from the blocks before it, already scaled
    (a pass of the whole net per iteration made a deep net's LSUV cost grow with depth squared)."""
    iters = []
    h = x
    with torch.no_grad():
        for b in blocks:
            check()
            k = 0
            for k in range(1, max_iter + 1):
                var = b.linear(h).var(unbiased=False)
                if not torch.isfinite(var) or var <= 0:
                    break
                if abs(float(var) - 1.0) < tol:
                    break
                b.linear.weight.div_(var.sqrt())
            iters.append(k)
            h = b(h)
    return iters


def lsuv_(model: nn.Module, x: torch.Tensor, tol: float, max_iter: int = 10, check=None) -> list[int]:
    """LSUV (Mishkin and Matas 2015): after an orthogonal start, rescale each Linear in order on the batch x
    until the variance of its output is 1 within tol. Returns the iterations each layer took. `check` is called
    before each layer (it raises to cancel)."""
    check = check or (lambda: None)
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList) and all(hasattr(b, "linear") for b in blocks):
        return _lsuv_blocks(blocks, x, tol, max_iter, check)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    seen: dict[int, torch.Tensor] = {}

    def grab(mod, inp, out):
        seen[id(mod)] = out.detach()

    iters = []
    with torch.no_grad():
        for lin in linears:
            check()
            handle = lin.register_forward_hook(grab)
            try:
                k = 0
                for k in range(1, max_iter + 1):
                    model(x)
                    var = seen[id(lin)].var(unbiased=False)
                    if not torch.isfinite(var) or var <= 0:
                        break
                    if abs(float(var) - 1.0) < tol:
                        break
                    lin.weight.div_(var.sqrt())
                iters.append(k)
            finally:
                handle.remove()
    return iters


def apply_init(model: nn.Module, cfg: Config, sample: torch.Tensor | None = None, check=None) -> None:
    """Initialise every Linear of the model in order; LSUV also needs a data batch (drawn N(0, 1) if none).
    `check` is called before each layer (it raises to cancel a deep net's initialisation)."""
    check = check or (lambda: None)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            check()
            init_linear(m, cfg)
    if cfg.init == "lsuv":
        if sample is None:
            first = next(m for m in model.modules() if isinstance(m, nn.Linear))
            sample = torch.randn(max(cfg.batch, 16), first.in_features, device=first.weight.device)
        was_training = model.training
        model.eval()
        try:
            lsuv_(model, sample, cfg.lsuv_tol, check=check)
        finally:
            model.train(was_training)
