"""Jacobian spectra against directly computed Jacobians, and `initlab jacobian`.

Isometry of the orthogonal linear net, the spread of the Gaussian one, every value, the histogram.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from initlab.engine.jacobian import jacobian_spectrum
from initlab.engine.models import build_mlp
from initlab.engine.spec import Config, SpecError
from initlab.tui.cli import main


def linear(depth: int, width: int, **kw) -> Config:
    return Config(depth=depth, width=width, in_features=width, out_features=width, activation="identity",
                  bias=False, device="cpu", **kw)


def test_orthogonal_deep_linear_net_is_an_isometry():
    res = jacobian_spectrum(linear(30, 32, init="orthogonal"))
    assert len(res["singular_values"]) == 32
    assert all(abs(s - 1) < 1e-4 for s in res["singular_values"])
    assert res["condition_number"] < 1 + 2e-4
    assert res["mean_squared"] == pytest.approx(1.0, abs=1e-4)


def test_gaussian_linear_net_spreads_over_orders_of_magnitude_with_depth():
    res = jacobian_spectrum(linear(8, 32, init="normal", std=1 / math.sqrt(32)))
    assert res["numerical_rank"] == 32 and res["condition_at_least"] is None
    assert res["max"] / res["min"] > 1e6
    assert res["log10_spread"] > 6
    assert res["log10_spread"] == pytest.approx(math.log10(res["condition_number"]))
    shallow = jacobian_spectrum(linear(2, 32, init="normal", std=1 / math.sqrt(32)))
    assert res["log10_spread"] > shallow["log10_spread"] + 2      # the spread grows with depth


def test_a_deeper_gaussian_net_is_numerically_singular_and_says_so():
    # at depth 50 the product's smallest singular values (about e^-118 in theory) lie far below what float64 resolves:
    # the SVD returns rounding noise there, so min is not a measurement and the condition number has only a bound
    cfg = linear(50, 32, init="normal", std=1 / math.sqrt(32))
    res = jacobian_spectrum(cfg)
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, torch.device("cpu"))
    prod = torch.eye(32, dtype=torch.float64)
    for b in model.blocks:
        prod = b.linear.weight.detach().double() @ prod
    direct = torch.linalg.svdvals(prod)
    eps = torch.finfo(torch.float64).eps * 32
    assert res["resolution"] == pytest.approx(float(direct[0]) * eps, rel=1e-9)
    assert res["numerical_rank"] == int(torch.linalg.matrix_rank(prod)) < 32
    assert math.isinf(res["condition_number"]) and res["log10_spread"] is None
    assert res["condition_at_least"] == pytest.approx(res["max"] / res["resolution"])
    h = res["histogram"]
    assert h["unresolved"] == 32 - res["numerical_rank"] and sum(h["counts"]) == res["numerical_rank"]
    assert 10 ** h["edges"][0] >= res["resolution"] * (1 - 1e-9)


def test_linear_net_spectrum_is_that_of_the_weight_product():
    cfg = linear(5, 12, init="normal", std=0.3).replace(in_features=7, out_features=5)
    res = jacobian_spectrum(cfg)
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, torch.device("cpu"))
    prod = torch.eye(7, dtype=torch.float64)
    for b in model.blocks:
        prod = b.linear.weight.double() @ prod
    direct = torch.linalg.svdvals(prod).tolist()
    assert res["shape"] == [5, 7] and len(res["singular_values"]) == 5
    assert res["singular_values"] == pytest.approx(direct, rel=1e-10)


def test_nonlinear_spectrum_averaged_over_inputs_matches_autograd():
    cfg = Config(depth=4, width=16, in_features=6, out_features=5, activation="tanh", init="xavier_normal",
                 bias=True, device="cpu", seed=7)
    res = jacobian_spectrum(cfg, inputs=3)
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, torch.device("cpu")).double().eval()
    x = torch.randn(3, 6, dtype=torch.float64)
    spectra = []
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), x[i])
        spectra.append(torch.linalg.svdvals(jac))
    direct = torch.stack(spectra)
    assert res["singular_values"] == pytest.approx(direct.mean(0).tolist(), rel=1e-10)
    assert res["max"] == pytest.approx(float(direct.mean(0)[0])) and res["min"] == pytest.approx(float(direct.mean(0)[-1]))
    assert res["condition_number"] == pytest.approx(res["max"] / res["min"])
    assert res["mean_squared"] == pytest.approx(float((direct ** 2).mean()), rel=1e-10)
    # the histogram counts every value of every input once, in the bin its log10 falls in
    h = res["histogram"]
    assert sum(h["counts"]) == 15 and h["zeros"] == 0 and len(h["edges"]) == 21
    logs = torch.log10(direct.flatten()).tolist()
    assert h["edges"][0] == pytest.approx(min(logs)) and h["edges"][-1] == pytest.approx(max(logs))
    width = (h["edges"][-1] - h["edges"][0]) / 20
    for j, c in enumerate(h["counts"]):
        inside = [v for v in logs if min(int((v - h["edges"][0]) / width), 19) == j]
        assert c == len(inside)


def test_zero_weights_give_zero_singular_values_and_no_condition_number():
    res = jacobian_spectrum(linear(3, 8, init="zeros"))
    assert res["max"] == 0 and res["min"] == 0 and res["condition_number"] is None
    assert res["histogram"]["zeros"] == 8 and res["log10_spread"] is None
    from initlab.engine.export import dumps

    assert json.loads(dumps(res))["condition_number"] is None


def test_a_zero_jacobian_reads_undefined_not_inf(capsys):
    from initlab.tui.widgets.jacobian_chart import extreme_parts

    res = jacobian_spectrum(linear(3, 8, init="zeros"))
    assert extreme_parts(res)[-1] == "condition number undefined (zero Jacobian)"
    assert main(["jacobian", "--depth", "3", "--width", "8", "--in-features", "4", "--out-features", "4",
                 "--init", "zeros", "--device", "cpu"]) == 0
    out, _ = capsys.readouterr()
    assert "undefined (0 / 0: the Jacobian is zero)" in out and "inf" not in out
    assert "no value above zero or the resolution to bin" in out and "exactly zero: 4" in out
    # a singular Jacobian with a non-zero max stays infinitely conditioned
    narrow = jacobian_spectrum(Config(depth=3, width=2, in_features=4, out_features=4, device="cpu"))
    assert narrow["max"] > 0 and narrow["numerical_rank"] <= 2 and narrow["condition_number"] == math.inf


def test_bad_inputs_are_refused():
    with pytest.raises(SpecError, match="inputs"):
        jacobian_spectrum(linear(2, 4), inputs=0)
    with pytest.raises(SpecError, match="bins"):
        jacobian_spectrum(linear(2, 4), bins=0)


def test_jacobian_json(capsys):
    assert main(["jacobian", "--depth", "6", "--width", "16", "--in-features", "16", "--out-features", "16",
                 "--activation", "identity", "--no-bias", "--init", "orthogonal", "--device", "cpu", "--json"]) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert {"singular_values", "max", "min", "condition_number", "histogram"} <= set(doc)
    assert doc["max"] == pytest.approx(1, abs=1e-5) and doc["min"] == pytest.approx(1, abs=1e-5)


def test_jacobian_text_and_refusal(capsys):
    assert main(["jacobian", "--depth", "3", "--width", "8", "--in-features", "4", "--out-features", "4",
                 "--device", "cpu", "--bins", "5"]) == 0
    out, _ = capsys.readouterr()
    assert "condition number" in out and out.count("#") > 0 and "log10(singular value)" in out
    assert main(["jacobian", "--inputs", "many"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "inputs" in err


def test_several_inputs_say_the_extremes_are_of_the_mean_spectrum(capsys):
    """The histogram pools every input's values, max and min are the averaged spectrum's: with one output each
    input has one value, four values in the bins and max == min beside them read as a contradiction unsaid."""
    from initlab.tui.widgets.jacobian_chart import summary_line

    assert main(["jacobian", "--preset", "sigmoid-deep-train", "--inputs", "4", "--bins", "6", "--device", "cpu"]) == 0
    out, _ = capsys.readouterr()
    assert "averaged over the 4 inputs" in out
    assert main(["jacobian", "--preset", "sigmoid-deep-train", "--device", "cpu"]) == 0
    assert "averaged" not in capsys.readouterr()[0]
    res = jacobian_spectrum(Config(depth=3, width=8, in_features=4, out_features=1, device="cpu"), inputs=4)
    assert res["max"] == res["min"] and sum(res["histogram"]["counts"]) == 4
    assert "(mean spectrum of 4 inputs" in summary_line(res)


def test_a_zero_jacobian_has_no_bar_only_its_zeros():
    res = jacobian_spectrum(Config(depth=3, width=8, in_features=4, out_features=4, init="zeros", device="cpu"))
    assert res["singular_values"] == [0.0] * 4 and res["histogram"]["zeros"] == 4
    assert sum(res["histogram"]["counts"]) == 0


def test_jacobian_job_on_a_session_gives_the_same_spectrum():
    from initlab.engine.events import Finished
    from initlab.engine.jobs import JacobianJob
    from initlab.engine.session import Session

    events = []
    session = Session(events.append)
    cfg = linear(4, 8, init="normal", std=0.4)
    session.start(JacobianJob(cfg, inputs=2, bins=5))
    assert session.wait(60)
    res = [e for e in events if isinstance(e, Finished)][0].result
    assert res["singular_values"] == jacobian_spectrum(cfg, 2, 5)["singular_values"]


def test_jacobian_text_names_a_min_below_the_resolution(capsys):
    assert main(["jacobian", "--depth", "50", "--width", "32", "--in-features", "32", "--out-features", "32",
                 "--activation", "identity", "--no-bias", "--init", "normal", "--std", str(1 / math.sqrt(32)),
                 "--device", "cpu"]) == 0
    out, _ = capsys.readouterr()
    assert "numerically singular" in out and "rounding noise" in out
    assert "below the resolution (numerically zero):" in out


def test_exact_zero_singular_values_are_singular_not_unresolved(capsys):
    # a sparse one-layer linear net: whole columns of W are zero, so its spectrum holds exact zeros
    cfg = Config(depth=1, width=8, in_features=8, out_features=8, init="sparse", sparsity=0.8, activation="identity",
                 bias=False, device="cpu", seed=0)
    res = jacobian_spectrum(cfg)
    torch.manual_seed(cfg.seed)
    w = build_mlp(cfg, torch.device("cpu")).blocks[0].linear.weight.detach().double()
    zeros = int((torch.linalg.svdvals(w) == 0).sum())
    assert zeros > 0 and res["histogram"]["zeros"] == zeros and res["min"] == 0
    assert math.isinf(res["condition_number"]) and res["condition_at_least"] is None
    assert res["numerical_rank"] == int(torch.linalg.matrix_rank(w))
    from initlab.tui.widgets.jacobian_chart import extremes

    assert f"min 0 ({zeros} of 8 exactly zero)" in extremes(res) and "condition number inf (singular)" in extremes(res)
    assert main(["jacobian", "--depth", "1", "--width", "8", "--in-features", "8", "--out-features", "8", "--init",
                 "sparse", "--sparsity", "0.8", "--activation", "identity", "--no-bias", "--device", "cpu"]) == 0
    out, _ = capsys.readouterr()
    assert f"0 ({zeros} of 8 values exactly zero)" in out and "inf (singular)" in out and "rounding noise" not in out


def test_histogram_labels_differ_however_narrow_the_spread():
    """An orthogonal linear net's values spread over 1e-7 decades: each bin's edges are still told apart."""
    from initlab.tui.commands.jacobian import histogram_text

    res = jacobian_spectrum(Config(depth=2, width=4, in_features=4, out_features=4, init="orthogonal",
                                   activation="identity", device="cpu"), bins=3)
    labels = [line.split(")")[0] for line in histogram_text(res["histogram"]).splitlines()[1:]]
    assert len(labels) == 3 and len(set(labels)) == 3, labels
    edges = [float(x) for lab in labels for x in lab.strip("[ ").split(",")]
    assert edges[1:-1:2] == edges[2::2]            # a bin ends where the next begins
    assert max(abs(a - b) for a, b in zip(edges[::2], res["histogram"]["edges"])) < 1e-8


@pytest.mark.parametrize("argv, line", [
    (["jacobian", "--inputs", "0"], "inputs: '0' is not allowed; an integer in [1, 256]"),
    (["jacobian", "--bins", "0"], "bins: '0' is not allowed; an integer in [1, 1000]"),
    (["widths", "--steps", "5000"], "steps: '5000' is not allowed; an integer in [0, 1000]"),
])
def test_a_commands_own_number_out_of_range_is_echoed_as_typed(capsys, argv, line):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"initlab: error: {line}\n"


@pytest.mark.parametrize("cmd, text, line", [
    ("jacobian", "bins = 2.5", "bins: 2.5 is not allowed; an integer (in the config file)"),
    ("jacobian", "inputs = 0", "inputs: 0 is not allowed; an integer in [1, 256]"),
    ("widths", "steps = 1.5", "steps: 1.5 is not allowed; an integer (in the config file)"),
])
def test_a_commands_own_setting_refused_in_a_config_file_is_echoed_as_the_file_has_it(capsys, tmp_path, cmd, text,
                                                                                        line):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    assert main([cmd, "--config", str(path)]) == 2       # not the flag's default, which the user never typed
    assert capsys.readouterr().err == f"initlab: error: {line}\n"


@pytest.mark.parametrize("cfg", [linear(4, 8, init="orthogonal"), linear(3, 6, init="constant", value=0.0)])
def test_the_spectrum_reaches_the_host_in_one_transfer(sync_counter, cfg):
    # with values to histogram and with none (all zero): no count or check waits for the device on its own
    jacobian_spectrum(cfg, inputs=2)
    assert dict(sync_counter) == {"tolist": 1}


@pytest.mark.parametrize("argv, field", [
    (["--in-features", "4000", "--out-features", "8000"], "out_features: '8000'"),
    (["--in-features", "8000", "--out-features", "4000"], "in_features: '8000'"),
    (["--in-features", "1000", "--out-features", "1000", "--inputs", "256"], "inputs: '256'"),
    (["--width", "100000", "--in-features", "100", "--out-features", "100"], "width: '100000'"),
])
def test_a_jacobian_too_big_for_memory_names_what_can_be_lowered(capsys, monkeypatch, argv, field):
    from initlab.engine import device as devices

    # 1 GiB free, whatever the machine: J of 8000 x 4000 alone needs 2 GiB with its cotangents, one input of
    # 1000 x 1000 about 40 MB (256 of them 8 GiB); 3 layers of 100000 outweigh J's sides
    monkeypatch.setattr(devices, "free_bytes", lambda device: 1 << 30)
    assert main(["jacobian", "--depth", "3", "--width", "8", "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"initlab: error: {field} is not allowed; ") and err.count("\n") == 1 and "GiB" in err


def test_dropout_and_batch_norm_flags_say_what_eval_mode_makes_of_them(capsys):
    base = ["jacobian", "--depth", "3", "--width", "8", "--in-features", "4", "--out-features", "2", "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)["singular_values"]
    assert main([*base, "--dropout", "0.9"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["singular_values"] == plain          # dropout is off: the same spectrum
    assert err == "initlab: note: the Jacobian is taken in eval mode, dropout off; --dropout 0.9 was not used\n"
    assert main([*base, "--norm", "batch"]) == 0
    assert "batch norm uses its running statistics" in capsys.readouterr().err


def test_an_overflowing_jacobian_is_said_in_one_line_not_as_torchs_svd_failure(capsys):
    from initlab.engine.jacobian import NonFiniteJacobian

    cfg = Config(depth=110, width=2, in_features=2, out_features=2, init="scaled_normal", sigma_w=1000.0,
                 activation="identity", device="cpu")
    with pytest.raises(NonFiniteJacobian, match="the Jacobian is not finite"):
        jacobian_spectrum(cfg, inputs=1)
    assert main(["jacobian", "--depth", "110", "--width", "2", "--in-features", "2", "--out-features", "2",
                 "--init", "scaled_normal", "--sigma-w", "1000", "--activation", "identity", "--device", "cpu",
                 "--json"]) == 1     # the net blew up, as a non-finite training's status
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("initlab: error: the Jacobian is not finite: the net's derivatives overflow "
                                        "float64") and err.count("\n") == 1 and "LinAlg" not in err
    assert err.endswith("(an exploding net: lower sigma_w or the depth)\n")
    # the setting named is the one that scales this init's weights
    with pytest.raises(NonFiniteJacobian, match=r"lower std or the depth\)$"):
        jacobian_spectrum(cfg.replace(init="normal", std=1000.0), inputs=1)
