"""Shown numbers the other files left without a direct computation: each here against torch or numpy written out."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from initlab.engine import activations
from initlab.engine.models import build_mlp
from initlab.engine.probe import random_matrix_run, run_probe
from initlab.engine.spec import ACTIVATIONS, Config
from initlab.engine.train import Trainer
from initlab.engine.widths import width_check

CPU = torch.device("cpu")
TRAIN = dict(depth=3, width=8, data="poly", batch=10, epochs=2, n_rows=200, stats_every=5, device="cpu", seed=4)


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def by_hand(model, x: torch.Tensor, loss_of) -> tuple[list[dict[str, float]], float]:
    """Forward block by block on a copy of the net, backward, and the statistics of every block in float64 numpy.
    The weights are the copy's own (so the ones the statistics were taken with)."""
    model = copy.deepcopy(model)
    model.zero_grad(set_to_none=True)
    h = x
    kept = []
    for block in model.blocks:
        x_in = h
        z = block.linear(x_in)
        z.retain_grad()
        a = block.drop(block.act(block.norm(z)))
        if block.residual:
            a = x_in + a
        kept.append((x_in, z, a, block))
        h = a
    loss = loss_of(h)
    loss.backward()
    rows = []
    for x_in, z, a, block in kept:
        zz, aa, gz = np64(z), np64(a), np64(z.grad)
        w, gw = np64(block.linear.weight), np64(block.linear.weight.grad)
        rows.append({"z_std": zz.std(), "a_mean": aa.mean(), "a_std": aa.std(), "a_min": aa.min(), "a_max": aa.max(),
                     "grad_z_std": gz.std(), "grad_z_rms": np.sqrt(np.mean(gz ** 2)), "grad_w_std": gw.std(),
                     "grad_w_absmean": np.abs(gw).mean(), "grad_w_norm": np.sqrt((gw ** 2).sum()),
                     "w_std": w.std(), "grad_to_weight": gw.std() / w.std(),
                     "fwd_var_ratio": zz.var() / np64(x_in).var(), "bwd_var_ratio": (gz @ w).var() / gz.var(),
                     "distinct_units": len(np.unique(w, axis=0))})
    return rows, float(loss.detach())


def close(got: dict, want: dict, names, rel: float = 1e-5) -> None:
    for k in names:
        assert got[k] == pytest.approx(want[k], rel=rel, abs=1e-9), k


# probe ----------------------------------------------------------------------------------------------------------

def test_probe_input_std_is_the_std_of_the_batch_it_drew():
    """The Forward chart's "input std" line: the population std of the probe's own N(0, 1) batch."""
    cfg = Config(depth=3, width=8, in_features=6, out_features=4, batch=5, device="cpu", seed=11)
    res = run_probe(cfg, distributions=False)
    torch.manual_seed(cfg.seed)
    build_mlp(cfg, CPU)
    x = np64(torch.randn(cfg.batch, cfg.in_features))
    assert res.input_std == pytest.approx(x.std(), rel=1e-6)
    assert abs(x.std() - 1) > 1e-3          # a batch of 30 draws: not the 1 a constant would give


def test_random_matrix_largest_entry_and_its_spread_over_draws():
    """`probe --preset random-matrix`: the largest |entry| of the seed's product and the 10/50/90% quantiles of
    the largest |entry| over 1000 products drawn alike, reduced here with numpy from the same draws."""
    run = random_matrix_run(4, 100, 3, draws=200)
    g = torch.Generator().manual_seed(3)
    m = torch.randn(4, 4, generator=g, dtype=torch.float64)
    norms = []
    for _ in range(100):
        m = m @ torch.randn(4, 4, generator=g, dtype=torch.float64)
        norms.append(np.sqrt((m.numpy() ** 2).sum()))
    many = torch.randn(200, 4, 4, generator=g, dtype=torch.float64)
    for _ in range(100):
        many = many @ torch.randn(200, 4, 4, generator=g, dtype=torch.float64)
    assert run["norms"] == pytest.approx(norms, rel=1e-12)
    assert run["max_entry"] == pytest.approx(np.abs(m.numpy()).max(), rel=1e-12)
    peaks = np.abs(many.numpy()).reshape(200, -1).max(axis=1)
    p10, p50, p90 = 10 ** np.quantile(np.log10(peaks), [0.1, 0.5, 0.9])
    assert run["max_entry_p10"] == pytest.approx(p10, rel=1e-9)
    assert run["max_entry_median"] == pytest.approx(p50, rel=1e-9)
    assert run["max_entry_p90"] == pytest.approx(p90, rel=1e-9)
    assert p10 < p50 < p90


