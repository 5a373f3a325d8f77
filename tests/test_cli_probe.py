"""`initlab probe`, `gain` and `presets`: table and JSON output, the documented JSON names, one-line refusals."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from initlab.engine.spec import FIELDS
from initlab.tui.cli import main

SMALL = ["--depth", "3", "--width", "8", "--in-features", "6", "--out-features", "2", "--batch", "16",
         "--device", "cpu"]
LAYER_KEYS = {"index", "name", "fan_in", "fan_out", "z_mean", "z_std", "a_mean", "a_std", "a_min", "a_max",
              "saturated_frac", "dead_frac", "nonfinite_frac", "grad_z_std", "grad_w_std", "grad_w_absmean",
              "grad_w_norm", "w_std", "grad_to_weight", "fwd_var_ratio", "bwd_var_ratio", "distinct_units"}
VERDICT_KEYS = {"kind", "from_layer", "note", "first_last_grad_ratio", "first_last_gradz_ratio"}


def strict_json(text: str):
    """Parse exactly one JSON value; NaN and Infinity are not JSON and are refused."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert out.endswith("\n") and out.count("\n") == 1, "stdout holds one JSON object and nothing else"
    return strict_json(out)


# probe -----------------------------------------------------------------------------------------------------------

def test_probe_json_has_the_documented_names(capsys):
    doc = run_json(capsys, "probe", *SMALL, "--activation", "relu", "--init", "kaiming_normal", "--json")
    assert {"config", "device", "torch", "layers", "first_nonfinite_layer", "verdict", "loss"} <= set(doc)
    assert set(doc["config"]) == set(FIELDS)
    assert doc["config"]["activation"] == "relu" and doc["config"]["depth"] == 3
    assert doc["device"] == "cpu" and doc["torch"] == torch.__version__
    assert len(doc["layers"]) == 3
    for i, layer in enumerate(doc["layers"]):
        assert LAYER_KEYS <= set(layer)
        assert layer["index"] == i and isinstance(layer["name"], str)
        assert all(isinstance(layer[k], (int, float)) for k in LAYER_KEYS - {"name"})
        assert isinstance(layer["distinct_units"], int)
    assert [(d["fan_in"], d["fan_out"]) for d in doc["layers"]] == [(6, 8), (8, 8), (8, 2)]
    assert set(doc["verdict"]) == VERDICT_KEYS
    assert doc["verdict"]["kind"] in ("stable", "vanishing", "exploding", "nonfinite")
    assert doc["first_nonfinite_layer"] is None
    assert doc["loss"] is None            # the default backward signal is not a loss
    # the values are the engine's probe of the settings the JSON names (whose numbers have their own direct tests)
    from initlab.engine.probe import run_probe
    from initlab.engine.spec import from_mapping

    direct = run_probe(from_mapping(doc["config"]), distributions=False).to_json()["layers"]
    for mine, theirs in zip(doc["layers"], direct):
        assert {k: mine[k] for k in LAYER_KEYS} == {k: theirs[k] for k in LAYER_KEYS}


def test_probe_json_mse_reports_the_loss(capsys):
    doc = run_json(capsys, "probe", *SMALL, "--loss", "mse", "--target", "0.5", "--json")
    assert isinstance(doc["loss"], float) and doc["loss"] > 0
    assert doc["config"]["loss"] == "mse" and doc["config"]["target"] == 0.5


def test_probe_json_writes_non_finite_numbers_as_null(capsys):
    doc = run_json(capsys, "probe", "--depth", "12", "--width", "8", "--in-features", "8", "--out-features", "8",
                   "--activation", "identity", "--init", "normal", "--std", "1000000", "--no-bias",
                   "--device", "cpu", "--json")
    k = doc["first_nonfinite_layer"]
    assert isinstance(k, int) and 0 < k < 12
    assert doc["layers"][-1]["a_std"] is None and doc["layers"][-1]["nonfinite_frac"] == 1.0
    assert doc["verdict"]["kind"] == "nonfinite"
    assert doc["verdict"]["first_last_grad_ratio"] is None


def test_probe_preset_json_reproduces_the_figure(capsys):
    # the figure is CPU's random stream; on a CUDA machine auto would draw other numbers from the same seed
    doc = run_json(capsys, "probe", "--preset", "sigmoid-vanishing", "--device", "cpu", "--json")
    assert f"{doc['layers'][0]['grad_w_absmean']:.5g}" == "1.4004e-12"
    assert f"{doc['layers'][-1]['grad_w_absmean']:.5g}" == "0.012726"
    assert doc["config"]["activation"] == "sigmoid" and doc["config"]["last_activation"] is True


