"""Every per-layer statistic of a probe against a direct computation on the same tensors; one transfer per probe."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from initlab.engine import stats
from initlab.engine.models import build_mlp
from initlab.engine.presets import PRESETS
from initlab.engine.probe import run_probe
from initlab.engine.spec import Config

CPU = torch.device("cpu")
SMALL = dict(depth=4, width=8, in_features=8, out_features=8, batch=16, device="cpu", seed=5)


def by_hand(cfg: Config) -> tuple[list[dict[str, float]], float]:
    """Rebuild the probe's net with the same seed, run forward and backward block by block, and compute every
    statistic with numpy in float64 from the tensors themselves. Returns (layers, loss)."""
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, CPU)
    model.train()
    x = torch.randn(cfg.batch, cfg.in_features)
    x.requires_grad_(True)
    h = x
    kept = []
    for block in model.blocks:
        x_in = h
        if x_in.grad_fn is not None:
            x_in.retain_grad()
        z = block.linear(x_in)
        z.retain_grad()
        pre = block.norm(z)
        act = block.act(pre)
        a = block.drop(act)
        if block.residual:
            a = x_in + a
        kept.append((x_in, z, pre, act, a, block))
        h = a
    if cfg.loss == "mse":
        loss = ((h - cfg.target) ** 2).mean()
    else:
        loss = (h * torch.randn(h.shape)).sum()
    loss.backward()

    def np64(t: torch.Tensor) -> np.ndarray:
        return t.detach().double().numpy()

    rows = []
    for x_in, z, pre, act, a, block in kept:
        name = block.activation_name
        zz, aa, ac, pr = np64(z), np64(a), np64(act), np64(pre)
        gz, w, gw = np64(z.grad), np64(block.linear.weight), np64(block.linear.weight.grad)
        gx_linear = gz @ w                      # dL/d(input) through this Linear alone
        if not block.residual:
            gx = np64(x_in.grad)
            assert np.allclose(gx_linear, gx, rtol=1e-5, atol=1e-6 * np.abs(gx).max())
        # |f'| below 3% of its peak: tanh's 1 - a^2, sigmoid's a (1 - a) against 1/4
        if name == "tanh":
            sat = np.mean(1 - ac * ac < 0.03)
        elif name == "sigmoid":
            sat = np.mean(ac * (1 - ac) < 0.03 / 4)
        elif name in ("elu", "selu"):
            sat = np.mean(pr < math.log(0.03))
        else:
            sat = 0.0
        dead = np.mean(ac == 0) if name in ("relu", "leaky_relu") else 0.0
        rows.append({
            "z_mean": zz.mean(), "z_std": zz.std(), "a_mean": aa.mean(), "a_std": aa.std(),
            "a_min": aa.min(), "a_max": aa.max(), "saturated_frac": sat, "dead_frac": dead,
            "nonfinite_frac": np.mean(~np.isfinite(aa)),
            "grad_z_std": gz.std(), "grad_z_rms": np.sqrt(np.mean(gz ** 2)),
            "grad_w_std": gw.std(), "grad_w_absmean": np.abs(gw).mean(), "grad_w_norm": np.sqrt((gw ** 2).sum()),
            "w_std": w.std(), "grad_to_weight": gw.std() / w.std(),
            "fwd_var_ratio": zz.var() / np64(x_in).var(), "bwd_var_ratio": gx_linear.var() / gz.var(),
            "distinct_units": len(np.unique(w, axis=0)),
        })
    return rows, float(loss.detach())


VARIANTS = {
    "tanh": dict(activation="tanh"),
    "tanh-mse-last": dict(activation="tanh", last_activation=True, loss="mse", target=0.3, init="default"),
    "relu": dict(activation="relu", init="kaiming_normal"),
    "relu-batchnorm": dict(activation="relu", norm="batch", init="kaiming_uniform"),
    "sigmoid-no-bias-layernorm": dict(activation="sigmoid", bias=False, norm="layer", last_activation=True,
                                      init="normal", std=1.5),
    "sigmoid-scaled-bias": dict(activation="sigmoid", init="scaled_normal", sigma_w=3.0, sigma_b=0.5),
    "tanh-residual": dict(activation="tanh", residual=True, init="orthogonal"),
    "relu-residual-dropout": dict(activation="relu", residual=True, dropout=0.25, in_features=5, out_features=3),
    "leaky-relu-batchnorm-residual": dict(activation="leaky_relu", slope=0.1, norm="batch", residual=True),
    "elu-wide-input": dict(activation="elu", in_features=20, out_features=2, init="xavier_normal"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_statistic_matches_a_direct_computation(variant):
    cfg = Config(**{**SMALL, **VARIANTS[variant]})
    res = run_probe(cfg)
    want, loss = by_hand(cfg)
    assert len(res.layers) == len(want) == cfg.depth
    for i, (got, ref) in enumerate(zip(res.layers, want)):
        assert set(stats.STAT_NAMES) <= set(got)
        for name in stats.STAT_NAMES:
            g, r = got[name], ref[name]
            if name == "distinct_units":
                assert g == r, (variant, i, name)
                continue
            assert isinstance(g, float), (variant, i, name, g)
            assert g == pytest.approx(float(r), rel=2e-5, abs=1e-7), (variant, i, name, g, r)
    if cfg.loss == "mse":
        assert res.loss == pytest.approx(loss, rel=1e-6)
    else:
        assert res.loss is None


def test_the_variants_exercise_the_statistics():
    """Guards the comparisons above from passing on zeros: saturation, dead units and both ratios all show up."""
    seen = Counter()
    for variant in ("tanh", "relu-batchnorm", "sigmoid-scaled-bias"):
        for d in run_probe(Config(**{**SMALL, **VARIANTS[variant]})).layers:
            seen["sat"] += d["saturated_frac"] > 0
            seen["dead"] += d["dead_frac"] > 0
            seen["ratios"] += d["fwd_var_ratio"] != 1 and d["bwd_var_ratio"] != 1
    assert seen["sat"] and seen["dead"] and seen["ratios"]


def test_layer_rows_carry_index_name_and_fans():
    res = run_probe(Config(**{**SMALL, "in_features": 5, "out_features": 3, "activation": "relu"}))
    assert [(d["index"], d["fan_in"], d["fan_out"]) for d in res.layers] == [(0, 5, 8), (1, 8, 8), (2, 8, 8),
                                                                          (3, 8, 3)]
    assert res.layers[0]["name"].endswith("relu") and res.layers[-1]["name"].endswith("identity")
    assert res.names == [d["name"] for d in res.layers]


def test_statistics_stay_finite_past_float32_squares():
    """Activations near 1e25 are finite in float32 while their squares are not: the reported std is still theirs."""
    cfg = Config(**{**SMALL, "activation": "identity", "init": "normal", "std": 1e6, "bias": False})
    res = run_probe(cfg)
    want, _ = by_hand(cfg)
    assert res.first_nonfinite_layer is None
    for got, ref in zip(res.layers, want):
        for name in ("z_std", "a_std", "a_mean", "grad_z_std", "grad_z_rms", "grad_w_std", "grad_w_norm",
                     "fwd_var_ratio", "bwd_var_ratio"):
            assert got[name] == pytest.approx(float(ref[name]), rel=1e-4), name
    assert res.layers[-1]["a_std"] > 1e25


# distinct units --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("init, kw", [("zeros", {}), ("constant", {"value": 0.3})])
def test_symmetric_init_leaves_one_distinct_unit(init, kw):
    res = run_probe(Config(**{**SMALL, "init": init, **kw}))
    assert [d["distinct_units"] for d in res.layers] == [1, 1, 1, 1]


@pytest.mark.parametrize("init", ["xavier_uniform", "default", "orthogonal", "kaiming_normal"])
def test_random_init_gives_every_unit_its_own_row(init):
    res = run_probe(Config(**{**SMALL, "init": init, "out_features": 3}))
    assert [d["distinct_units"] for d in res.layers] == [8, 8, 8, 3]


def distinct_rows(w: torch.Tensor) -> torch.Tensor:
    return stats.distinct_units([w])[0]


def test_distinct_rows_counts_duplicates_within_a_tolerance():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(4, 6, generator=g)
    w = torch.stack([r[0], r[1], r[0], r[2], r[1], r[3], r[3] * (1 + 1e-8)])
    assert int(distinct_rows(w)) == 4
    assert int(distinct_rows(r)) == 4
    assert int(distinct_rows(torch.zeros(5, 3))) == 1
    assert int(distinct_rows(torch.tensor([1.0, 2.0, 1.0, 3.0]))) == 3


# distributions ---------------------------------------------------------------------------------------------------

def test_distributions_are_the_quantiles_of_the_same_tensors():
    cfg = Config(**{**SMALL, "activation": "tanh"})
    res = run_probe(cfg, distributions=True)
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, CPU)
    weights = [b.linear.weight.detach().double().numpy() for b in model.blocks]
    assert len(res.distributions) == cfg.depth
    for d, w in zip(res.distributions, weights):
        assert set(d) == set(stats.DIST_KINDS)
        assert np.allclose(d["weight"], np.quantile(w, stats.QUANTILES), rtol=1e-5, atol=1e-7)
    assert res.distributions[0]["activation"][0] == pytest.approx(res.layers[0]["a_min"], rel=1e-6)
    assert res.distributions[0]["activation"][-1] == pytest.approx(res.layers[0]["a_max"], rel=1e-6)


def test_a_large_tensors_quantiles_are_of_a_random_sample_and_a_non_finite_one_has_none():
    w = torch.zeros(256, 256)
    w[:, ::64] = 1.0            # the columns a stride of 64 would have kept, and only those
    s = stats._sample(w)
    assert s.numel() == stats._QUANTILE_SAMPLE and 0 < float(s.mean()) < 0.05
    assert torch.equal(s, stats._sample(w.clone()))         # the same positions every time
    big = stats._picks(1 << 26, torch.device("cpu"))         # a GPU layer's size: no permutation of it all
    assert 1000 < big.numel() <= stats._QUANTILE_SAMPLE and bool((big[1:] > big[:-1]).all()) and big[-1] < 1 << 26
    cfg = Config(depth=2, width=256, in_features=256, out_features=256, batch=64, activation="relu",
                 init="kaiming_normal", device="cpu")
    res = run_probe(cfg, distributions=True)
    torch.manual_seed(cfg.seed)
    w0 = build_mlp(cfg, CPU).blocks[0].linear.weight.detach().double().numpy()
    q, full = np.array(res.distributions[0]["weight"]), np.quantile(w0, stats.QUANTILES)
    iqr = full[4] - full[2]
    assert np.all(np.abs(q[1:6] - full[1:6]) < 0.1 * iqr)      # 5% to 95%: within sampling error
    blown = run_probe(PRESETS["linear-explode"].config.replace(device="cpu"), distributions=True)
    bad = [i for i, r in enumerate(blown.layers) if r["nonfinite_frac"] == 1.0]
    assert bad and all(math.isnan(v) for i in bad for v in blown.distributions[i]["activation"])


# one transfer (the sync_counter fixture is in conftest.py) ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["tanh", "relu-batchnorm", "relu-residual-dropout"])
@pytest.mark.parametrize("distributions", [False, True])
def test_one_transfer_per_probe(sync_counter, variant, distributions):
    cfg = Config(**{**SMALL, **VARIANTS[variant]})
    run_probe(cfg, distributions=distributions)
    assert sync_counter["tolist"] == 1
    assert sum(sync_counter.values()) == 1, dict(sync_counter)


def test_the_sync_counter_sees_syncs(sync_counter):
    t = torch.ones(3)
    t.sum().item()
    float(t[0])
    t.tolist()
    assert (sync_counter["item"], sync_counter["__float__"], sync_counter["tolist"]) == (1, 1, 1)


def test_collect_makes_exactly_one_transfer(sync_counter):
    cfg = Config(**SMALL)
    torch.manual_seed(0)
    model = build_mlp(cfg, CPU)
    x = torch.randn(cfg.batch, cfg.in_features, requires_grad=True)
    with stats.Capture(model.blocks) as cap:
        out = model(x)
        out.square().sum().backward()
        sync_counter.clear()
        layers, extras, _ = stats.collect(cap, model.blocks, [out.sum()], with_distributions=True)
    assert dict(sync_counter) == {"tolist": 1}
    assert len(layers) == cfg.depth and len(extras) == 1


def test_capture_removes_its_taps_even_on_error():
    cfg = Config(**SMALL)
    model = build_mlp(cfg, CPU)
    tapped = lambda: sum(b.tap is not None for b in model.blocks)
    assert tapped() == 0
    with pytest.raises(RuntimeError):
        with stats.Capture(model.blocks):
            assert tapped() == cfg.depth
            model(torch.randn(2, 99))           # wrong input size
    assert tapped() == 0
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


@pytest.mark.parametrize("n", [1000, 40_000, 3_000_000])
def test_a_constant_tensor_has_a_variance_of_exactly_zero_at_any_size(n):
    """Large tensors are reduced in chunks, each centred on its own mean: s / k, not s * (1 / k), which rounds."""
    from initlab.engine.moments import reduce

    for value in (0.01, 0.5, -3.7):
        m = reduce([torch.full((n,), value)], [0])
        assert m[0, 1].item() == 0.0 and m[0, 0].item() == pytest.approx(value, rel=1e-7)


def test_moments_of_tensors_of_every_layout_match_numpy():
    """Widths with many elements are reduced in row groups, the few-element widths together element by element,
    large tensors in chunks: each statistic against numpy in float64, with non-finite values and constants among
    them."""
    from initlab.engine.moments import ABS, BIG, EXT, FEW, reduce

    g = torch.Generator().manual_seed(3)
    shapes = [(10, 64), (64, 64), (64, 2), (10, 2), (10, 1), (7,), (3, 5, 4), (), (BIG + 10,), (FEW, 3), (1, 64)]
    tensors = [torch.randn(s, generator=g) * 3 + 1 for s in shapes]
    tensors[2] = torch.full((64, 2), 0.1)                       # a constant among the element rows
    tensors[4][3, 0] = float("inf")
    tensors[6][1, 2, 3] = float("nan")
    flags = [EXT, ABS, EXT | ABS, 0, EXT, ABS, EXT, EXT | ABS, ABS | EXT, 0, EXT]
    m = reduce(tensors, flags).numpy()
    for t, f, row in zip(tensors, flags, m):
        x = t.double().numpy().reshape(-1)
        with np.errstate(invalid="ignore"):
            want = [x.mean(), x.var(), x.min() if f & EXT else np.nan, x.max() if f & EXT else np.nan,
                    np.abs(x).mean() if f & ABS else np.nan, np.isfinite(x).mean() if f & EXT else np.nan, x.size]
        assert np.allclose(row, want, rtol=1e-12, atol=0, equal_nan=True), (t.shape, f, row, want)
    assert m[2, 1] == 0.0 and m[2, 0] == np.float32(0.1)


def test_distinct_units_tells_apart_every_row_of_a_wide_random_matrix():
    """Neighbours in the sort by the first projection are close on it anyway: with two directions a random
    4096 x 4096 matrix lost a row or more in most draws; every projection must agree for rows to be one unit."""
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        w = torch.rand(4096, 4096, generator=g) * 2 - 1
        assert int(stats.distinct_units([w])[0]) == 4096
    w = torch.rand(64, 32, generator=g)
    w[5] = w[9]
    w[7] = w[9] + 1e-9          # within the tolerance: one unit with rows 5 and 9
    assert int(stats.distinct_units([w])[0]) == 62


def test_a_ratio_of_two_zero_spreads_is_none():
    # one unit in, one out, a batch of one: z, x and W each hold one value, so every variance ratio is 0 / 0
    d = run_probe(Config(depth=1, in_features=1, out_features=1, batch=1, device="cpu"), distributions=False).layers[0]
    assert d["z_std"] == 0 and d["w_std"] == 0
    assert d["fwd_var_ratio"] is None and d["bwd_var_ratio"] is None and d["grad_to_weight"] is None
    # a zero spread under a non-zero one is a ratio all the same: infinite
    d = run_probe(Config(depth=2, width=8, init="constant", value=0.1, batch=16, device="cpu"),
                  distributions=False).layers[0]
    assert d["w_std"] == 0 and d["grad_w_std"] > 0 and d["grad_to_weight"] == math.inf


def test_a_ratio_made_nan_by_a_blown_up_net_stays_nan():
    # linear-explode overflows from layer 31: its variance ratios there are inf / inf, not 0 / 0

    layers = run_probe(PRESETS["linear-explode"].config.replace(device="cpu"), distributions=False).layers
    late = layers[40]
    assert not math.isfinite(late["z_std"]) and late["fwd_var_ratio"] is not None
    assert math.isnan(late["fwd_var_ratio"])


def test_a_drift_notes_rate_is_over_the_layers_crossed_to_its_worst():
    from initlab.engine.verdict import verdict

    # a 100x fall of the forward std at the first layer: 100x a layer, not spread over the ten
    early = verdict([dict(a_std=a, grad_z_rms=1.0) for a in [0.01] + [1.0] * 9], 1.0)
    assert early["kind"] == "stable" and "falls 100x across the net (about 100x a layer)" in early["note"]
    # the same fall reached step by step over the ten layers: about 1.58x a layer (10 ** (2 / 10))
    gradual = verdict([dict(a_std=10 ** (-0.2 * (i + 1)), grad_z_rms=1.0) for i in range(10)], 1.0)
    assert f"(about {10 ** 0.2:.3g}x a layer)" in gradual["note"]
    # backward: from the last layer down to the worst, here the first, nine layers away
    back = verdict([dict(a_std=1.0, grad_z_rms=g) for g in [0.01] + [1.0] * 9], 1.0)
    assert f"backward dL/dz RMS falls 100x across the net (about {100 ** (1 / 9):.3g}x a layer)" in back["note"]
