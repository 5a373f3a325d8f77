"""The reference figures, each reproduced by a named preset; the random matrix product; the verdicts."""
from __future__ import annotations

import math
import statistics

import pytest
import torch

from initlab.engine import presets
from initlab.engine.presets import PRESETS
from initlab.engine.probe import random_matrix_run, run_probe
from initlab.engine.spec import Config, SpecError, validate


def probe(name: str):
    # the figures are the reference's CPU runs; distributions do not enter them and would only cost time
    return run_probe(PRESETS[name].config.replace(device="cpu"), distributions=False)


def a_std(res) -> list[float]:
    return [d["a_std"] for d in res.layers]


@pytest.fixture(scope="module")
def sigmoid_vanishing():
    return probe("sigmoid-vanishing")


@pytest.fixture(scope="module")
def linear_explode():
    return probe("linear-explode")


@pytest.fixture(scope="module")
def linear_scaled():
    return probe("linear-scaled")


@pytest.fixture(scope="module")
def tanh_naive():
    return probe("tanh-naive")


@pytest.fixture(scope="module")
def tanh_xavier():
    return probe("tanh-xavier")


@pytest.fixture(scope="module")
def relu_kaiming():
    return probe("relu-kaiming")


@pytest.fixture(scope="module")
def relu_xavier():
    return probe("relu-xavier")


def test_every_preset_is_valid_and_named_by_its_key():
    assert {"sigmoid-vanishing", "linear-explode", "linear-scaled", "tanh-naive", "tanh-xavier", "relu-kaiming",
            "relu-xavier"} <= {n for n, p in PRESETS.items() if p.kind == "probe"}
    for name, p in PRESETS.items():
        assert p.name == name and p.kind in ("probe", "train") and p.summary and "\n" not in p.summary
        validate(p.config)
    assert presets.get("tanh-xavier") is PRESETS["tanh-xavier"]
    with pytest.raises(SpecError) as e:
        presets.get("tanh-xavir")
    assert e.value.field == "preset" and "tanh-xavier" in e.value.allowed


def test_sigmoid_vanishing_reproduces_the_reference_gradients(sigmoid_vanishing):
    layers = sigmoid_vanishing.layers
    assert [(d["fan_in"], d["fan_out"]) for d in layers] == [(1, 64)] + [(64, 64)] * 9 + [(64, 1)]
    first, last = layers[0]["grad_w_absmean"], layers[-1]["grad_w_absmean"]
    assert f"{first:.5g}" == "1.4004e-12"
    assert f"{last:.5g}" == "0.012726"
    assert f"{first:.4g}" == "1.4e-12" and f"{last:.4g}" == "0.01273"
    assert sigmoid_vanishing.verdict["first_last_grad_ratio"] == pytest.approx(first / last)
    assert 1e-11 < first / last < 1e-9
    assert sigmoid_vanishing.verdict["kind"] == "vanishing"


def test_sigmoid_vanishing_gradz_ratio_is_read_although_the_output_is_one_value(sigmoid_vanishing):
    """The last layer is one unit on a batch of one: its dL/dz has no spread, so the ratio is of RMS, computed here
    on the reference's own hand-written net."""
    torch.manual_seed(0)
    sizes = [1] + [64] * 10 + [1]
    linears = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    x = torch.randn(1, 1)
    zs = []
    for lin in linears:
        z = lin(x)
        z.retain_grad()
        zs.append(z)
        x = torch.sigmoid(z)
    torch.nn.functional.mse_loss(x, torch.full_like(x, 0.5)).backward()
    rms = [z.grad.double().pow(2).mean().sqrt().item() for z in zs]
    got = sigmoid_vanishing.verdict["first_last_gradz_ratio"]
    assert got is not None and got == pytest.approx(rms[0] / rms[-1], rel=1e-6)
    assert 1e-11 < got < 1e-8
    assert sigmoid_vanishing.loss is not None and sigmoid_vanishing.loss > 0


def test_linear_explode_multiplies_the_std_by_sixteen_until_it_overflows(linear_explode):
    s = a_std(linear_explode)
    assert 14.0 < s[0] < 18.0
    assert 200 < s[1] < 330 and 3000 < s[2] < 5500
    for i in range(1, 29):
        assert 13.0 < s[i] / s[i - 1] < 19.5, i
    geometric = (s[28] / s[0]) ** (1 / 28)
    assert 15.0 < geometric < 17.0
    assert linear_explode.first_nonfinite_layer in (30, 31)
    assert all(math.isfinite(v) for v in s[:30])
    assert linear_explode.verdict["kind"] == "nonfinite"
    assert linear_explode.verdict["from_layer"] == linear_explode.first_nonfinite_layer


def test_linear_scaled_keeps_the_std_near_one(linear_scaled):
    s = a_std(linear_scaled)
    assert len(s) == 100
    assert all(0.6 <= v <= 2.0 for v in s), (min(s), max(s))        # the reference: 0.6 to 2 over seeds
    assert linear_scaled.first_nonfinite_layer is None
    assert linear_scaled.verdict["kind"] == "stable"


