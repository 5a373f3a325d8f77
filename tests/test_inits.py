"""Initialisations: each scheme's empirical std or bound against its formula, biases, norms, seeded reproducibility."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initlab.engine import inits
from initlab.engine.models import build_mlp
from initlab.engine.spec import INITS, Config

CPU = torch.device("cpu")
# two layers with unequal fans: 500 -> 300 -> 200, so fan_in, fan_out and their mean all differ
SHAPE = dict(depth=2, in_features=500, width=300, out_features=200, device="cpu")


def build(seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return build_mlp(Config(**{**SHAPE, **kw}), CPU)


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def pstd(t: torch.Tensor) -> float:
    return float(t.detach().double().std(correction=0))


def assert_std(w: torch.Tensor, want: float, rel: float = 0.02) -> None:
    assert abs(float(w.detach().double().mean())) < 5 * want / math.sqrt(w.numel())
    assert pstd(w) == pytest.approx(want, rel=rel)


def assert_uniform_bound(w: torch.Tensor, bound: float) -> None:
    top = float(w.detach().abs().max())
    assert bound * 0.995 < top <= bound * (1 + 1e-6)
    assert pstd(w) == pytest.approx(bound / math.sqrt(3), rel=0.02)


def assert_zero_bias(model: nn.Module) -> None:
    for lin in linears(model):
        assert torch.equal(lin.bias, torch.zeros_like(lin.bias))


@pytest.mark.parametrize("activation, gain", [("tanh", 5 / 3), ("relu", math.sqrt(2)), ("gelu", 1.0),
                                              ("sigmoid", 1.0)])
def test_xavier_uniform_bound(activation, gain):
    model = build(init="xavier_uniform", activation=activation)
    for lin in linears(model):
        fan_out, fan_in = lin.weight.shape
        assert_uniform_bound(lin.weight, gain * math.sqrt(6 / (fan_in + fan_out)))
    assert_zero_bias(model)


def test_xavier_uniform_takes_a_configured_gain():
    for lin in linears(build(init="xavier_uniform", activation="tanh", gain=2.0)):
        fan_out, fan_in = lin.weight.shape
        assert_uniform_bound(lin.weight, 2.0 * math.sqrt(6 / (fan_in + fan_out)))


@pytest.mark.parametrize("activation, gain, configured", [("tanh", 5 / 3, None), ("relu", 1.0, 1.0),
                                                          ("identity", 0.5, 0.5)])
def test_xavier_normal_std(activation, gain, configured):
    model = build(init="xavier_normal", activation=activation, gain=configured)
    for lin in linears(model):
        fan_out, fan_in = lin.weight.shape
        assert_std(lin.weight, gain * math.sqrt(2 / (fan_in + fan_out)))
    assert_zero_bias(model)


@pytest.mark.parametrize("activation, slope, gain", [
    ("relu", 0.01, math.sqrt(2)), ("leaky_relu", 0.3, math.sqrt(2 / (1 + 0.3 ** 2))), ("tanh", 0.01, 5 / 3),
    ("gelu", 0.01, math.sqrt(2)), ("identity", 0.01, 1.0),
])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_normal_std(activation, slope, gain, mode):
    model = build(init="kaiming_normal", activation=activation, slope=slope, mode=mode)
    for lin in linears(model):
        fan_out, fan_in = lin.weight.shape
        fan = fan_in if mode == "fan_in" else fan_out
        assert_std(lin.weight, gain / math.sqrt(fan))
    assert_zero_bias(model)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_uniform_bound(mode):
    model = build(init="kaiming_uniform", activation="relu", mode=mode)
    for lin in linears(model):
        fan_out, fan_in = lin.weight.shape
        fan = fan_in if mode == "fan_in" else fan_out
        assert_uniform_bound(lin.weight, math.sqrt(2) * math.sqrt(3 / fan))
    assert_zero_bias(model)


def test_normal_std():
    model = build(init="normal", std=0.37)
    for lin in linears(model):
        assert_std(lin.weight, 0.37)
    assert_zero_bias(model)


def test_uniform_bound():
    model = build(init="uniform", bound=0.8)
    for lin in linears(model):
        assert_uniform_bound(lin.weight, 0.8)
    assert_zero_bias(model)


def test_constant_and_zeros():
    for lin in linears(build(init="constant", value=-0.25)):
        assert torch.equal(lin.weight, torch.full_like(lin.weight, -0.25))
        assert torch.equal(lin.bias, torch.zeros_like(lin.bias))
    for lin in linears(build(init="zeros")):
        assert not lin.weight.any() and not lin.bias.any()


def test_scaled_normal_weight_and_bias_std():
    model = build(init="scaled_normal", sigma_w=1.5, sigma_b=0.3, in_features=200, width=4000, out_features=3000)
    for lin in linears(model):
        fan_in = lin.weight.shape[1]
        assert_std(lin.weight, 1.5 / math.sqrt(fan_in))
        assert_std(lin.bias, 0.3, rel=0.06)


def test_scaled_normal_without_bias_std_keeps_zero_bias():
    assert_zero_bias(build(init="scaled_normal", sigma_w=2.0, sigma_b=0.0))


@pytest.mark.parametrize("gain, activation", [(None, "tanh"), (2.0, "relu")])
@pytest.mark.parametrize("shape", [SHAPE, dict(SHAPE, in_features=100, width=300, out_features=600)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(gain, activation, shape):
    model = build(**{**shape, "init": "orthogonal", "gain": gain, "activation": activation})
    g = 5 / 3 if gain is None else gain
    for lin in linears(model):
        w = lin.weight.detach().double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        assert torch.allclose(gram, g * g * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)
    assert_zero_bias(model)


def test_eye():
    model = build(init="eye")
    for lin in linears(model):
        assert torch.equal(lin.weight, torch.eye(*lin.weight.shape))
    assert_zero_bias(model)


@pytest.mark.parametrize("sparsity", [0.1, 0.5])
def test_sparse_zeros_per_column(sparsity):
    model = build(init="sparse", sparsity=sparsity, std=0.02)
    for lin in linears(model):
        w = lin.weight.detach()
        rows = w.shape[0]
        zeros_per_column = (w == 0).sum(dim=0)
        assert (zeros_per_column == math.ceil(sparsity * rows)).all()
        assert_std(w[w != 0], 0.02, rel=0.03)
    assert_zero_bias(model)


@pytest.mark.parametrize("activation, norm", [("tanh", "none"), ("relu", "none"), ("sigmoid", "batch")])
def test_lsuv_gives_unit_output_variance_on_the_batch(activation, norm):
    cfg = Config(depth=8, in_features=32, width=64, out_features=16, activation=activation, norm=norm,
                 init="lsuv", lsuv_tol=0.02, device="cpu")
    torch.manual_seed(3)
    sample = torch.randn(256, 32)
    model = build_mlp(cfg, CPU, sample)
    assert model.training           # LSUV runs in eval mode and hands the model back as it found it
    outputs = []
    handles = [lin.register_forward_hook(lambda m, i, o: outputs.append(o.detach())) for lin in linears(model)]
    model.eval()
    with torch.no_grad():
        model(sample)
    for h in handles:
        h.remove()
    assert len(outputs) == 8
    for out in outputs:
        assert abs(float(out.double().var(correction=0)) - 1.0) < cfg.lsuv_tol
    for lin in linears(model):
        w = lin.weight.detach().double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        scale = float(gram.diagonal().mean())
        # still an orthogonal matrix, only rescaled
        assert torch.allclose(gram, scale * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-4 * scale)
    assert_zero_bias(model)


def test_default_init_is_torchs_linear_default():
    model = build(init="default")
    for lin in linears(model):
        fan_in = lin.weight.shape[1]
        assert_uniform_bound(lin.weight, 1 / math.sqrt(fan_in))
        assert float(lin.bias.detach().abs().max()) <= 1 / math.sqrt(fan_in)
        assert pstd(lin.bias) == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.15)


def test_default_init_draws_exactly_as_a_hand_written_stack():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(500, 300), nn.Linear(300, 200))
    for mine, theirs in zip(linears(build(init="default")), linears(ref)):
        assert torch.equal(mine.weight, theirs.weight) and torch.equal(mine.bias, theirs.bias)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norm_layers_start_at_identity_whatever_the_init(norm):
    for init in ("xavier_uniform", "default"):
        model = build(init=init, norm=norm, depth=3)
        norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm))]
        assert len(norms) == 2
        for m in norms:
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
            if norm == "batch":
                assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
                assert torch.equal(m.running_var, torch.ones_like(m.running_var))


def test_no_bias_means_no_bias_parameter():
    for lin in linears(build(init="xavier_normal", bias=False)):
        assert lin.bias is None


DETERMINISTIC = {"zeros", "constant", "eye"}


@pytest.mark.parametrize("init", INITS)
def test_same_seed_gives_bit_identical_weights(init):
    kw = dict(init=init, in_features=40, width=30, out_features=20, depth=3, sigma_b=0.1)
    a, b, c = build(7, **kw), build(7, **kw), build(8, **kw)
    pa, pb, pc = (list(m.parameters()) for m in (a, b, c))
    assert len(pa) == len(pb) == 6
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    if init in DETERMINISTIC:
        assert all(torch.equal(x, y) for x, y in zip(pa, pc))
    else:
        assert not torch.equal(linears(a)[0].weight, linears(c)[0].weight)


def test_init_linear_refuses_an_unknown_scheme():
    layer = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="init"):
        inits.init_linear(layer, Config().replace(init="nonsense"))


def test_resolved_gain():
    assert inits.resolved_gain(Config(activation="tanh")) == pytest.approx(5 / 3)
    assert inits.resolved_gain(Config(activation="gelu")) == 1.0
    assert inits.resolved_gain(Config(activation="relu", gain=0.5)) == 0.5


def test_the_gain_notes_name_the_gain_each_run_used():
    from initlab.engine.inits import gain_note, grid_gain_note, resolved_gain

    assert gain_note(Config(activation="relu", init="xavier_uniform")) == f", gain {math.sqrt(2):.4g} (relu's)"
    assert gain_note(Config(activation="gelu", init="orthogonal")) == ", gain 1 (gelu has no torch gain)"
    assert gain_note(Config(activation="tanh", init="xavier_normal", gain=2.5)) == ", gain 2.5"
    assert gain_note(Config(activation="relu", init="kaiming_normal", gain=2.5)) == ""        # it reads no gain
    # a grid: each activation once, leaky_relu by its slope (its gain follows it), a gain given or one gain: no note
    grid = [Config(activation=a, slope=s, init="xavier_uniform") for a in ("leaky_relu", "relu", "gelu")
            for s in (0.01, 0.5)]
    leaky = [resolved_gain(Config(activation="leaky_relu", slope=s)) for s in (0.01, 0.5)]
    assert grid_gain_note(grid) == (f"gain left empty: each activation's torch gain, leaky_relu (slope 0.01) "
                                    f"{leaky[0]:.4g}, leaky_relu (slope 0.5) {leaky[1]:.4g}, relu 1.414, "
                                    f"gelu 1 (none in torch)")
    assert grid_gain_note([c.replace(gain=1.0) for c in grid]) == ""
    assert grid_gain_note([Config(activation="relu", slope=s, init="xavier_uniform") for s in (0.1, 0.2)]) == ""
