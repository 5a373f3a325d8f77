"""Activations: f' by autograd against finite differences, the largest derivative, gains, saturation rules."""
from __future__ import annotations

import math

import pytest
import torch

from initlab.engine import activations
from initlab.engine.spec import ACTIVATIONS

# where f' jumps; a central difference straddling the jump measures neither side
KINKS = {"relu": (0.0,), "leaky_relu": (0.0,), "selu": (0.0,)}


def f64(name: str, x: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    return activations.module(name, slope)(x.double())


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_derivative_matches_a_central_difference(name):
    xs, ys, ds = activations.curve(name, -6.0, 6.0, 241)
    x = torch.tensor(xs, dtype=torch.float64)
    assert torch.allclose(torch.tensor(ys, dtype=torch.float64), f64(name, x), rtol=0, atol=1e-12)
    h = 1e-6
    fd = (f64(name, x + h) - f64(name, x - h)) / (2 * h)
    keep = torch.ones_like(x, dtype=torch.bool)
    for k in KINKS.get(name, ()):
        keep &= (x - k).abs() > 10 * h
    d = torch.tensor(ds, dtype=torch.float64)
    assert keep.sum() >= 240
    assert torch.allclose(d[keep], fd[keep], rtol=1e-6, atol=1e-8), (d[keep] - fd[keep]).abs().max()


def test_curve_is_the_requested_grid_of_plain_floats():
    xs, ys, ds = activations.curve("tanh", -2.0, 3.0, 11)
    assert len(xs) == len(ys) == len(ds) == 11
    assert xs[0] == -2.0 and xs[-1] == 3.0
    assert all(isinstance(v, float) for v in xs + ys + ds)


def test_leaky_relu_slope_reaches_the_derivative():
    _, _, ds = activations.curve("leaky_relu", -1.0, 1.0, 5, slope=0.2)
    assert ds[0] == pytest.approx(0.2) and ds[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("name, want", [
    ("sigmoid", 0.25), ("tanh", 1.0), ("relu", 1.0), ("identity", 1.0), ("leaky_relu", 1.0), ("elu", 1.0),
    ("softplus", 1.0),
    ("selu", 1.0507009873554805 * 1.6732632423543772),    # scale * alpha, the slope just left of 0
])
def test_max_derivative_known_values(name, want):
    assert activations.max_derivative(name) == pytest.approx(want, rel=1e-3)


@pytest.mark.parametrize("name, peak_at", [("gelu", math.sqrt(2)), ("silu", 2.3994)])
def test_max_derivative_of_the_smooth_relus_is_the_peak_of_the_curve(name, peak_at):
    x = torch.tensor(peak_at, dtype=torch.float64, requires_grad=True)
    (d,) = torch.autograd.grad(f64(name, x), x)
    assert activations.max_derivative(name) == pytest.approx(float(d), rel=1e-4)
    assert activations.max_derivative(name) > 1.0


def test_tanh_empirical_gain_and_torch_gain():
    assert 1.59 <= activations.empirical_gain("tanh") <= 1.60     # the reference: 1.59 to 1.60
    assert activations.torch_gain("tanh") == pytest.approx(5 / 3)


def test_empirical_gains_with_closed_forms():
    assert activations.empirical_gain("identity") == pytest.approx(1.0)
    # x ~ N(0, 1): E[relu(x)^2] = 1/2 and E[relu(x)] = 1/sqrt(2 pi)
    relu_std = math.sqrt(0.5 - 1 / (2 * math.pi))
    assert activations.empirical_gain("relu") == pytest.approx(1 / relu_std, rel=3e-3)
    assert activations.empirical_gain("tanh", seed=1) == pytest.approx(activations.empirical_gain("tanh"), rel=3e-3)


def test_torch_gain_is_none_where_torch_has_no_gain():
    for name in ("elu", "gelu", "silu", "softplus"):
        assert activations.torch_gain(name) is None
    assert activations.torch_gain("relu") == pytest.approx(math.sqrt(2))
    assert activations.torch_gain("identity") == 1.0
    assert activations.torch_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / (1 + 0.2 ** 2)))


