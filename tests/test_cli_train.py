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


def test_out_writes_the_whole_history_atomically(tmp_path, capsys):
    target = tmp_path / "run.json"
    target.write_text("previous")
    code, out, _ = run(capsys, "train", *FAST, "--out", str(target), "--json")
    assert code == 0
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


# -- data ---------------------------------------------------------------------------------------------------

def test_poly_data_follows_the_course_generator():
    cfg = Config(n_rows=1000)
    x, y = datasets.poly(cfg, torch.Generator().manual_seed(0))
    assert x.shape == (1000, 2) and y.shape == (1000, 1)
    resid = y[:, 0] - (2 * x[:, 0] ** 2 - x[:, 1] ** 2)
    assert resid.std().item() == pytest.approx(0.01, rel=0.1)
    xb, yb = datasets.poly(cfg.replace(poly_w=(1.0, 3.0), poly_bias=True, deg=1), torch.Generator().manual_seed(0))
    assert xb.shape == (1000, 1) and (yb[:, 0] - (xb[:, 0] + 3.0)).abs().max() < 0.1


def test_split_is_seeded_70_30_and_standardisation_uses_the_train_split():
    ds = datasets.make(Config(n_rows=1000, standardize=True), torch.device("cpu"))
    assert ds.x_train.shape[0] == 700 and ds.x_test.shape[0] == 300
    assert ds.x_train.mean(0).abs().max() < 1e-5 and (ds.x_train.std(0) - 1).abs().max() < 1e-4
    again = datasets.make(Config(n_rows=1000, standardize=True), torch.device("cpu"))
    assert torch.equal(ds.x_test, again.x_test)


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
])
def test_bad_npz_files_get_one_line(tmp_path, make, why):
    path = str(tmp_path / "d.npz")
    make(path)
    with pytest.raises(SpecError) as e:
        datasets.load_file(path)
    msg = str(e.value)
    assert msg.startswith("data: ") and why in msg and "\n" not in msg


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