def test_flags_win_over_the_preset_and_the_config_file(capsys, tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text('[model]\ndepth = 4\nwidth = 8\nactivation = "relu"\n')
    doc = run_json(capsys, "probe", "--preset", "relu-xavier", "--config", str(toml), "--width", "5",
                   "--device", "cpu", "--json")
    cfg = doc["config"]
    assert (cfg["depth"], cfg["width"], cfg["activation"], cfg["init"], cfg["gain"]) == (4, 5, "relu",
                                                                                         "xavier_normal", 1.0)


def test_save_config_round_trips(capsys, tmp_path):
    saved = tmp_path / "saved.toml"
    first = run_json(capsys, "probe", *SMALL, "--init", "orthogonal", "--gain", "1.5", "--save-config", str(saved),
                     "--json")
    assert saved.is_file()
    again = run_json(capsys, "probe", "--config", str(saved), "--json")
    assert again["config"] == first["config"]
    assert again["layers"] == first["layers"]


def test_probe_table(capsys):
    code, out, err = run_cli(capsys, "probe", *SMALL, "--activation", "tanh")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["layer", "in", "out"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["0", "1", "2"]
    assert any(ln.startswith("verdict: ") for ln in lines)
    assert "Traceback" not in err


def test_probe_random_matrix_json(capsys):
    doc = run_json(capsys, "probe", "--preset", "random-matrix", "--json")
    assert len(doc["norms"]) == 100 and max(doc["norms"]) >= 1e20
    assert doc["draws"] == 1000 and doc["max_entry_p10"] < doc["max_entry_median"] < doc["max_entry_p90"]
    assert 0 < doc["max_entry"] <= doc["norms"][-1]


# gain and presets ------------------------------------------------------------------------------------------------

def test_gain_json_shape(capsys):
    doc = run_json(capsys, "gain", "--json")
    assert list(doc) == ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
                         "softplus"]
    for name, row in doc.items():
        assert set(row) == {"max_derivative", "torch_gain", "empirical", "rms_gain"}
        assert row["max_derivative"] > 0 and row["empirical"] > 0 and row["rms_gain"] > 0
    assert doc["tanh"]["max_derivative"] == pytest.approx(1.0)
    assert doc["tanh"]["torch_gain"] == pytest.approx(5 / 3)
    assert 1.59 <= doc["tanh"]["empirical"] <= 1.60
    assert doc["sigmoid"]["max_derivative"] == pytest.approx(0.25)
    assert doc["gelu"]["torch_gain"] is None and doc["elu"]["torch_gain"] is None


def test_gain_table(capsys):
    code, out, _ = run_cli(capsys, "gain")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["activation", "max", "f'", "torch", "gain", "std", "ratio", "rms", "ratio"]
    assert len(lines) == 2 + 10 + 1 and lines[-1].startswith("std ratio: std(x) / std(f(x))")     # what each is


def test_presets_json(capsys):
    doc = run_json(capsys, "presets", "--json")
    for name in ("sigmoid-vanishing", "linear-explode", "linear-scaled", "tanh-naive", "tanh-xavier",
                 "relu-kaiming", "relu-xavier", "random-matrix"):
        assert doc[name]["kind"] == "probe" and doc[name]["summary"]
    assert all(set(v) == {"kind", "summary"} for v in doc.values())


def test_presets_lines(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    names = [ln.split()[0] for ln in out.strip().splitlines() if ln.strip()]
    assert {"linear-explode", "random-matrix", "zero-init-symmetry", "edge-of-chaos-tanh"} <= set(names)


# refusals --------------------------------------------------------------------------------------------------------

def refused(capsys, *argv: str) -> str:
    try:
        code = main(list(argv))
    except SystemExit as e:             # argparse's own refusals leave through SystemExit
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, words", [
    (["--activation", "swish"], ["activation", "swish", "relu", "tanh"]),
    (["--init", "he"], ["init", "he", "xavier_uniform", "lsuv"]),
    (["--depth", "0"], ["depth", "0", "[1, 10000]"]),
    (["--depth", "ten"], ["depth", "ten", "integer"]),
    (["--width", "-4"], ["width", "-4", "[1, "]),
    (["--std", "nan"], ["std", "nan", "[0, "]),
    (["--gain", "0"], ["gain", "0", "(0, "]),
    (["--width", "1000000", "--depth", "10000"], ["width", "1000000", "fits", "GiB"]),
    (["--preset", "tanh-xavir"], ["preset", "tanh-xavir", "tanh-xavier"]),
    (["--preset", "zero-init-symmetry"], ["preset", "zero-init-symmetry", "probe preset",
                                          "`initlab train --preset zero-init-symmetry`"]),
    (["--preset", "nope"], ["preset", "nope", "a probe preset: sigmoid-vanishing", "random-matrix"]),
    (["--preset", "edge-of-chaos-tanh"], ["`initlab sweep --preset edge-of-chaos-tanh`"]),
    (["--config", "/no/such/dir/exp.toml"], ["config", "/no/such/dir/exp.toml", "no such file"]),
    (["--devise", "cpu"], ["--devise"]),
    (["--norm", "batch", "--batch", "1"], ["batch", "1", "at least 2"]),
])
def test_probe_refuses_bad_input_in_one_line(capsys, argv, words):
    err = refused(capsys, "probe", *argv, "--json")
    assert err.startswith("initlab: error: ")
    for w in words:
        assert w in err, (w, err)