def test_gain_table_has_every_activation():
    rows = activations.gain_table()
    assert [r.name for r in rows] == list(ACTIVATIONS)
    tanh = next(r for r in rows if r.name == "tanh")
    assert tanh.max_derivative == pytest.approx(1.0) and 1.59 <= tanh.empirical <= 1.60


# saturation ------------------------------------------------------------------------------------------------------

def test_tanh_and_sigmoid_saturation_rules():
    """The rule of every activation: |f'| below 3% of its peak (tanh 1 - a^2 < 0.03, sigmoid a (1 - a) < 0.0075)."""
    z = torch.tensor([-3.0, -2.4, 0.0, 2.2, 2.4, 2.5])
    a = torch.tanh(z)                   # tanh(2.4) = 0.9837, tanh(2.5) = 0.9866; sqrt(0.97) = 0.9849
    assert activations.saturated_mask("tanh", z, a).tolist() == [True, False, False, False, False, True]
    s = torch.tensor([0.005, 0.0075, 0.0076, 0.5, 0.9924, 0.9925, 0.999], dtype=torch.float64)
    assert activations.saturated_mask("sigmoid", torch.logit(s), s).tolist() == \
        [True, True, False, False, False, True, True]
    for name, f in (("tanh", torch.tanh), ("sigmoid", torch.sigmoid)):
        x = torch.linspace(-12, 12, 240001, dtype=torch.float64).requires_grad_()
        (d,) = torch.autograd.grad(f(x).sum(), x)
        mask = activations.saturated_mask(name, x.detach(), f(x).detach())
        assert torch.equal(mask, d.abs() < 0.03 * d.abs().max())


@pytest.mark.parametrize("name", ["identity", "relu", "leaky_relu"])
def test_no_saturated_region(name):
    z = torch.linspace(-10, 10, 21)
    assert activations.saturated_mask(name, z, activations.module(name)(z)) is None


@pytest.mark.parametrize("name", ["elu", "selu", "softplus", "gelu", "silu"])
def test_saturated_tail_is_where_the_derivative_is_below_three_percent(name):
    xs, ys, ds = activations.curve(name, -30.0, 5.0, 3501)
    z, a, d = (torch.tensor(v, dtype=torch.float64) for v in (xs, ys, ds))
    mask = activations.saturated_mask(name, z, a)
    peak = activations.max_derivative(name)
    assert mask.any() and not mask.all()
    assert (d[mask].abs() < 0.03 * peak).all()
    # a tail: once unsaturated, everything to the right stays unsaturated
    first_free = int((~mask).nonzero()[0])
    assert not mask[first_free:].any() and mask[:first_free].all()
    assert not mask[z > 0].any()
    # and the tail is all of it: just past its start (grid step 0.01) |f'| is back at 3% of the peak
    assert d[first_free].abs() >= 0.03 * peak * 0.97


def test_the_curve_grid_holds_zero_exactly():
    x, y, d = activations.curve("sigmoid")
    assert x[100] == 0.0 and y[100] == 0.5 and d[100] == 0.25
    assert x[0] == -5.0 and x[-1] == 5.0


def test_the_rms_gain_is_the_second_moments_which_torchs_gains_aim_at():
    """std(x)/std(f(x)) is the course's measured gain; torch's gains keep the second moment, which a Linear with
    zero-mean weights carries on: for ReLU sqrt 2 against a std ratio of 1.71 (ReLU's outputs have a mean)."""
    assert activations.rms_gain("relu") == pytest.approx(math.sqrt(2), rel=3e-3)
    assert activations.rms_gain("relu") == pytest.approx(activations.torch_gain("relu"), rel=3e-3)
    assert activations.empirical_gain("relu") == pytest.approx(1.713, rel=3e-3)
    assert activations.rms_gain("tanh") == pytest.approx(activations.empirical_gain("tanh"), rel=1e-3)
    assert activations.rms_gain("identity") == pytest.approx(1.0)
    # sigmoid: E[s(x)^2] = Var + 1/4, so the second moment's gain is far below the std ratio
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1_000_000, generator=g, dtype=torch.float64)
    want = (x.square().mean() / torch.sigmoid(x).square().mean()).sqrt()
    assert activations.rms_gain("sigmoid") == pytest.approx(float(want), rel=1e-9)