# training -------------------------------------------------------------------------------------------------------

def test_classification_losses_and_accuracies_match_a_direct_computation():
    """`train` on blobs: the epoch table's train/test loss (cross-entropy) and accuracy (argmax hits / rows)."""
    tr = Trainer(Config(**{**TRAIN, "data": "blobs", "depth": 2, "width": 16, "lr": 0.1, "n_rows": 150}))
    res = tr.run()
    last = res["epochs"][-1]
    with torch.no_grad():
        for split in ("train", "test"):
            x, y = getattr(tr.data, f"x_{split}"), getattr(tr.data, f"y_{split}")
            logits = np64(tr.model(x))
            logits -= logits.max(axis=1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            labels = y.numpy()
            ce = -logp[np.arange(len(labels)), labels].mean()
            acc = np.mean(logits.argmax(axis=1) == labels)
            assert last[f"{split}_loss"] == pytest.approx(ce, rel=1e-5)
            assert last[f"{split}_acc"] == pytest.approx(acc, abs=1e-7)
    assert 0 < last["train_acc"] < 1 or last["train_acc"] == 1.0


def test_statistics_after_training_match_a_direct_computation_on_the_trained_net():
    """`train`'s per-layer table after training: the trained net on the first training batch, no update."""
    tr = Trainer(Config(**TRAIN, lr=0.05))
    w0 = tr.model.blocks[0].linear.weight.detach().clone()
    res = tr.run()
    assert not torch.equal(w0, tr.model.blocks[0].linear.weight.detach())       # it did train
    cfg = tr.cfg
    xb, yb = tr.data.x_train[:cfg.batch], tr.data.y_train[:cfg.batch]
    want, _ = by_hand(tr.model, xb, lambda out: ((out - yb) ** 2).mean())
    got = res["final"]["layers"]
    assert len(got) == len(want) == cfg.depth
    for g, w in zip(got, want):
        close(g, w, ("z_std", "a_mean", "a_std", "a_min", "a_max", "grad_z_std", "grad_z_rms", "grad_w_std",
                     "grad_w_absmean", "grad_w_norm", "w_std", "grad_to_weight", "fwd_var_ratio", "bwd_var_ratio"))
        assert g["distinct_units"] == w["distinct_units"]


def test_a_sampled_steps_loss_and_statistics_match_a_direct_computation():
    """What a training's progress line and the app's charts show at a sampled step: the loss and the forward and
    backward statistics of that step, taken with the weights before its update."""
    cfg = Config(**TRAIN, activation="tanh", optimizer="adam", lr=0.01)
    tr = Trainer(cfg)
    xb, yb = tr.data.x_train[:cfg.batch], tr.data.y_train[:cfg.batch]
    want, loss = by_hand(tr.model, xb, lambda out: ((out - yb) ** 2).mean())
    got_loss = tr._sampled_step(xb, yb, 1)
    step = tr.steps.latest
    assert got_loss == step["loss"] == pytest.approx(loss, rel=1e-6)
    for g, w in zip(step["layers"], want):
        close(g, w, ("z_std", "a_mean", "a_std", "grad_z_std", "grad_z_rms", "grad_w_std", "grad_w_absmean",
                     "grad_w_norm", "w_std", "grad_to_weight", "fwd_var_ratio", "bwd_var_ratio"))


# gain and theory ------------------------------------------------------------------------------------------------

SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
ERF = np.vectorize(math.erf)
BY_HAND = {
    "identity": lambda x: x,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(np.minimum(x, 0))),
    "gelu": lambda x: 0.5 * x * (1 + ERF(x / math.sqrt(2))),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(0, x),
}
GRID = np.linspace(-12, 12, 48001)
PHI = np.exp(-GRID ** 2 / 2) / math.sqrt(2 * math.pi) * (GRID[1] - GRID[0])