def test_tanh_naive_decays(tanh_naive):
    s = a_std(tanh_naive)
    assert all(v < 0.15 for v in s[90:]), s[90:]
    assert s[0] > 0.5 and s[-1] < s[50] < s[10] < s[0]
    assert 0.07 <= s[-1] <= 0.09            # the reference: about 0.08 by layer 99
    # the course's slow vanishing: short of the verdict's three decades, the stable verdict says how far it fell
    v = tanh_naive.verdict
    fell = tanh_naive.input_std / min(s)
    assert v["kind"] == "stable" and 10 <= fell < 1000
    # with its rate over the 100 layers the input crosses
    assert v["note"] == (f"the forward std falls {fell:.3g}x across the net (about {fell ** (1 / 100):.3g}x a layer): "
                         "short of the 1000x read as vanishing")


def test_tanh_xavier_settles(tanh_xavier):
    s = a_std(tanh_xavier)
    assert all(0.55 <= v <= 0.75 for v in s[50:]), (min(s[50:]), max(s[50:]))
    assert all(0.63 <= v <= 0.67 for v in s[90:])      # the reference: it settles about 0.64 to 0.65


def test_relu_kaiming_stays_of_order_one(relu_kaiming):
    s = a_std(relu_kaiming)
    # the reference: about 0.5 to 0.9 (seed 14's lowest is 0.5009: a hair's margin for another CPU's rounding)
    assert all(0.495 <= v <= 0.9 for v in s), (min(s), max(s))
    assert relu_kaiming.verdict["kind"] not in ("vanishing", "exploding")
    assert relu_kaiming.first_nonfinite_layer is None


def test_relu_kaiming_is_of_order_one_whatever_the_seed():
    # the preset's seed is one draw; over seeds the std wanders (a random walk in log scale at width 256) but
    # neither vanishes nor explodes, and its typical end value is the reference's
    ends = []
    for seed in range(8):
        s = a_std(run_probe(PRESETS["relu-kaiming"].config.replace(device="cpu", seed=seed), distributions=False))
        assert all(0.1 <= v <= 3 for v in s), (seed, min(s), max(s))
        ends.append(s[-1])
    ends.sort()
    assert 0.4 <= (ends[3] + ends[4]) / 2 <= 0.9, ends


def test_the_course_figures_hold_over_seeds_not_only_at_the_presets():
    # a preset's seed is one draw: over eight seeds each figure of the reference stays in its band (a seed picked
    # to land in a band would show here as a spread past it)
    runs = {name: [run_probe(PRESETS[name].config.replace(device="cpu", seed=seed), distributions=False)
                   for seed in range(8)] for name in ("tanh-naive", "tanh-xavier", "linear-explode", "linear-scaled")}
    for r in runs["tanh-naive"]:            # decays, to about 0.08 by layer 99 (0.058 to 0.085 over seeds)
        s = a_std(r)
        assert s[-1] < s[50] < s[10] < s[0] and 0.05 <= s[-1] <= 0.1, s[-1]
    for r in runs["tanh-xavier"]:           # settles about 0.64 to 0.65
        assert all(0.63 <= v <= 0.67 for v in a_std(r)[90:])
    for r in runs["linear-explode"]:        # x16 a layer, inf or nan from layer 30 or 31
        s = a_std(r)
        assert 15.0 < (s[28] / s[0]) ** (1 / 28) < 17.0 and r.first_nonfinite_layer in (30, 31)
    ends = []
    for r in runs["linear-scaled"]:         # near 1 through the 100 layers; the extremes within 0.6 and 2
        s = a_std(r)
        assert all(0.6 <= v <= 2.0 for v in s), (min(s), max(s))
        ends.append(s[-1])
    assert 0.75 <= statistics.median(ends) <= 1.25, ends


def test_relu_xavier_halves_the_variance_per_layer(relu_xavier):
    s = a_std(relu_xavier)
    assert 1e-17 < s[-1] < 1e-13
    per_layer = (s[-1] / s[0]) ** (2 / (len(s) - 1))          # variance ratio per layer
    assert 0.45 < per_layer < 0.55
    assert relu_xavier.verdict["kind"] == "vanishing"


def test_deep_relu_xavier_is_vanishing_although_first_and_last_weight_gradients_match(relu_xavier):
    """Activations shrink forward and dL/dz shrinks backward, so dW = x^T dL/dz comes out alike at both ends: the
    weight-gradient ratio alone would call this net healthy; the verdict reads both signals."""
    v = relu_xavier.verdict
    assert 0.1 < v["first_last_grad_ratio"] < 10
    assert v["first_last_gradz_ratio"] < 1e-10
    assert v["kind"] == "vanishing"
    assert v["from_layer"] is not None and 0 <= v["from_layer"] < 20


def test_a_stable_net_has_no_onset(linear_scaled, relu_kaiming):
    for res in (linear_scaled, relu_kaiming):
        assert res.verdict["from_layer"] is None
        assert 0.1 < res.verdict["first_last_grad_ratio"] < 10


