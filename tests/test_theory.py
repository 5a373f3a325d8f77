"""Mean-field theory against torch, known values and Monte Carlo, and `initlab theory`.

Closed forms, q* and chi_1, the phase boundary, the finite-depth prediction against a real probe.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from initlab.engine import activations, theory
from initlab.engine.export import dumps
from initlab.engine.probe import run_probe
from initlab.engine.spec import ACTIVATIONS, Config
from initlab.tui.cli import main


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_closed_forms_match_torch_module_and_autograd(name):
    # a grid that avoids 0, where ReLU-like derivatives are a convention
    x = torch.linspace(-6.0, 6.0, 1200, dtype=torch.float64) + 1e-3
    x.requires_grad_(True)
    y = activations.module(name, 0.2)(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    f, fp = theory.functions(name, 0.2)
    xs = x.detach().numpy()
    np.testing.assert_allclose(f(xs), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fp(xs), dy.numpy(), rtol=1e-10, atol=1e-12)


def test_softplus_closed_form_follows_torch_past_its_threshold():
    x = torch.tensor([19.0, 20.5, 40.0, 700.0], dtype=torch.float64)
    f, fp = theory.functions("softplus")
    np.testing.assert_allclose(f(x.numpy()), torch.nn.Softplus()(x).numpy(), rtol=1e-15)
    assert fp(np.array([700.0]))[0] == 1.0


def test_tanh_without_bias_is_critical_at_sigma_w_one():
    mf = theory.mean_field("tanh", 1.0, 0.0)
    assert mf["q_star"] == 0.0
    assert mf["chi1"] == pytest.approx(1.0, abs=1e-12)
    assert mf["phase"] == "critical"
    assert math.isinf(mf["depth_scale_forward"]) and math.isinf(mf["depth_scale_backward"])
    doc = json.loads(dumps(mf))     # infinite depth scales are null in JSON
    assert doc["depth_scale_forward"] is None and doc["depth_scale_backward"] is None


@pytest.mark.parametrize("sw,sb", [(0.5, 0.0), (1.0, 0.0), (1.2, 0.3), (1.41, 0.05), (1.6, 0.5), (3.0, 1.0)])
def test_relu_chi1_is_half_sigma_w_squared(sw, sb):
    assert theory.mean_field("relu", sw, sb)["chi1"] == pytest.approx(sw * sw / 2, rel=1e-12)


@pytest.mark.parametrize("sw,sb", [(0.5, 0.1), (1.2, 0.3), (1.3, 1.0)])
def test_relu_fixed_point_is_sigma_b2_over_one_minus_half_sigma_w2(sw, sb):
    # q = sw^2 q / 2 + sb^2 for ReLU, so q* = sb^2 / (1 - sw^2 / 2) below sw^2 = 2
    assert theory.mean_field("relu", sw, sb)["q_star"] == pytest.approx(sb * sb / (1 - sw * sw / 2), rel=1e-9)


def test_relu_above_critical_has_no_finite_fixed_point():
    mf = theory.mean_field("relu", 1.6, 0.1)
    assert math.isinf(mf["q_star"]) and mf["phase"] == "chaotic"
    assert json.loads(dumps(mf))["q_star"] is None


def test_leaky_relu_and_identity_match_their_closed_forms():
    a = 0.2
    assert theory.mean_field("leaky_relu", 1.1, 0.2, slope=a)["chi1"] == pytest.approx(1.21 * (1 + a * a) / 2)
    mf = theory.mean_field("identity", 0.9, 0.2)
    assert mf["q_star"] == pytest.approx(0.04 / (1 - 0.81), rel=1e-9)
    assert mf["chi1"] == pytest.approx(0.81, rel=1e-12)
    assert mf["depth_scale_backward"] == pytest.approx(-1 / math.log(0.81), rel=1e-9)


@pytest.mark.parametrize("sw,phase", [(0.8, "ordered"), (0.95, "ordered"), (1.05, "chaotic"), (1.5, "chaotic")])
def test_tanh_phase_flips_at_sigma_w_one_without_bias(sw, phase):
    mf = theory.mean_field("tanh", sw, 0.0)
    assert mf["phase"] == phase
    assert (mf["chi1"] < 1) == (phase == "ordered")
    # in the ordered phase the backward depth scale is positive (gradients shrink), in the chaotic one negative
    assert (mf["depth_scale_backward"] > 0) == (phase == "ordered")


def test_phase_flips_across_the_critical_sigma_w_with_bias():
    sw = theory.critical_sigma_w("tanh", math.sqrt(0.05))
    assert 1.2 < sw * sw < 2.0      # the edge moves to larger sigma_w as sigma_b grows
    assert theory.mean_field("tanh", sw * 0.98, math.sqrt(0.05))["phase"] == "ordered"
    assert theory.mean_field("tanh", sw * 1.02, math.sqrt(0.05))["phase"] == "chaotic"
    assert theory.mean_field("tanh", sw, math.sqrt(0.05))["chi1"] == pytest.approx(1.0, abs=1e-9)


def test_critical_lines_of_tanh_and_relu():
    line = theory.critical_line("tanh", [0.0, 0.05, 0.2])
    assert line[0]["sigma_w2"] == pytest.approx(1.0, abs=1e-9)
    assert line[0]["sigma_w2"] < line[1]["sigma_w2"] < line[2]["sigma_w2"]
    for d in theory.critical_line("relu", [0.0, 0.1, 0.5]):
        assert d["sigma_w2"] == pytest.approx(2.0, rel=1e-9)     # He init, whatever the bias


def test_fixed_point_is_where_the_iterated_variance_map_goes():
    qs = theory.q_trajectory("tanh", 1.5, 0.3, depth=300)
    q_star = theory.mean_field("tanh", 1.5, 0.3)["q_star"]
    assert qs[-1] == pytest.approx(q_star, rel=1e-9)
    f, _ = theory.functions("tanh")
    assert theory.q_map(q_star, f, 1.5, 0.3) == pytest.approx(q_star, rel=1e-12)


def test_expectations_against_monte_carlo_in_the_chaotic_phase():
    sw, sb = 2.0, 0.3
    mf = theory.mean_field("tanh", sw, sb)
    q, c = mf["q_star"], mf["c_star"]
    assert 0 < c < 1
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal(2_000_000), rng.standard_normal(2_000_000)
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    f, fp = np.tanh, lambda u: 1 - np.tanh(u) ** 2
    assert sw ** 2 * np.mean(f(u1) ** 2) + sb ** 2 == pytest.approx(q, rel=2e-3)
    assert sw ** 2 * np.mean(fp(u1) ** 2) == pytest.approx(mf["chi1"], rel=3e-3)
    assert (sw ** 2 * np.mean(f(u1) * f(u2)) + sb ** 2) / q == pytest.approx(c, abs=3e-3)
    assert sw ** 2 * np.mean(fp(u1) * fp(u2)) == pytest.approx(mf["chi_c"], rel=3e-3)
    assert mf["depth_scale_forward"] == pytest.approx(-1 / math.log(mf["chi_c"]), rel=1e-12)


def test_large_variance_expectation_against_a_fine_grid():
    # Gauss-Hermite alone misses tanh' near 0 when q is large; the graded rule must not
    z = np.linspace(-12, 12, 1_200_001)
    phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    _, fp = theory.functions("tanh")
    for q in (0.5, 30.0, 400.0):
        ref = np.sum(fp(math.sqrt(q) * z) ** 2 * phi) * (z[1] - z[0])
        assert theory.chi1(fp, 1.0, q) == pytest.approx(ref, rel=1e-7)


def test_correlations_near_the_largest_variance_computed_against_a_fine_grid():
    # tanh at q* = 8: 160 Gauss-Hermite nodes put chi_c 8e-5 off, which showed in the fourth digit
    mf = theory.mean_field("tanh", 3.0, 1.2)
    q, c = mf["q_star"], mf["c_star"]
    assert 7.5 < q < 9
    z = np.linspace(-11, 11, 2201)
    w = np.exp(-z * z / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    u1 = math.sqrt(q) * z[:, None]
    pair = lambda g, c: float(w @ (g(u1) * g(math.sqrt(q) * (c * z[:, None] + math.sqrt(1 - c * c) * z[None, :]))) @ w)
    f, fp = np.tanh, lambda u: 1 - np.tanh(u) ** 2
    assert (9.0 * pair(f, c) + 1.44) / q == pytest.approx(c, abs=1e-6)       # c* is the map's fixed point
    assert 9.0 * pair(fp, c) == pytest.approx(mf["chi_c"], rel=1e-6)


def test_predicted_gradient_ratio_matches_a_real_probe():
    # mean field along the variance trajectory from the input against a width-128 net, 30 layers
    for sw in (0.8, 1.3):
        cfg = Config(depth=30, width=128, in_features=128, out_features=128, activation="tanh",
                     init="scaled_normal", sigma_w=sw, sigma_b=0.0, batch=64, seed=0, device="cpu")
        measured = math.log10(run_probe(cfg, distributions=False).verdict["first_last_gradz_ratio"])
        predicted = theory.predicted_log10_grad_ratio("tanh", sw, 0.0, 30, sw * sw)
        assert measured == pytest.approx(predicted, abs=0.15)


def test_bad_activation_is_refused():
    from initlab.engine.spec import SpecError

    with pytest.raises(SpecError, match="activation"):
        theory.functions("swish")


# command line ----------------------------------------------------------------------------------------------------

def test_theory_json(capsys):
    assert main(["theory", "--activation", "relu", "--sigma-w", "1.2", "--sigma-b", "0.1", "--json"]) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert {"q_star", "chi1", "depth_scale_forward", "depth_scale_backward", "phase"} <= set(doc)
    assert doc["chi1"] == pytest.approx(0.72)
    assert doc["q_star"] == pytest.approx(0.01 / (1 - 0.72))
    assert doc["phase"] == "ordered"
    assert doc["critical_sigma_w"] == pytest.approx(math.sqrt(2))


def test_theory_defaults_to_critical_tanh_and_prints_text(capsys):
    assert main(["theory"]) == 0
    out, _ = capsys.readouterr()
    assert "critical" in out and "chi_1" in out and "q*" in out


def test_theory_notes_a_slope_its_activation_does_not_read(capsys):
    assert main(["theory", "--slope", "0.5", "--sigma-w", "1.5", "--json"]) == 0
    err = capsys.readouterr().err
    assert err == "initlab: note: activation tanh does not read slope; leaky_relu does; --slope 0.5 was not used\n"
    assert main(["theory", "--activation", "leaky_relu", "--slope", "0.5", "--sigma-w", "1.5", "--json"]) == 0
    assert capsys.readouterr().err == ""        # read, and the sigmas always are, whatever init a config names


def test_theory_refuses_a_bad_value_in_one_line(capsys):
    assert main(["theory", "--sigma-w", "-1"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "sigma_w" in err


def test_relu_at_the_critical_weight_variance_has_no_finite_fixed_point():
    # q_map(q) = q + sigma_b^2 exactly: the variance grows by sigma_b^2 a layer for ever
    mf = theory.mean_field("relu", math.sqrt(2.0), 0.1)
    assert math.isinf(mf["q_star"])
    qs = theory.q_trajectory("relu", math.sqrt(2.0), 0.1, 50)
    assert qs[-1] == pytest.approx(1.0 + 50 * 0.01, rel=1e-9)


def test_a_stable_fixed_point_near_an_unstable_one_is_found():
    # SiLU at sigma_w 1.475, sigma_b 0.5: a stable q* near 1.355 and an unstable one not far above it
    f, fp = theory.functions("silu")
    q = 1.0
    for _ in range(3000):
        q = theory.q_map(q, f, 1.475, 0.5)
    mf = theory.mean_field("silu", 1.475, 0.5)
    assert mf["q_star"] == pytest.approx(q, rel=1e-6) and mf["phase"] == "ordered"
    assert mf["chi1"] == pytest.approx(theory.chi1(fp, 1.475, q), rel=1e-9) and mf["chi1"] < 1


def test_an_edge_of_chaos_is_where_chi_1_crosses_1_not_where_it_jumps_over_it():
    f, fp = theory.functions("silu")
    for sb in (0.05, 0.3):
        # from q0 = 1 the variance map falls to a small q* below some sigma_w and runs away above it: chi_1 jumps
        assert theory.critical_sigma_w("silu", sb) is None
    sw = theory.critical_sigma_w("silu", 1.0)
    assert sw is not None
    assert theory.chi1(fp, sw, theory.fixed_point_q(f, sw, 1.0)) == pytest.approx(1.0, abs=1e-6)


def test_correlations_are_not_reported_where_their_quadrature_errs():
    f, fp = theory.functions("tanh")
    mf = theory.mean_field("tanh", 3.0, 0.0)             # q* = 6.3: chi_c = sigma_w^2 E[f'(u)]^2 at c* = 0
    assert mf["q_star"] < theory.PAIR_MAX_Q and mf["c_star"] == pytest.approx(0.0, abs=1e-9)
    assert mf["chi_c"] == pytest.approx(9.0 * theory._expect(fp, mf["q_star"]) ** 2, rel=1e-4)
    for act, sw, sb in (("tanh", 7.0, 0.0), ("identity", 2.0, 0.0)):     # q* = 43, and q* = inf
        mf = theory.mean_field(act, sw, sb)
        assert mf["q_star"] > theory.PAIR_MAX_Q and mf["chi1"] is not None
        assert mf["c_star"] is None and mf["chi_c"] is None and mf["depth_scale_forward"] is None


@pytest.mark.parametrize("q", [1.2424e-4, 0.01, 0.5, 3.0])
def test_selu_chi1_matches_its_closed_form_across_the_kink(q):
    """E[f'(sqrt(q) z)^2] for SELU is lambda^2 (1/2 + alpha^2 e^{2q} Phi(-2 sqrt(q))): f' jumps at 0, which a rule
    with nodes on both sides of the kink gets wrong by about 1e-5 at small q."""
    lam, alpha = theory.SELU_SCALE, theory.SELU_ALPHA
    phi = 0.5 * math.erfc(2.0 * math.sqrt(q) / math.sqrt(2.0))
    exact = 0.7 ** 2 * lam ** 2 * (0.5 + alpha ** 2 * math.exp(2.0 * q) * phi)
    _, fp = theory.functions("selu")
    assert theory.chi1(fp, 0.7, q) == pytest.approx(exact, rel=1e-12)


def test_selu_edge_of_chaos_without_bias_is_its_closed_form():
    """With sigma_b = 0, q* goes to 0 and chi_1 to sigma_w^2 (f'(0-)^2 + f'(0+)^2) / 2."""
    lam, alpha = theory.SELU_SCALE, theory.SELU_ALPHA
    edge = 1.0 / math.sqrt(lam ** 2 * (1.0 + alpha ** 2) / 2.0)
    assert theory.critical_sigma_w("selu", 0.0) == pytest.approx(edge, rel=1e-6)
    assert theory.mean_field("selu", edge * 1.005, 0.0)["phase"] == "chaotic"
    assert theory.mean_field("selu", edge * 0.995, 0.0)["phase"] == "ordered"


@pytest.mark.parametrize("c", [-0.5, 0.0, 0.3, 0.9, 0.999])
def test_the_pair_expectation_of_relu_is_the_arc_cosine_kernel(c):
    """E[relu(u1) relu(u2)] = q (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi), E[relu'(u1) relu'(u2)] =
    (pi - arccos c) / (2 pi): both jump or bend at 0, where a rule with nodes on both sides errs."""
    q = 2.0
    f, fp = theory.functions("relu")
    kernel = q * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / (2 * math.pi)
    assert theory._pair_expect(f, q, c, kinked=True) == pytest.approx(kernel, rel=1e-10)
    assert theory._pair_expect(fp, q, c, kinked=True) == pytest.approx((math.pi - math.acos(c)) / (2 * math.pi),
                                                                        rel=1e-10)


def test_selu_correlation_fixed_point_and_its_slope():
    """At sigma_w 1.2, sigma_b 0.3 (q* = 7.0, chaotic): c* is a root of the correlation map and chi_c its slope, both
    against the map evaluated by a finer rule of its own (400 panels in z2, split at u2's kink)."""
    mf = theory.mean_field("selu", 1.2, 0.3)
    q, c = mf["q_star"], mf["c_star"]
    f, fp = theory.functions("selu")
    t, w = np.polynomial.legendre.leggauss(16)

    def fine(g, c):
        sc = math.sqrt(1 - c * c)
        e = np.linspace(-10, 10, 201)
        z1 = (0.5 * (e[1:, None] - e[:-1, None]) * t + 0.5 * (e[1:, None] + e[:-1, None])).ravel()
        w1 = (0.5 * (e[1:, None] - e[:-1, None]) * w).ravel() * np.exp(-z1 * z1 / 2) / math.sqrt(2 * math.pi)
        total = 0.0
        for a, wa in zip(z1, w1):
            k = -c * a / sc
            e2 = np.concatenate([np.linspace(k - 20, k, 201), np.linspace(k, k + 20, 201)[1:]])
            z2 = (0.5 * (e2[1:, None] - e2[:-1, None]) * t + 0.5 * (e2[1:, None] + e2[:-1, None])).ravel()
            w2 = (0.5 * (e2[1:, None] - e2[:-1, None]) * w).ravel() * np.exp(-z2 * z2 / 2) / math.sqrt(2 * math.pi)
            s = math.sqrt(q)
            total += wa * g(np.array(s * a)) * np.dot(w2, g(s * (c * a + sc * z2)))
        return float(total)

    assert mf["phase"] == "chaotic" and 0.4 < c < 0.6
    assert (1.2 ** 2 * fine(f, c) + 0.3 ** 2) / q == pytest.approx(c, abs=1e-9)
    assert mf["chi_c"] == pytest.approx(1.2 ** 2 * fine(fp, c), rel=1e-9)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu"])
def test_chi1_at_a_very_large_variance_keeps_the_tails_of_f_prime(name):
    """At q = 3e6, f'(u) of these approaches its limits like e^-|u|: still 3e-4 at |u| = 8, so the quadrature must
    resolve |u| up to tens. Reference: a dense trapezoid in u over [-80, 80] plus the Gaussian mass beyond."""
    q = 2.98e6
    s = math.sqrt(q)
    _, fp = theory.functions(name)
    u = np.linspace(-80.0, 80.0, 1_600_001)
    dens = np.exp(-0.5 * (u / s) ** 2) / (s * math.sqrt(2 * math.pi))
    y = fp(u) ** 2 * dens
    inside = float(np.sum((y[1:] + y[:-1]) * 0.5 * (u[1] - u[0])))
    beyond = 0.5 * math.erfc(80.0 / s / math.sqrt(2.0))
    right, left = float(fp(np.array([1e9]))[0] ** 2), float(fp(np.array([-1e9]))[0] ** 2)
    exact = inside + beyond * (right + left)
    assert theory.chi1(fp, 1.0, q) == pytest.approx(exact, rel=1e-8)


def test_the_backward_depth_scale_is_of_the_gradients_mean_square():
    """chi_1 multiplies the gradient's mean square per layer, so the depth scale -1/ln(chi_1) is the mean square's:
    the gradient's size grows by e over twice as many layers. tanh-xavier (sigma_w 5/3 at width 256) measures it."""
    from initlab.engine.presets import PRESETS

    cfg = PRESETS["tanh-xavier"].config.replace(device="cpu")
    layers = run_probe(cfg, distributions=False).layers
    grown = math.log(layers[0]["grad_z_rms"] / layers[-1]["grad_z_rms"])
    xi = theory.mean_field("tanh", 5 / 3, 0.0)["depth_scale_backward"]
    assert xi < 0 and grown == pytest.approx((cfg.depth - 1) / (2 * -xi), rel=0.05)


def test_what_the_readout_from_a_variance_of_1_leaves_out():
    # GELU at sigma_w 1.76: from q0 = 1 the variance runs off; from 1e-3 it settles below an unstable fixed point
    mf = theory.mean_field("gelu", 1.76, 0.05)
    more = theory.elsewhere("gelu", 1.76, 0.05, q_star=mf["q_star"])
    assert math.isinf(mf["q_star"]) and more["q0"] == 1.0 and more["q_star_infinite"]
    [other] = more["other_starts"]
    settled = theory.q_trajectory("gelu", 1.76, 0.05, 400, q0=1e-3)[-1]      # the map itself, iterated
    assert other["q0"] == 1e-3 and other["q_star"] == pytest.approx(settled, rel=1e-6)
    f, fp = theory.functions("gelu")
    assert other["chi1"] == pytest.approx(1.76 ** 2 * np.mean(fp(math.sqrt(settled) * np.random.default_rng(0)
                                                                  .standard_normal(2_000_000)) ** 2), rel=3e-3)
    assert other["phase"] == "ordered"
    # ELU at sigma_w^2 = 2: the large-q limit reads critical; at q = 1e4 the gradients still grow
    elu = theory.elsewhere("elu", math.sqrt(2.0), 0.1)
    assert theory.mean_field("elu", math.sqrt(2.0), 0.1)["phase"] == "critical" and elu["chi1_finite_q"] > 1.003
    # tanh's fixed point is the same from any start; a finite q* needs no finite-q reading
    assert theory.elsewhere("tanh", 1.5, 0.1) == {"q0": 1.0, "q_star_infinite": False, "other_starts": [],
                                                  "chi1_finite_q": None}


@pytest.mark.parametrize("activation,sw", [("tanh", 1.3), ("selu", 1.0), ("tanh", 2.5)])
def test_an_odd_or_zero_mean_activation_without_bias_has_c_star_exactly_zero(activation, sw):
    # the correlation map at c = 0 is (sigma_w^2 E[f]^2 + sigma_b^2) / q*: 0 here (SELU's mean is 0 at q* = 1), where
    # the bisection on a rounding-level h(0) had stopped at 2^-61
    res = theory.mean_field(activation, sw, 0.0)
    assert res["phase"] == "chaotic" and res["c_star"] == 0.0


def test_figures_near_one_keep_the_digits_that_tell_them_from_one(capsys, monkeypatch):
    from initlab.engine import report
    from initlab.engine.textplot import fmt, fmt_near_one

    assert fmt_near_one(0.99998) == "0.99998" and fmt_near_one(1.0) == "1" and fmt_near_one(0.5) == fmt(0.5)
    assert fmt_near_one(1.0000002) == "1.0000002"
    assert fmt_near_one(1.0000000000000002) == "1"        # sqrt(2) ** 2: rounding's noise, not a figure
    text = report.markdown("theory", theory.mean_field("tanh", 0.99999, 0.0))    # the report's figures too
    assert "| chi1 | 0.99998 |" in text and "| phase | ordered |" in text
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert main(["theory", "--sigma-w", "0.99999"]) == 0
    out = capsys.readouterr().out
    # chi_1 = sigma_w^2 at q* = 0 for tanh: ordered, and no figure reads 1
    assert "sigma_w 0.99999 (sigma_w^2 0.99998)" in out and "chi_1                 0.99998" in out
    assert "ordered" in out
