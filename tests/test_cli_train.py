"""`initlab train` and the data it reads: JSON, exit codes, atomic history, TOML configs, file-data errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from initlab.engine import data as datasets
from initlab.engine.spec import Config, SpecError
from initlab.tui.cli import main

FAST = ["--depth", "3", "--width", "8", "--epochs", "2", "--n-rows", "100", "--device", "cpu"]


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_is_one_object_and_exit_0(capsys):
    code, out, err = run(capsys, "train", *FAST, "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["stopped"] == "finished" and len(obj["epochs"]) == 2


def test_nonfinite_run_exits_1_with_the_event_in_json(capsys):
    code, out, _ = run(capsys, "train", *FAST, "--lr", "1e6", "--json")
    assert code == 1
    obj = json.loads(out)
    assert obj["stopped"] == "nonfinite" and obj["nonfinite"]["tensor"] in ("activation", "gradient", "weight", "loss")
    # final.layers under the end state's names whatever the stop: the last sampled step's, its units not counted
    finished = json.loads(run(capsys, "train", *FAST, "--json")[1])
    assert [set(r) for r in obj["final"]["layers"]] == [set(r) for r in finished["final"]["layers"]]
    assert all(r["distinct_units"] is None for r in obj["final"]["layers"])
    assert obj["final"]["step"] == obj["steps"][-1]["step"] and finished["final"]["step"] == finished["steps_done"]
    for r, s in zip(obj["final"]["layers"], obj["steps"][-1]["layers"]):
        assert r["a_std"] == s["a_std"] and r["grad_w_norm"] == s["grad_w_norm"]


def test_out_writes_the_whole_history_atomically(tmp_path, capsys):
    target = tmp_path / "run.json"
    target.write_text("previous")
    code, out, err = run(capsys, "train", *FAST, "--out", str(target), "--json")
    assert code == 0 and f"wrote {target}\n" in err        # named as --csv, --report and --save-config name theirs
    assert json.loads(target.read_text())["epochs"] == json.loads(out)["epochs"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]         # no temporary file left


def test_config_round_trip_and_flags_win(tmp_path, capsys):
    cfg_file = tmp_path / "exp.toml"
    code, _, _ = run(capsys, "train", *FAST, "--activation", "relu", "--lr", "0.01", "--save-config", str(cfg_file),
                     "--json")
    assert code == 0 and 'activation = "relu"' in cfg_file.read_text()
    code, out, _ = run(capsys, "train", "--config", str(cfg_file), "--lr", "0.02", "--json")
    conf = json.loads(out)["config"]
    assert conf["activation"] == "relu" and conf["lr"] == 0.02 and conf["depth"] == 3


def test_preset_with_several_seeds_reports_every_run(capsys):
    code, out, _ = run(capsys, "train", "--preset", "seed-sensitivity", "--epochs", "2", "--json")
    obj = json.loads(out)
    assert code == 0 and [r["config"]["seed"] for r in obj["runs"]] == [420, 29]


@pytest.mark.parametrize("args, field", [
    (["--optimizer", "lbfgs"], "optimizer"), (["--lr", "-1"], "lr"), (["--epochs", "0"], "epochs"),
    (["--schedule", "warm"], "schedule"), (["--data", "nothere.npz"], "data"), (["--preset", "linear-explode"], "preset"),
    (["--preset", "random-matrix"], "`initlab probe --preset random-matrix`"),
    (["--config", "missing.toml"], "config"), (["--stats-every", "x"], "stats_every"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, field):
    code, out, err = run(capsys, "train", *FAST, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and field in err and "Traceback" not in err


def test_a_real_process_keeps_its_exit_codes(tmp_path):
    exe = [sys.executable, "-m", "initlab.tui.cli"]
    bad = subprocess.run(exe + ["train", "--activation", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    nf = subprocess.run(exe + ["train", *FAST, "--lr", "1e6"], capture_output=True, text=True, timeout=120)
    assert nf.returncode == 1 and json.loads(nf.stdout)["stopped"] == "nonfinite"   # not a terminal: JSON


@pytest.mark.parametrize("flag, where", [("--out", "nofolder/run.json"), ("--out", "."), ("--out", ""),
                                         ("--save-config", "nofolder/exp.toml"), ("--save-config", "")])
def test_output_paths_are_refused_before_the_run(capsys, tmp_path, flag, where):
    path = where if where in ("", ".") else str(tmp_path / where)
    code, out, err = run(capsys, "train", *FAST, flag, path)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"initlab: error: {flag[2:].replace('-', '_')}: ")


@pytest.mark.parametrize("argv", [
    ["train", *FAST, "--nesterov"],                                      # nesterov without momentum
    ["train", *FAST, "--data", "missing.npz"],
    ["train", *FAST, "--depth", "0"],
    ["widths", "--widths", "8"],
    ["jacobian", "--inputs", "0"],
    ["sweep", "--vary", "depth=2,3", "--metric", "bogus"],
    ["probe", "--preset", "random-matrix"],
    ["sweep", "--vary", "norm=none,batch", "--batch", "1", "--depth", "2", "--width", "4"],     # a point refused
    ["probe", "--model", "nope.py:make"],
])
def test_a_refused_run_leaves_the_save_config_file_as_it_was(capsys, tmp_path, argv):
    keep = tmp_path / "keep.toml"
    keep.write_text("precious")
    code, out, err = run(capsys, *argv, "--save-config", str(keep))
    assert code == 2 and err.count("\n") == 1, err
    assert keep.read_text() == "precious"


def test_nesterov_without_momentum_is_refused_for_a_training_only(capsys, tmp_path):
    code, out, err = run(capsys, "train", *FAST, "--nesterov")
    assert code == 2 and err == "initlab: error: nesterov: 'on' is not allowed; on only with momentum above 0\n"
    conf = tmp_path / "n.toml"
    conf.write_text("nesterov = true\n")
    code, out, err = run(capsys, "probe", "--depth", "2", "--width", "4", "--config", str(conf), "--json")
    assert code == 0, err                   # a probe builds no optimiser


def test_a_config_file_may_name_a_sweep_preset(capsys, tmp_path):
    conf = tmp_path / "s.toml"
    conf.write_text('preset = "edge-of-chaos-tanh"\n')
    code, out, err = run(capsys, "sweep", "--config", str(conf), "--vary", "sigma_w=1.0,1.5", "--vary",
                         "sigma_b=0.0", "--depth", "3", "--width", "8", "--json")
    assert code == 0, err
    assert json.loads(out)["base"]["init"] == "scaled_normal" and json.loads(out)["total"] == 2     # the preset's


def test_negative_values_in_list_and_exponent_form_are_values_not_flags(capsys):
    code, out, err = run(capsys, "train", *FAST, "--poly-w", "-1,2", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["poly_w"] == [-1.0, 2.0]
    code, out, err = run(capsys, "probe", "--depth", "2", "--width", "4", "--init", "constant", "--value", "-1e3",
                         "--json")
    assert code == 0 and json.loads(out)["config"]["value"] == -1000.0
    code, out, err = run(capsys, "probe", "--gain", "-inf")
    assert code == 2 and err.startswith("initlab: error: gain: '-inf' is not allowed")


def test_a_config_files_preset_and_seed_are_honoured(capsys, tmp_path):
    conf = tmp_path / "exp.toml"
    conf.write_text('preset = "seed-sensitivity"\nepochs = 1\n')
    code, out, _ = run(capsys, "train", "--config", str(conf), "--json")
    obj = json.loads(out)
    assert code == 0 and [r["config"]["seed"] for r in obj["runs"]] == [420, 29]
    assert obj["config"]["activation"] == "relu" and obj["config"]["epochs"] == 1     # the preset, then the file
    conf.write_text('preset = "seed-sensitivity"\nepochs = 1\nseed = 7\n')
    code, out, _ = run(capsys, "train", "--config", str(conf), "--json")
    obj = json.loads(out)
    assert code == 0 and "runs" not in obj and obj["config"]["seed"] == 7         # a seed given runs that seed alone
    code, out, _ = run(capsys, "train", "--config", str(conf), "--preset", "zero-init-symmetry", "--json")
    assert json.loads(out)["config"]["init"] == "zeros"                            # the flag's preset wins
    conf.write_text('preset = "no-such"\n')
    code, out, err = run(capsys, "train", "--config", str(conf))
    assert code == 2 and err.startswith("initlab: error: preset: 'no-such' is not allowed")


def test_a_saved_config_with_control_characters_reads_back(capsys, tmp_path):
    odd = tmp_path / 'we"ird\nname\t.npz'
    np.savez(odd, X=np.zeros((10, 2), dtype=np.float32), y=np.zeros(10, dtype=np.float32))
    conf = tmp_path / "exp.toml"
    code, _, err = run(capsys, "train", *FAST, "--data", str(odd), "--save-config", str(conf), "--json")
    assert code == 0, err
    code, out, err = run(capsys, "train", "--config", str(conf), "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["data"] == str(odd)


def test_several_seeds_on_a_terminal_say_which_run_stopped(capsys):
    code, out, _ = run(capsys, "train", "--preset", "seed-sensitivity", "--activation", "identity", "--epochs", "2",
                       "--lr", "0.15")
    stopped = [line for line in out.splitlines() if "stopped: non-finite" in line]
    assert code == 1 and len(stopped) == 1 and stopped[0].startswith("run 2 (seed 29) stopped: non-finite")


def test_ctrl_c_stops_a_training_and_keeps_what_it_learnt(tmp_path):
    import signal
    import time

    out = tmp_path / "run.json"
    ready = tmp_path / "ready.toml"         # written once the run is set up, its ctrl-c handler in place
    proc = subprocess.Popen([sys.executable, "-m", "initlab.tui.cli", "train", *FAST, "--epochs", "100000",
                             "--out", str(out), "--save-config", str(ready)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)         # some steps
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    saved = json.loads(out.read_text())
    assert saved["stopped"] == "cancelled" and 0 < saved["steps_done"] < saved["total_steps"]
    assert json.loads(stdout)["steps_done"] == saved["steps_done"]
    assert "stopping after this step" in stderr


# -- data ---------------------------------------------------------------------------------------------------

def test_poly_data_follows_the_course_generator():
    cfg = Config(n_rows=1000)
    x, y = datasets.poly(cfg, torch.Generator().manual_seed(0))
    assert x.shape == (1000, 2) and y.shape == (1000, 1)
    resid = y[:, 0] - (2 * x[:, 0] ** 2 - x[:, 1] ** 2)
    assert resid.std().item() == pytest.approx(0.01, rel=0.1)
    xb, yb = datasets.poly(cfg.replace(poly_w=(1.0, 3.0), poly_bias=True, deg=1), torch.Generator().manual_seed(0))
    assert xb.shape == (1000, 1) and (yb[:, 0] - (xb[:, 0] + 3.0)).abs().max() < 0.1


def test_poly_weights_that_overflow_the_labels_are_refused_as_bad_input(capsys):
    with pytest.raises(SpecError) as e:
        datasets.poly(Config(poly_w=(1e300, 1.0)), torch.Generator().manual_seed(0))
    assert e.value.field == "poly_w"
    from initlab.tui.cli import main

    assert main(["train", "--poly-w", "1e38,1", "--deg", "4", "--epochs", "1", "--depth", "2", "--width", "4",
                 "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("initlab: error: poly_w: ") and err.count("\n") == 1


def test_split_is_seeded_70_30_and_standardisation_uses_the_train_split():
    ds = datasets.make(Config(n_rows=1000, standardize=True), torch.device("cpu"))
    assert ds.x_train.shape[0] == 700 and ds.x_test.shape[0] == 300
    # population stds, as every std initlab gives
    assert ds.x_train.mean(0).abs().max() < 1e-6 and (ds.x_train.std(0, correction=0) - 1).abs().max() < 1e-6
    again = datasets.make(Config(n_rows=1000, standardize=True), torch.device("cpu"))
    assert torch.equal(ds.x_test, again.x_test)


def test_standardisation_leaves_a_constant_column_at_zero(tmp_path):
    # a float32 mean of 0.1 repeated is off by a rounding: divided by a clamped spread, the column became +-7450
    x = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    x[:, 2] = 0.1
    np.savez(tmp_path / "c.npz", X=x, y=x[:, 0])
    ds = datasets.make(Config(data=str(tmp_path / "c.npz"), standardize=True), torch.device("cpu"))
    assert torch.equal(ds.x_train[:, 2], torch.zeros(42)) and torch.equal(ds.x_test[:, 2], torch.zeros(18))
    assert (ds.x_train[:, :2].std(0, correction=0) - 1).abs().max() < 1e-6


def test_user_files_load(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", X=x, y=x.sum(1))
    torch.save({"X": torch.tensor(x), "y": torch.arange(50) % 3}, tmp_path / "cls.pt")
    reg = datasets.make(Config(data=str(tmp_path / "reg.npz")), torch.device("cpu"))
    cls = datasets.make(Config(data=str(tmp_path / "cls.pt")), torch.device("cpu"))
    assert reg.task == "regression" and reg.in_features == 3 and reg.out_features == 1
    assert cls.task == "classification" and cls.out_features == 3


@pytest.mark.parametrize("make, why", [
    (lambda p: np.savez(p, A=np.zeros((4, 2)), y=np.zeros(4)), "X and y"),
    (lambda p: np.savez(p, X=np.zeros(4), y=np.zeros(4)), "shape"),
    (lambda p: np.savez(p, X=np.zeros((4, 2)), y=np.zeros(5)), "one row per row"),
    (lambda p: np.savez(p, X=np.array([["a", "b"]] * 4), y=np.zeros(4)), "dtype"),
    (lambda p: np.savez(p, X=np.full((4, 2), np.nan), y=np.zeros(4)), "finite"),
    (lambda p: open(p, "wb").write(b"not a zip"), "readable"),
    (lambda p: np.savez(p, X=np.zeros((4, 0)), y=np.zeros(4)), "at least one column"),
    (lambda p: np.savez(p, X=np.zeros((4, 2)), y=np.zeros((4, 0))), "at least one column"),
    (lambda p: np.savez(p, X=np.zeros((4, 2)), y=np.array([0, 1, 2, 10 ** 9])), "values in [0, 1048575]"),
    (lambda p: np.savez(p, X=np.zeros((4, 2), dtype=bool), y=np.zeros(4)), "float or integer dtype, not torch.bool"),
    (lambda p: os.mkdir(p), "not a folder"),
    (lambda p: np.savez(p, X=np.zeros((4, 2)), y=np.zeros(4, dtype=np.int64)), "at least two classes"),
    (lambda p: np.savez(p, X=np.zeros((4, 2)), y=np.zeros((4, 2), dtype=np.int64)), "1-D y"),
])
def test_bad_npz_files_get_one_line(tmp_path, make, why):
    path = str(tmp_path / "d.npz")
    make(path)
    with pytest.raises(SpecError) as e:
        datasets.load_file(path)
    msg = str(e.value)
    assert msg.startswith("data: ") and why in msg and "\n" not in msg


@pytest.mark.parametrize("x_type, y_type", [(np.int16, np.int8), (np.uint8, np.uint16), (np.int64, np.uint32),
                                             (np.uint16, np.uint64)])
def test_every_integer_dtype_loads(tmp_path, x_type, y_type):
    path = str(tmp_path / "small.npz")
    np.savez(path, X=np.arange(12, dtype=x_type).reshape(6, 2), y=np.array([0, 1, 2, 0, 1, 2], dtype=y_type))
    x, y = datasets.load_file(path)
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x[5, 1].item() == 11 and y.tolist()[2] == 2
    np.savez(path, X=np.zeros((3, 2), dtype=x_type), y=np.array([0, 1, 1 << 20], dtype=np.uint32))
    with pytest.raises(SpecError, match=r"values in \[0, 1048575\]"):
        datasets.load_file(path)


def test_a_column_of_integer_labels_loads_as_a_float_column_does(tmp_path):
    path = str(tmp_path / "col.npz")
    np.savez(path, X=np.zeros((6, 2)), y=np.array([[0], [1], [2], [0], [1], [2]]))
    x, y = datasets.load_file(path)
    assert y.shape == (6,) and y.tolist() == [0, 1, 2, 0, 1, 2]


def test_a_folder_named_like_a_data_file_is_called_a_folder(tmp_path, capsys):
    os.mkdir(tmp_path / "d.npz")
    assert main(["train", "--data", str(tmp_path / "d.npz")]) == 2
    assert "a .npz or .pt file, not a folder" in capsys.readouterr().err


def test_batch_norm_on_a_train_split_of_one_row_is_refused(tmp_path, capsys):
    path = str(tmp_path / "two.npz")
    np.savez(path, X=np.zeros((2, 3)), y=np.zeros((2, 1)))
    assert main(["train", "--data", path, "--norm", "batch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("initlab: error: norm: 'batch' is not allowed; none or layer")


def test_blobs_has_as_many_outputs_as_classes_even_when_a_class_is_not_drawn():
    ds = datasets.make(Config(data="blobs", classes=50, n_rows=10), torch.device("cpu"))
    assert ds.out_features == 50 and int(torch.cat([ds.y_train, ds.y_test]).unique().numel()) < 50


def test_sparse_tensors_in_a_pt_file_get_one_line(tmp_path):
    path = str(tmp_path / "sparse.pt")
    torch.save({"X": torch.eye(4).to_sparse(), "y": torch.zeros(4)}, path)
    with pytest.raises(SpecError, match="dense tensors"):
        datasets.load_file(path)


def test_bad_pt_file_gets_one_line(tmp_path):
    path = str(tmp_path / "d.pt")
    torch.save([1, 2, 3], path)
    with pytest.raises(SpecError) as e:
        datasets.load_file(path)
    assert "dict holding tensors X and y" in str(e.value)


def test_written_files_get_an_ordinary_mode(tmp_path):
    from initlab.engine.export import write_text

    umask = os.umask(0)
    os.umask(umask)
    fresh = tmp_path / "fresh.txt"
    write_text(str(fresh), "x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask         # as open() would make it, not mkstemp's 0600
    kept = tmp_path / "kept.txt"
    kept.write_text("old")
    kept.chmod(0o640)
    write_text(str(kept), "new")
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "new"


def test_an_output_in_a_folder_that_cannot_be_written_is_refused_before_the_run(capsys, tmp_path):
    if os.path.isdir("/proc/self"):
        target = "/proc/self/run.json"          # no file can be made there, not even by root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "run.json")
        if os.access(str(locked), os.W_OK):
            pytest.skip("this user writes anywhere")
    code, out, err = run(capsys, "train", *FAST, "--out", target)
    assert code == 2 and out == "" and err.startswith("initlab: error: out: ") and "can write to" in err


def test_an_output_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(capsys, tmp_path):
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    code, out, _ = run(capsys, "train", *FAST, "--out", str(link), "--json")
    assert code == 0 and link.is_symlink()
    assert json.loads(target.read_text())["epochs"] == json.loads(out)["epochs"]


@pytest.mark.parametrize("kind", ["fifo", "read-only"])
def test_an_output_onto_a_pipe_or_a_read_only_file_is_refused_before_the_run(capsys, tmp_path, kind):
    target = tmp_path / "run.json"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.write_text("keep me")
        target.chmod(0o444)
    code, out, err = run(capsys, "train", *FAST, "--out", str(target))
    assert code == 2 and out == "" and err.startswith(f"initlab: error: out: '{target}' is not allowed; ")
    assert len(err.strip().splitlines()) == 1
    assert ("device, a pipe" in err) if kind == "fifo" else ("read-only" in err and target.read_text() == "keep me")


def test_a_data_file_that_is_a_pipe_is_refused_not_waited_on(capsys, tmp_path):
    fifo = tmp_path / "in.npz"
    os.mkfifo(fifo)         # open() on it waits for a writer: the command hung for ever
    code, out, err = run(capsys, "train", *FAST, "--data", str(fifo))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"initlab: error: data: '{fifo}' is not allowed; a regular ") and "a pipe" in err


def test_a_config_from_a_pipe_or_a_device_is_read_with_limits(capsys, tmp_path, monkeypatch):
    import threading

    from initlab.engine import spec

    monkeypatch.setattr(spec, "PIPE_FIRST_WAIT", 0.3)
    fifo = tmp_path / "in.toml"
    os.mkfifo(fifo)
    code, out, err = run(capsys, "probe", "--depth", "2", "--width", "4", "--device", "cpu", "--config", str(fifo))
    assert code == 2 and err.strip() == (f"initlab: error: config: '{fifo}' is not allowed; a file to read (this "
                                         f"pipe sent nothing for 0.3 s)")
    # a pipe something writes to (a process substitution, /dev/stdin) is read as a file
    writer = threading.Thread(target=lambda: fifo.write_text("depth = 3\n"))
    writer.start()
    code, out, err = run(capsys, "probe", "--width", "4", "--device", "cpu", "--config", str(fifo), "--json")
    writer.join()
    assert code == 0 and json.loads(out)["config"]["depth"] == 3
    code, out, err = run(capsys, "probe", "--width", "4", "--device", "cpu", "--config", os.devnull, "--json")
    assert code == 0 and json.loads(out)["config"]["depth"] == Config().depth        # empty: the defaults
    code, out, err = run(capsys, "probe", "--config", "/dev/zero")
    assert code == 2 and "a TOML file of at most 1 MiB" in err and len(err.strip().splitlines()) == 1


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")      # deprecated, and still met in saved files
def test_a_quantized_tensor_in_a_data_file_is_refused_by_name(capsys, tmp_path):
    path = tmp_path / "quant.pt"
    torch.save({"X": torch.quantize_per_tensor(torch.zeros(20, 3), 0.1, 0, torch.quint8), "y": torch.randn(20)},
               path)
    code, out, err = run(capsys, "train", *FAST, "--data", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"data: '{path}' is not allowed; X of a float or integer dtype, not torch.quint8" in err


def test_a_sweeps_saved_grid_of_data_files_is_read_from_another_folder(capsys, tmp_path, monkeypatch):
    for name in ("a.npz", "b.npz"):
        np.savez(tmp_path / name, X=np.random.randn(40, 3).astype("float32"), y=np.random.randn(40).astype("float32"))
    monkeypatch.chdir(tmp_path)
    code, first, err = run(capsys, "sweep", "--depth", "2", "--width", "4", "--train", "--epochs", "1", "--device",
                           "cpu", "--vary", "data=a.npz,b.npz", "--save-config", "saved.toml", "--json")
    assert code == 0, err
    assert f'vary = ["data={tmp_path / "a.npz"},{tmp_path / "b.npz"}"]' in (tmp_path / "saved.toml").read_text()
    (tmp_path / "relative.toml").write_text((tmp_path / "saved.toml").read_text().replace(f"{tmp_path}/", ""))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for conf in ("saved.toml", "relative.toml"):        # a relative grid is found beside its config, as data is
        code, out, err = run(capsys, "sweep", "--config", f"../{conf}", "--json")
        assert code == 0, err
        runs = lambda doc: [(r["train_loss"], r["test_loss"]) for r in doc["runs"]]
        assert runs(json.loads(out)) == runs(json.loads(first))


def test_an_output_onto_the_file_stdout_writes_to_is_refused(tmp_path):
    # the new file would replace the one stdout writes to, and what is printed go to the old one, unlinked
    printed = tmp_path / "printed.txt"
    with open(printed, "w") as fh:
        proc = subprocess.run([sys.executable, "-m", "initlab.tui.cli", "probe", "--depth", "2", "--width", "4",
                               "--device", "cpu", "--csv", "/dev/stdout"], stdout=fh, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert proc.returncode == 2
    assert "csv: '/dev/stdout' is not allowed; a file other than the one stdout writes to" in proc.stderr


def test_a_write_that_fails_names_the_file_and_keeps_the_old_one(tmp_path):
    import resource

    keep = tmp_path / "keep.csv"
    keep.write_text("old\n")
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))     # a file of at most 1 KiB
    proc = subprocess.run([sys.executable, "-m", "initlab.tui.cli", "probe", "--depth", "6", "--width", "4",
                           "--device", "cpu", "--csv", str(keep), "--json"], capture_output=True, text=True,
                          preexec_fn=limit, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == f"initlab: error: {keep}: not written (File too large); the file there is kept as it was"
    assert keep.read_text() == "old\n" and os.listdir(tmp_path) == ["keep.csv"]


def test_an_empty_preset_is_refused(capsys):
    code, out, err = run(capsys, "probe", "--preset", "")
    assert code == 2 and err.startswith("initlab: error: preset: '' is not allowed")


def test_a_preset_of_several_seeds_keeps_them_when_saved_and_in_a_sweep(capsys, tmp_path):
    conf = tmp_path / "ss.toml"
    code, _, err = run(capsys, "train", "--preset", "seed-sensitivity", "--epochs", "1", "--save-config", str(conf),
                       "--json")
    assert code == 0, err
    text = conf.read_text()
    assert 'preset = "seed-sensitivity"' in text and "\nseed = " not in text
    code, out, _ = run(capsys, "train", "--config", str(conf), "--json")
    assert [r["config"]["seed"] for r in json.loads(out)["runs"]] == [420, 29]
    code, out, _ = run(capsys, "sweep", "--train", "--preset", "seed-sensitivity", "--epochs", "1",
                       "--vary", "lr=0.01,0.02", "--json")
    assert code == 0 and [p["runs"] for p in json.loads(out)["points"]] == [2, 2]


def test_a_config_saved_from_a_preset_loads_into_the_other_commands(capsys, tmp_path):
    probe_saved, train_saved = tmp_path / "probe.toml", tmp_path / "train.toml"
    assert run(capsys, "probe", "--preset", "tanh-naive", "--depth", "6", "--save-config", str(probe_saved),
               "--json")[0] == 0
    code, out, err = run(capsys, "train", "--config", str(probe_saved), "--epochs", "1", "--n-rows", "100", "--json")
    assert code == 0, err
    conf = json.loads(out)["config"]
    assert conf["depth"] == 6 and conf["activation"] == "tanh"          # the probe preset's settings, as saved
    assert run(capsys, "train", "--preset", "zero-init-symmetry", "--epochs", "1", "--save-config",
               str(train_saved), "--json")[0] == 0
    code, out, err = run(capsys, "probe", "--config", str(train_saved), "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["init"] == "zeros"
    # a --preset flag still names a preset of the command's own kind
    code, _, err = run(capsys, "train", "--preset", "tanh-naive")
    assert code == 2 and "(tanh-naive is a probe: `initlab probe --preset tanh-naive`)" in err


def test_file_data_past_float32_meta_or_with_grad_is_handled_before_training(capsys, tmp_path):
    g = np.random.default_rng(0)
    huge = tmp_path / "huge.npz"
    np.savez(huge, X=g.normal(size=(40, 3)), y=np.full(40, 1e300))        # finite in float64, inf in float32
    code, out, err = run(capsys, "train", "--data", str(huge), "--epochs", "1")
    assert code == 2 and out == "" and "finite values in y (as float32" in err and err.count("\n") == 1
    meta = tmp_path / "meta.pt"
    torch.save({"X": torch.empty(40, 3, device="meta"), "y": torch.empty(40, device="meta")}, meta)
    code, _, err = run(capsys, "train", "--data", str(meta), "--epochs", "1")
    assert code == 2 and "meta tensors" in err and err.count("\n") == 1
    grad = tmp_path / "grad.pt"
    torch.save({"X": torch.randn(40, 3, requires_grad=True), "y": torch.randn(40)}, grad)
    code, out, err = run(capsys, "train", "--data", str(grad), "--epochs", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["stopped"] == "finished"


def test_standardising_a_train_split_of_one_row_is_refused(capsys, tmp_path):
    two = tmp_path / "two.npz"
    np.savez(two, X=np.array([[0.0, 1.0], [2.0, 3.0]]), y=np.array([0.5, 1.5]))
    code, out, err = run(capsys, "train", "--data", str(two), "--standardize", "--epochs", "1")
    assert code == 2 and err.startswith("initlab: error: standardize: 'on' is not allowed; off for data of 2 rows")
    assert "Warning" not in err
    code, out, err = run(capsys, "train", "--data", str(two), "--epochs", "1", "--json")
    assert code == 0


def test_an_abbreviated_flag_is_not_taken_for_another(capsys):
    """probe has no --out: argparse's abbreviations read it as --out-features; they are off."""
    for argv in (["probe", "--depth", "2", "--width", "4", "--out", "x.json"], ["probe", "--dep", "2"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert f"unrecognized arguments: {' '.join(argv[-2:])}" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["trailing-slash", "link-loop"])
def test_an_output_path_that_cannot_be_a_file_is_refused_in_one_line(capsys, tmp_path, kind):
    if kind == "trailing-slash":
        target = str(tmp_path / "nod") + os.sep
    else:
        (tmp_path / "a").symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(tmp_path / "a")
        target = str(tmp_path / "a")
    code, out, err = run(capsys, "train", *FAST, "--out", target)
    assert code == 2 and err.startswith(f"initlab: error: out: {target!r} is not allowed; ") and err.count("\n") == 1
    assert not (tmp_path / "nod").exists()


def test_a_flag_the_run_does_not_read_gets_a_note(capsys):
    """It ran, but not as the flag asked: momentum under adam, gain under kaiming. A config file's settings are not
    named (a file holds every setting)."""
    assert main(["train", "--depth", "2", "--width", "4", "--epochs", "1", "--optimizer", "adam", "--momentum", "0.5",
                 "--no-bias", "--json"]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("initlab: note: ")]
    assert notes == ["initlab: note: optimizer adam does not read momentum; sgd, rmsprop do; --momentum 0.5 was "
                     "not used"]
    assert main(["probe", "--depth", "2", "--width", "4", "--init", "kaiming_normal", "--gain", "2",
                 "--json"]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("initlab: note: ")]
    assert notes == ["initlab: note: init kaiming_normal does not read gain; init xavier_uniform, xavier_normal, "
                     "orthogonal do; --gain 2 was not used"]


@pytest.mark.parametrize("argv", [
    ["jacobian", "--depth", "3", "--width", "16", "--in-features", "4", "--out-features", "4"],
    ["widths", "--depth", "2", "--widths", "4,8", "--steps", "1"],
    ["sweep", "--vary", "depth=2,3", "--width", "8", "--in-features", "4", "--out-features", "4"],
])
def test_every_command_notes_an_init_flag_its_init_does_not_read(capsys, argv):
    assert main([*argv, "--init", "kaiming_normal", "--gain", "3", "--device", "cpu", "--json"]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("initlab: note: ")]
    assert notes == ["initlab: note: init kaiming_normal does not read gain; init xavier_uniform, xavier_normal, "
                     "orthogonal do; --gain 3 was not used"]


def test_a_sweep_notes_a_flag_only_when_no_point_reads_it(capsys):
    argv = ["sweep", "--depth", "2", "--width", "8", "--in-features", "4", "--out-features", "4", "--device", "cpu",
            "--json", "--gain", "3"]
    assert main([*argv, "--vary", "init=kaiming_normal,orthogonal"]) == 0        # orthogonal reads gain
    assert "initlab: note:" not in capsys.readouterr().err
    assert main([*argv, "--vary", "init=kaiming_normal,xavier_normal"]) == 0     # xavier_normal reads gain too
    assert "initlab: note:" not in capsys.readouterr().err
    assert main([*argv, "--vary", "init=kaiming_normal,zeros"]) == 0          # no point reads it
    assert "--gain 3 was not used" in capsys.readouterr().err


def test_the_bar_ends_where_a_stopped_run_stopped(capsys):
    """Updates come faster than the bar redraws; the last one, held back, is drawn when the bar closes."""
    from initlab.engine.events import Progress
    from initlab.tui.commands.train import Bar

    bar = Bar()
    for step in (1, 2, 3, 4):
        bar(Progress("train", step=step, total_steps=22, epoch=1, epochs=2, loss=float(step), steps_per_sec=9.0))
    bar.close()
    err = capsys.readouterr().err
    assert err.endswith("\n") and " 1/22 " in err and " 2/22 " not in err      # held back while too soon
    last = err.rstrip().rsplit("\r", 1)[-1]
    cells = last[1:last.index("]")]
    assert cells.count("#") == int(len(cells) * 4 / 22) > 0 and " 4/22 epoch 1/2 loss 4 " in err


def test_a_history_that_thinned_says_so(capsys, monkeypatch):
    from initlab.engine import train as train_mod

    monkeypatch.setattr(train_mod, "EPOCH_HISTORY", 8)
    monkeypatch.setattr(train_mod, "STEP_HISTORY", 4)
    assert main(["train", "--depth", "2", "--width", "4", "--n-rows", "10", "--epochs", "20", "--stats-every", "1",
                 "--device", "cpu", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    kept_epochs, kept_steps = len(doc["epochs"]), len(doc["steps"])
    assert kept_epochs < 20 and kept_steps < 20
    assert [e["epoch"] for e in doc["epochs"]][0] == 1 and doc["epochs"][-1]["epoch"] == 20
    assert f"initlab: note: the history keeps {kept_epochs} of 20 epochs and {kept_steps} of 20 sampled steps" in err
    assert main(["train", "--depth", "2", "--width", "4", "--n-rows", "10", "--epochs", "3", "--device", "cpu",
                 "--json"]) == 0
    assert "history keeps" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, line", [
    (["widths", "--norm", "batch", "--batch", "1"], "batch: '1' is not allowed; at least 2 when norm is batch"),
    (["train", "--norm", "batch", "--batch", " 1"], "batch: '1' is not allowed; at least 2 when norm is batch"),
    (["train", "--poly-bias", "--poly-w", "1"], "poly_w: '1' is not allowed; at least two numbers when poly_bias is on"),
])
def test_a_rule_joining_settings_echoes_the_flag_as_typed(capsys, argv, line):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"initlab: error: {line}\n"


def test_the_terminal_says_the_zero_init_lesson(capsys):
    """zero-init-symmetry's point is that its hidden units never separate: the app's log says it, and so does the
    command line's end state (it said nothing, and its probe counterpart read only "vanishing")."""
    code, out, _ = run(capsys, "train", "--preset", "zero-init-symmetry", "--epochs", "1")
    assert code == 0
    assert "end state: symmetry: layer 0 has 1 distinct unit of 2" in " ".join(out.split())
    assert main(["probe", "--init", "zeros", "--depth", "3", "--width", "4", "--device", "cpu"]) == 0
    out = " ".join(capsys.readouterr()[0].split())
    assert "symmetry: layer 0 has 1 distinct unit of 4, layer 1 1 of 4" in out


def test_a_plain_pickle_as_data_is_refused_in_one_line_without_torchs_warning(tmp_path, capsys):
    import pickle

    f = tmp_path / "plain.pt"
    f.write_bytes(pickle.dumps({"X": [[1.0, 2.0]], "y": [1.0]}, protocol=4))
    import warnings

    with warnings.catch_warnings(record=True) as seen:      # a terminal would show torch's warning on stderr
        warnings.simplefilter("always")
        assert main(["train", "--depth", "2", "--width", "4", "--data", str(f), "--epochs", "1", "--json"]) == 2
    assert not [w for w in seen if "pickle" in str(w.message)]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"initlab: error: data: '{f}' is not allowed; ")


