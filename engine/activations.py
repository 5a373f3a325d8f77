"""Activation registry: name -> module, derivative curve, torch gain, empirical gain, saturation rule."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# torch.nn.init.calculate_gain knows these names; the rest have no torch gain.
_TORCH_GAIN_NAME = {"identity": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
                    "leaky_relu": "leaky_relu", "selu": "selu"}
RELU_FAMILY = ("relu", "leaky_relu")
SATURATING_OUTPUT = ("tanh", "sigmoid")     # saturation read from the output; the others' from the input z
SATURATING = SATURATING_OUTPUT + ("elu", "selu", "softplus", "gelu", "silu")


def module(name: str, slope: float = 0.01) -> nn.Module:
    """A fresh nn.Module for an activation name."""
    table = {
        "identity": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
        "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus,
    }
    if name == "leaky_relu":
        return nn.LeakyReLU(slope)
    return table[name]()


def torch_gain(name: str, slope: float = 0.01) -> float | None:
    """torch's recommended gain, or None where torch has none."""
    if name not in _TORCH_GAIN_NAME:
        return None
    tn = _TORCH_GAIN_NAME[name]
    return float(nn.init.calculate_gain(tn, slope if tn == "leaky_relu" else None))


def curve(name: str, lo: float = -5.0, hi: float = 5.0, n: int = 201, slope: float = 0.01):
    """x, f(x) and f'(x) (by autograd) on a grid, as plain lists."""
    # lo + (hi - lo) i / (n - 1): the midpoint of a symmetric grid is exactly 0 (linspace's steps leave -2.8e-16)
    x = (torch.arange(n, dtype=torch.float64) * (hi - lo) / max(n - 1, 1) + lo).requires_grad_()
    y = module(name, slope)(x)
    (d,) = torch.autograd.grad(y.sum(), x)
    return x.detach().tolist(), y.detach().tolist(), d.tolist()


def max_derivative(name: str, slope: float = 0.01) -> float:
    """max |f'| over a wide, fine grid."""
    _, _, d = curve(name, -20.0, 20.0, 40001, slope)
    return max(abs(v) for v in d)


def _draws(name: str, n: int, seed: int, slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, 1), n seeded float64 draws, and f(x): what both measured gains are taken on."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x, module(name, slope)(x)


def empirical_gain(name: str, n: int = 1_000_000, seed: int = 0, slope: float = 0.01) -> float:
    """std(x) / std(f(x)) for x ~ N(0, 1): how much the activation shrinks a unit-variance signal."""
    x, y = _draws(name, n, seed, slope)
    return float(x.std() / y.std())


def rms_gain(name: str, n: int = 1_000_000, seed: int = 0, slope: float = 0.01) -> float:
    """sqrt(E[x^2] / E[f(x)^2]) for x ~ N(0, 1), on the same draws as empirical_gain: the second moment is what a
    Linear with zero-mean weights carries on (Var(z) = n Var(W) E[a^2], He et al. 2015). Kaiming's sqrt 2 for the
    ReLU family is this gain, where the std ratio reads 1.71 (ReLU's outputs have a mean); torch's other gains are
    rules of thumb (tanh 5/3 against 1.59, sigmoid 1, SELU 3/4, a compromise of torch's: self-normalisation asks
    for gain 1, Var(W) = 1/n, which this ratio gives)."""
    x, y = _draws(name, n, seed, slope)
    return float((x.square().mean() / y.square().mean()).sqrt())


@dataclass(frozen=True)
class GainRow:
    name: str
    max_derivative: float
    torch_gain: float | None
    empirical: float
    rms: float


def gain_table(slope: float = 0.01) -> list[GainRow]:
    from .spec import ACTIVATIONS

    return [GainRow(a, round(max_derivative(a, slope), 6), torch_gain(a, slope), empirical_gain(a, slope=slope),
                    rms_gain(a, slope=slope)) for a in ACTIVATIONS]


# |f'| below 3% of its peak: tanh's 1 - a^2 < 0.03; sigmoid's a (1 - a) < 0.03 / 4, a root of a quadratic
# (the thresholds were |a| > 0.97 and 0.03 from 0 or 1: f' under 5.9% and 11.6% of the peak, against 3% elsewhere)
TANH_SATURATED = math.sqrt(0.97)
SIGMOID_SATURATED = (1 - math.sqrt(0.97)) / 2


def saturated_mask(name: str, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor | None:
    """Boolean mask of saturated units, or None where the activation has no saturated region: where f' has fallen
    below 3% of its largest value, one rule for every activation. tanh: f' = 1 - a^2, so |a| > sqrt(0.97) = 0.985;
    sigmoid: f' = a (1 - a) against 1/4 at 0, so within 0.0076 of 0 or 1; ELU/SELU/softplus/GELU/SiLU: the flat
    negative tail. ReLU's flat side is counted as dead, not saturated."""
    if name not in SATURATING:
        return None
    if name == "tanh":
        return a.abs() > TANH_SATURATED
    if name == "sigmoid":
        return (a < SIGMOID_SATURATED) | (a > 1 - SIGMOID_SATURATED)
    if name in ("elu", "selu"):
        return z < math.log(0.03)           # f'(z) = alpha e^z on the negative side, max at 0-
    if name == "softplus":
        return z < math.log(0.03 / 0.97)    # f' = sigmoid(z) < 0.03
    if name in TAIL_START:
        return z < TAIL_START[name]
    return None


# GELU's and SiLU's f' dips below zero and comes back: where |f'| stays below 3% of its peak (1.129, 1.100) for good,
# found on a grid of step 1e-5 (tests recompute them)
TAIL_START = {"gelu": -2.55205, "silu": -4.69881}