def gauss(values: np.ndarray) -> float:
    """E[g(x)], x ~ N(0, 1), on a fine grid."""
    return float((values * PHI).sum())


def test_every_activations_measured_gains_against_gaussian_integrals():
    """`initlab gain` and the activation chart's rows: std(x)/std(f(x)) and sqrt(E x^2 / E f(x)^2) for x ~ N(0, 1),
    integrated here on a fine grid (the tool measures them on 10^6 draws: a few 1e-4 off)."""
    rows = {r.name: r for r in activations.gain_table()}
    assert set(rows) == set(ACTIVATIONS) == set(BY_HAND)
    for name, f in BY_HAND.items():
        y = f(GRID)
        m1, m2 = gauss(y), gauss(y * y)
        assert rows[name].empirical == pytest.approx(1 / math.sqrt(m2 - m1 * m1), rel=4e-3), name
        assert rows[name].rms == pytest.approx(1 / math.sqrt(m2), rel=4e-3), name
        # the largest derivative, by central differences of the hand-written function
        d = np.gradient(f(GRID), GRID)
        assert rows[name].max_derivative == pytest.approx(np.abs(d).max(), rel=2e-3, abs=1e-3), name


@pytest.mark.parametrize("sigma_b", [0.1, 0.3, 0.6])
def test_the_critical_sigma_w_theory_shows_makes_chi_1_one(sigma_b):
    """`initlab theory`'s critical_sigma_w for tanh with a bias: at it, iterating the variance map to q* and
    taking sigma_w^2 E[f'(sqrt(q*) z)^2] by hand gives 1."""
    from initlab.tui.commands.theory import compute

    res = compute("tanh", 1.0, sigma_b, 0.01)
    sw = res["critical_sigma_w"]
    assert sw is not None and sw > 1.0 and res["critical_sigma_w2"] == pytest.approx(sw * sw)
    q = 1.0
    for _ in range(3000):
        q = sw ** 2 * gauss(np.tanh(math.sqrt(q) * GRID) ** 2) + sigma_b ** 2
    chi1 = sw ** 2 * gauss((1 - np.tanh(math.sqrt(q) * GRID) ** 2) ** 2)
    assert chi1 == pytest.approx(1.0, abs=1e-4)


# widths ---------------------------------------------------------------------------------------------------------

def test_widths_slopes_are_least_squares_fits_of_the_shown_means():
    """`initlab widths`' slope column: a degree-1 polyfit of log mean |a| (and log mean |a - a_0|) on log width."""
    widths = [8, 16, 32, 64]
    cfg = Config(depth=3, in_features=8, out_features=4, batch=16, activation="tanh", init="xavier_normal",
                 optimizer="adam", lr=1e-2, device="cpu", seed=1)
    r = width_check(cfg, widths, steps=2)
    lw = np.log(widths)
    seen = 0
    for t in range(r["steps"] + 1):
        for l in range(r["layers"]):
            ys = np.array([r["mean_abs_a"][i][t][l] for i in range(len(widths))])
            assert r["slopes"][t][l] == pytest.approx(np.polyfit(lw, np.log(ys), 1)[0], rel=1e-9, abs=1e-12)
            d = np.array([r["mean_abs_delta"][i][t][l] for i in range(len(widths))], dtype=float)
            if t > 0 and np.all(d > 0):
                assert r["delta_slopes"][t][l] == pytest.approx(np.polyfit(lw, np.log(d), 1)[0], rel=1e-9)
                seen += 1
    assert seen > 0