def test_a_config_files_relative_data_path_is_found_beside_it_then_in_the_current_folder(tmp_path, capsys,
                                                                                        monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    np.savez(sub / "ok.npz", X=np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32),
             y=np.zeros(20, dtype=np.float32))
    (sub / "beside.toml").write_text('data = "ok.npz"\ndepth = 2\nwidth = 4\nepochs = 1\n')
    (sub / "fromcwd.toml").write_text('data = "sub/ok.npz"\ndepth = 2\nwidth = 4\nepochs = 1\n')
    monkeypatch.chdir(tmp_path)
    for name in ("beside", "fromcwd"):
        assert main(["train", "--config", f"sub/{name}.toml", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["config"]["data"].endswith("ok.npz")


def test_train_defaults_to_the_lessons_batches_of_10_and_reads_a_flags_spelling_in_toml(tmp_path, capsys):
    assert main(["train", "--depth", "2", "--width", "4", "--epochs", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["batch"] == 10 and doc["total_steps"] == 70       # 700 training rows of the poly data
    f = tmp_path / "dashes.toml"
    f.write_text("stats-every = 7\ndepth = 2\nwidth = 4\nepochs = 1\n")
    assert main(["train", "--config", str(f), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["stats_every"] == 7 and [s["step"] for s in doc["steps"]][:2] == [0, 7]
    f.write_text("stats-every = 7\nstats_every = 8\n")
    assert main(["train", "--config", str(f), "--json"]) == 2
    assert "each setting once (stats_every is given twice)" in capsys.readouterr().err


def test_json_on_a_terminal_draws_no_bar(monkeypatch, capsys):
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["train", "--depth", "2", "--width", "4", "--epochs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stopped"] == "finished"
    assert "steps/s" not in err.getvalue() and "\r" not in err.getvalue()
    assert main(["train", "--depth", "2", "--width", "4", "--epochs", "1"]) == 0       # the table: with its bar
    assert "steps/s" in err.getvalue()