def test_a_whole_number_written_as_a_float_in_a_config_is_taken_or_refused_as_written(capsys, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("depth = 3e0\nwidth = 8\nseed = 1e30\n")
    assert main(["probe", "--config", str(path), "--device", "cpu"]) == 2
    assert capsys.readouterr().err == "initlab: error: seed: 1e+30 is not allowed; an integer in [0, " \
        "9223372036854775807], written as an integer (a float past 2**53 names none)\n"
    path.write_text("depth = 3e0\nwidth = 8\n")
    assert main(["probe", "--config", str(path), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["depth"] == 3


def test_probe_refuses_a_config_that_is_a_directory_or_not_toml(capsys, tmp_path):
    err = refused(capsys, "probe", "--config", str(tmp_path))
    assert "config" in err and str(tmp_path) in err
    bad = tmp_path / "bad.toml"
    bad.write_text("depth = = 2\n")
    assert "valid TOML" in refused(capsys, "probe", "--config", str(bad))
    bad.write_text("[model]\nwidht = 8\n")
    assert "widht" in refused(capsys, "probe", "--config", str(bad))


def test_a_bad_value_in_a_config_is_refused_even_where_a_flag_overrides_it(capsys, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('depth = "abc"\n')
    assert refused(capsys, "probe", "--config", str(path), "--depth", "3", "--width", "4") == \
        "initlab: error: depth: 'abc' is not allowed; an integer in [1, 10000] (the --config file's value; --depth " \
        "gives another)\n"


def test_a_config_naming_a_sweep_preset_gives_other_commands_its_net(capsys, tmp_path):
    from initlab.engine.sweep import SWEEP_PRESETS

    path = tmp_path / "c.toml"
    path.write_text('preset = "edge-of-chaos-tanh"\nwidth = 8\nin_features = 8\nout_features = 8\n')
    assert main(["probe", "--config", str(path), "--device", "cpu", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["config"]
    net = SWEEP_PRESETS["edge-of-chaos-tanh"].config
    assert (got["depth"], got["init"], got["activation"]) == (net.depth, net.init, net.activation)    # its net
    assert got["width"] == 8        # under the file's own settings


def test_a_config_files_random_matrix_preset_is_named_as_the_files(capsys, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "random-matrix"\n')
    err = refused(capsys, "probe", "--config", str(path), "--device", "cpu")
    assert "not with preset random-matrix (the --config file's preset key)" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_probe_refuses_cuda_without_cuda(capsys):
    err = refused(capsys, "probe", *SMALL[:-2], "--device", "cuda")
    assert "device" in err and "'cuda'" in err and "cpu" in err


def test_unknown_subcommand_is_one_line(capsys):
    err = refused(capsys, "probbe")
    assert "probbe" in err


# the installed console script ------------------------------------------------------------------------------------

def console_script() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "initlab")
    if not os.path.exists(path):
        pytest.skip("the initlab console script is not installed beside this interpreter")
    return path


def test_console_script_probe_json_in_a_real_process():
    proc = subprocess.run([console_script(), "probe", *SMALL, "--json"], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    doc = strict_json(proc.stdout)
    assert len(doc["layers"]) == 3 and LAYER_KEYS <= set(doc["layers"][0])
    assert all(math.isfinite(d["a_std"]) for d in doc["layers"])


def test_console_script_refusal_in_a_real_process():
    proc = subprocess.run([console_script(), "probe", "--depth", "0"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "depth" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [
    ["probe", *SMALL],
    ["probe", "--preset", "random-matrix"],
    ["train", "--depth", "2", "--width", "4", "--n-rows", "40", "--epochs", "1", "--device", "cpu"],
    ["gain"],
    ["presets"],
    ["theory", "--activation", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.1"],
    ["jacobian", "--depth", "3", "--width", "8", "--in-features", "4", "--out-features", "4", "--device", "cpu"],
    ["widths", "--widths", "8,16", "--depth", "3", "--steps", "2", "--device", "cpu"],
    ["sweep", "--vary", "depth=2,3", *SMALL],
])
def test_every_command_writes_one_json_object_when_stdout_is_not_a_terminal(capsys, piped, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert out.endswith("\n") and out.count("\n") == 1, "stdout holds one JSON object and nothing else"
    assert isinstance(strict_json(out), (dict, list))
    assert "\r[" not in err                     # no progress bar either


@pytest.mark.parametrize("argv, field", [
    (["--depth", "0"], "depth"), (["--activation", "bogus"], "activation"), (["--seed", "abc"], "seed"),
    (["--seed", "99999999999999999999999"], "seed"),
])
def test_random_matrix_takes_a_seed_and_refuses_what_it_would_ignore(capsys, argv, field):
    code, out, err = run_cli(capsys, "probe", "--preset", "random-matrix", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"initlab: error: {field}: ")


def test_random_matrix_reads_its_seed(capsys):
    a = run_json(capsys, "probe", "--preset", "random-matrix", "--seed", "3", "--json")
    b = run_json(capsys, "probe", "--preset", "random-matrix", "--json")
    assert a["seed"] == 3 and b["seed"] == 0 and a["norms"] != b["norms"]


def test_help_names_what_each_flag_allows_and_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())        # argparse wraps the lines
    assert "--activation ACTIVATION activation after every Linear but the last: one of identity, sigmoid" in text
    assert "relu" in text and "default tanh" in text
    assert "--depth DEPTH number of Linear layers: an integer in [1, 10000]; default 20" in text
    assert "--optimizer OPTIMIZER optimiser: one of sgd, adam, adamw, rmsprop; default sgd" in text
    assert "--bias, --no-bias Linear layers have a bias (default on)" in text
    assert "or empty for auto; default auto" in text                                  # --gain


@pytest.mark.parametrize("argv, line", [
    (["probe", "--bias", "yes"], "bias: 'yes' is not allowed; --bias takes no value (a switch: --bias or --no-bias)"),
    (["train", "--json", "true"], "json: 'true' is not allowed; --json takes no value (a switch: --json alone)"),
    (["probe", "--depth", "3", "extra"], "unrecognized arguments: extra"),
    (["probe", "--no-bias", "--dpeth", "5"], "unrecognized arguments: --dpeth 5"),     # a mistyped flag of its own
    (["probe", "--seed", "3", "--bias", "3"], "bias: '3' is not allowed; --bias takes no value (a switch: --bias or "
                                              "--no-bias)"),
])
def test_a_value_after_a_switch_is_named_with_the_switch(capsys, argv, line):
    with pytest.raises(SystemExit) as e:
        main(argv)
    _out, err = capsys.readouterr()
    assert e.value.code == 2 and err == f"initlab: error: {line}\n"


@pytest.mark.parametrize("argv, head", [
    (["probe", "--batch", "1048576", "--in-features", "1048576", "--depth", "1", "--out-features", "1"],
     "batch: '1048576' is not allowed"),
    (["probe", "--in-features", "1048576", "--depth", "1", "--out-features", "1", "--batch", "1024"],
     "in_features: '1048576' is not allowed"),
    (["widths", "--widths", "8,1048576", "--depth", "3"], "widths: '8,1048576' is not allowed"),
    (["jacobian", "--width", "1048576", "--depth", "3", "--in-features", "2", "--out-features", "2"],
     "width: '1048576' is not allowed"),
])
def test_a_net_too_big_for_memory_names_the_setting_that_makes_it_so(capsys, argv, head):
    """Not the width of a one-layer net (it has none), not batch for jacobian (it takes none), and the widths flag as
    widths calls it."""
    assert main([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("initlab: error: " + head) and "fits in memory" in err and err.count("\n") == 1, err
    if argv[0] == "jacobian":
        assert "batch" not in err.split("lower")[1]


def test_jacobian_is_not_refused_for_a_batch_it_does_not_use(capsys, tmp_path):
    """A config saved by `probe --batch N` holds a batch; the Jacobian's estimate leaves it out."""
    path = tmp_path / "b.toml"
    path.write_text("batch = 1048576\n")
    assert main(["jacobian", "--config", str(path), "--depth", "3", "--width", "16", "--in-features", "4",
                 "--out-features", "4", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [4, 4]


def test_a_training_too_big_for_memory_names_what_the_user_can_lower(tmp_path, monkeypatch):
    """A training's in and out features follow its data: the refusal names width, depth or batch."""
    import numpy as np

    from initlab.engine import device as devices
    from initlab.engine.spec import Config, SpecError
    from initlab.engine.train import Trainer

    path = tmp_path / "wide.npz"
    np.savez(path, X=np.zeros((40, 3000), dtype=np.float32), y=np.zeros(40, dtype=np.float32))
    monkeypatch.setattr(devices, "free_bytes", lambda device: 1 << 20)
    with pytest.raises(SpecError) as e:
        Trainer(Config(data=str(path), depth=3, width=64, batch=16, epochs=1, device="cpu"))
    assert e.value.field in ("width", "depth", "batch") and "in_features" not in str(e.value).split("lower")[1]


def test_a_training_whose_data_alone_is_too_big_names_the_data(tmp_path, monkeypatch):
    """At width, depth and batch 1 a one-layer net of 3000 in and 2000 out still would not fit: lowering them
    would not help, so the refusal names the data."""
    import numpy as np

    from initlab.engine import device as devices
    from initlab.engine.spec import Config, SpecError
    from initlab.engine.train import Trainer

    path = tmp_path / "wide.npz"
    np.savez(path, X=np.zeros((20, 3000), dtype=np.float32), y=np.zeros((20, 2000), dtype=np.float32))
    monkeypatch.setattr(devices, "free_bytes", lambda device: 20 << 20)
    with pytest.raises(SpecError) as e:
        Trainer(Config(data=str(path), depth=1, batch=8, epochs=1, device="cpu"))
    assert e.value.field == "data" and "its in and out features are too many" in str(e.value)


def test_ctrl_c_while_json_is_written_comes_after_the_whole_object(capsys, monkeypatch):
    import signal

    from initlab.tui.commands import common

    real = sys.stdout.write
    seen = []

    def write(text):        # ctrl-c arrives half-way through the object
        real(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGINT)
        seen.append("written on")
        return real(text[len(text) // 2:])

    monkeypatch.setattr(sys.stdout, "write", write)
    with pytest.raises(KeyboardInterrupt):
        common.print_json({"layers": [{"a_std": 1.0}] * 50})
    monkeypatch.undo()
    out, _ = capsys.readouterr()
    assert seen == ["written on"] and json.loads(out)["layers"][-1] == {"a_std": 1.0}


def test_ctrl_c_is_kept_when_the_handler_before_was_not_set_from_python(monkeypatch):
    import signal

    from initlab.tui.commands import common

    real = signal.signal
    calls = []

    def fake(sig, handler):      # the first call reports a handler Python did not set (None), as C code leaves it
        previous = real(sig, handler)
        calls.append(handler)
        return None if len(calls) == 1 else previous

    monkeypatch.setattr(signal, "signal", fake)
    with pytest.raises(KeyboardInterrupt):
        with common.sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.undo()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    assert calls[-1] == signal.SIG_DFL


def test_flags_beside_a_preset_are_named_as_what_changed_it(capsys):
    assert main(["probe", "--preset", "tanh-naive", "--depth", "3", "--width", "8", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["config"]["depth"] == 3
    assert err == ("initlab: note: preset tanh-naive with --depth 3, --width 8 from the flags: the preset's other "
                   "settings are kept\n")
    assert main(["probe", "--preset", "tanh-naive", "--device", "cpu", "--json"]) == 0
    assert capsys.readouterr().err == ""        # where it runs is not what it is


def test_a_residual_flag_on_a_net_with_no_square_layer_is_noted(capsys):
    code, _out, err = run_cli(capsys, "probe", "--depth", "2", "--width", "4", "--in-features", "3",
                              "--out-features", "2", "--batch", "2", "--residual", "--json")
    assert code == 0
    assert ("initlab: note: a residual add needs a layer whose fan_in equals its fan_out, and this net has none; "
            "--residual was not used") in err
    code, _out, err = run_cli(capsys, "probe", "--depth", "3", "--width", "4", "--in-features", "3",
                              "--out-features", "2", "--batch", "2", "--residual", "--json")
    assert code == 0 and "residual" not in err          # its hidden layer is 4 -> 4