def test_random_matrix_product_reaches_the_references_1e25_to_1e27():
    run = random_matrix_run(4, 100, 0)
    norms = run["norms"]
    assert len(norms) == 100 and all(isinstance(v, float) for v in norms)
    assert norms[-1] >= 1e20 and norms[0] < 1e3
    again = random_matrix_run(4, 100, 0)
    assert again == run and random_matrix_run(4, 100, 1)["norms"] != norms
    # this seed's product, directly
    g = torch.Generator().manual_seed(0)
    m = torch.randn(4, 4, generator=g, dtype=torch.float64)
    for _ in range(100):
        m = m @ torch.randn(4, 4, generator=g, dtype=torch.float64)
    assert norms[-1] == pytest.approx(float(m.norm()), rel=1e-12)
    assert run["max_entry"] == pytest.approx(float(m.abs().max()), rel=1e-12)
    # the reference's figure is one unseeded draw: entries of about 1e25 to 1e27 are what the experiment gives in
    # general (seed 0's 1e21 is a low draw), and the spread over draws says so
    assert 1e24 <= run["max_entry_median"] <= 1e26
    assert run["max_entry_p10"] < 1e25 and run["max_entry_p90"] > 1e26
    many = torch.randn(1000, 4, 4, generator=g, dtype=torch.float64)     # the draws follow from the same generator
    for _ in range(100):
        many = many @ torch.randn(1000, 4, 4, generator=g, dtype=torch.float64)
    top = many.abs().flatten(1).amax(1).sort().values
    assert top[499] <= run["max_entry_median"] <= top[500]
    assert top[99] <= run["max_entry_p10"] <= top[100] and top[899] <= run["max_entry_p90"] <= top[900]




def test_a_one_unit_output_on_a_batch_of_one_is_not_read_as_vanished():
    """One value has no spread: its std of 0 says nothing about the signal, so the forward verdict passes over it
    (a batch of two reads it again; a zero net still vanishes)."""
    from initlab.engine.probe import run_probe

    base = Config(depth=2, width=16, in_features=16, out_features=1, device="cpu")
    one = run_probe(base.replace(batch=1), distributions=False)
    assert one.layers[-1]["a_std"] == 0.0 and one.verdict["kind"] == "stable"
    assert run_probe(base.replace(batch=2), distributions=False).verdict["kind"] == "stable"
    assert run_probe(base.replace(batch=1, init="zeros"), distributions=False).verdict["kind"] == "vanishing"


def test_the_forward_variance_ratio_after_a_relu_reads_its_mean(relu_xavier, relu_kaiming):
    """Var(z) = n_in Var(W) E[x^2]: a ReLU's output x has E[x^2] / Var(x) = 1 / (1 - 1/pi), so with n_in Var(W) = 1
    (Xavier, fan_in = fan_out) Var(z) / Var(x) reads about 1.47, and Kaiming's 2 about 2.9, as the README says."""
    import statistics

    lift = 1 / (1 - 1 / math.pi)
    for res, n_var_w in ((relu_xavier, 1.0), (relu_kaiming, 2.0)):
        ratios = [d["fwd_var_ratio"] for d in res.layers[1:]]
        assert statistics.median(ratios) == pytest.approx(n_var_w * lift, rel=0.06)
    assert 1.05 <= min(d["fwd_var_ratio"] for d in relu_xavier.layers[1:]) and \
        max(d["fwd_var_ratio"] for d in relu_xavier.layers[1:]) <= 1.85


def test_glorot_forward_and_backward_ratios_under_unequal_fans_read_n_in_and_n_out_var_w():
    """A Linear scales Var(z) / Var(x) by n_in Var(W) and the gradient's Var(dL/dx) / Var(dL/dz) by n_out Var(W);
    Xavier's compromise 2 / (n_in + n_out) on 512 -> 128 -> 512 gives 1.6 and 0.4, then 0.4 and 1.6: neither
    condition holds where the fans differ."""
    cfg = Config(depth=2, in_features=512, width=128, out_features=512, activation="identity", bias=False,
                 init="xavier_normal", gain=1.0, batch=1024, device="cpu", seed=0)
    res = run_probe(cfg, distributions=False)
    first, second = res.layers
    assert first["fwd_var_ratio"] == pytest.approx(512 * 2 / 640, rel=0.05)
    assert first["bwd_var_ratio"] == pytest.approx(128 * 2 / 640, rel=0.05)
    assert second["fwd_var_ratio"] == pytest.approx(128 * 2 / 640, rel=0.05)
    assert second["bwd_var_ratio"] == pytest.approx(512 * 2 / 640, rel=0.05)
    # and each against its own layer's drawn weights, n_in Var(W) and n_out Var(W)
    for d, (n_in, n_out) in zip(res.layers, ((512, 128), (128, 512))):
        assert d["fwd_var_ratio"] == pytest.approx(n_in * d["w_std"] ** 2, rel=0.05)
        assert d["bwd_var_ratio"] == pytest.approx(n_out * d["w_std"] ** 2, rel=0.05)
