"""Sweeps: --vary parsing and refusals, every run against a direct probe, cancelling, `initlab sweep`.

Also seed means and stds, the edge-of-chaos sign change, heatmap layout; cancelling by generator, Session job and
Ctrl-C.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest

from initlab.engine import sweep, theory
from initlab.engine.events import Cancelled, Progress
from initlab.engine.probe import run_probe
from initlab.engine.session import Session
from initlab.engine.spec import Config, SpecError
from initlab.tui.cli import main

SMALL = Config(depth=4, width=16, in_features=8, out_features=4, batch=16, device="cpu")
SMALL_FLAGS = ["--width", "16", "--in-features", "8", "--out-features", "4", "--batch", "16", "--device", "cpu"]


def tanh_net(**kw) -> Config:
    return Config(depth=30, width=128, in_features=128, out_features=128, activation="tanh", init="scaled_normal",
                  sigma_b=0.0, batch=64, device="cpu", **kw)


# parsing ---------------------------------------------------------------------------------------------------------

def test_parse_vary_types_every_value_by_its_field():
    v = sweep.parse_vary(["depth=10,20", "init=xavier_uniform,kaiming_normal", "bias=true,false",
                          "sigma-w=0.5,1", "poly_w=1,2;3,4"])
    assert v == {"depth": [10, 20], "init": ["xavier_uniform", "kaiming_normal"], "bias": [True, False],
                 "sigma_w": [0.5, 1.0], "poly_w": [(1.0, 2.0), (3.0, 4.0)]}


@pytest.mark.parametrize("item,field,text", [
    ("foo=1,2", "vary", "'foo'"),
    ("depth=10,abc", "depth", "'abc'"),
    ("depth=0", "depth", "0"),
    ("init=xavier,kaiming_normal", "init", "'xavier'"),
    ("depth", "vary", "NAME=V1,V2"),
    ("depth=", "depth", "values separated by ','"),
    ("depth=1,,2", "depth", "none of them empty"),
    ("gain=,2", "gain", "none of them empty; auto for the activation's gain"),
    ("depth=3,", "depth", "values separated by ',', none of them empty"),
])
def test_parse_vary_refuses_with_the_field_named(item, field, text):
    with pytest.raises(SpecError) as e:
        sweep.parse_vary([item])
    assert e.value.field == field and text in str(e.value) and "\n" not in str(e.value)


def test_a_setting_varied_twice_is_refused():
    with pytest.raises(SpecError, match="once"):
        sweep.parse_vary(["depth=1", "depth=2"])


def test_grid_varies_the_seed_fastest_and_validates_before_running():
    g = sweep.grid({"seed": [0, 1], "depth": [2, 3]})
    assert g == [{"depth": 2, "seed": 0}, {"depth": 2, "seed": 1}, {"depth": 3, "seed": 0}, {"depth": 3, "seed": 1}]
    # poly_bias with a single weight is a joint rule; the bad combination fails before any run
    with pytest.raises(SpecError, match="poly_w"):
        sweep.point_configs(SMALL.replace(poly_bias=True), {"poly_w": [(1.0, 2.0), (1.0,)]})


# runs against direct computation ---------------------------------------------------------------------------------

def test_every_run_equals_a_direct_probe_of_its_config():
    vary = {"depth": [3, 6], "activation": ["tanh", "relu"]}
    runs = list(sweep.sweep(SMALL, vary))
    assert [r["index"] for r in runs] == [0, 1, 2, 3] and all(r["total"] == 4 for r in runs)
    for r in runs:
        direct = run_probe(SMALL.replace(**r["values"]), distributions=False)
        assert r["verdict"] == direct.verdict["kind"]
        assert r["first_last_gradz_ratio"] == pytest.approx(direct.verdict["first_last_gradz_ratio"], rel=1e-6)
        assert r["first_last_grad_ratio"] == pytest.approx(direct.verdict["first_last_grad_ratio"], rel=1e-6)
        assert r["last_a_std"] == pytest.approx(direct.layers[-1]["a_std"], rel=1e-6)
        assert r["log10_gradz_ratio"] == pytest.approx(math.log10(direct.verdict["first_last_gradz_ratio"]))
        assert "chi1" not in r          # theory columns only for the scaled-normal net


def test_seed_sweep_gives_mean_and_sample_std_of_the_runs():
    runs = list(sweep.sweep(SMALL, {"depth": [3, 5], "seed": [0, 1, 2]}))
    rows = sweep.aggregate(runs)
    assert [(r["depth"], r["runs"]) for r in rows] == [(3, 3), (5, 3)]
    for row in rows:
        mine = [r for r in runs if r["values"]["depth"] == row["depth"]]
        assert sorted(r["values"]["seed"] for r in mine) == [0, 1, 2]
        for k in ("log10_gradz_ratio", "last_a_std"):
            xs = [r[k] for r in mine]
            assert row[k] == pytest.approx(statistics.mean(xs), rel=1e-12)
            assert row[k + "_std"] == pytest.approx(statistics.stdev(xs), rel=1e-12)
        # a ratio's mean is geometric: the log10 column beside it is its log; its spread is of log10
        for k in ("first_last_gradz_ratio", "first_last_grad_ratio"):
            logs = [math.log10(r[k]) for r in mine]
            assert row[k] == pytest.approx(10 ** statistics.mean(logs), rel=1e-12)
            assert row[k + "_log10_std"] == pytest.approx(statistics.stdev(logs), rel=1e-12)
            assert k + "_std" not in row
        assert math.log10(row["first_last_gradz_ratio"]) == pytest.approx(row["log10_gradz_ratio"], rel=1e-12)
        assert row["verdict"] == statistics.mode(r["verdict"] for r in mine)
        assert sum(row["verdicts"].values()) == 3
    assert len({r["last_a_std"] for r in runs}) == 6     # the seeds really differ


def test_a_seeds_zero_ratio_makes_the_geometric_mean_zero():
    """An underflowed first layer gives a ratio of 0: the product, so the geometric mean, is 0 and its log none.
    Left out, the mean of the other seeds (1e-4 here) hid one seed's complete vanishing behind a healthier figure,
    with every seed counted."""
    runs = [{"values": {"depth": 3, "seed": s}, "verdict": "vanishing", "first_last_gradz_ratio": r,
             "log10_gradz_ratio": sweep._log10(r)} for s, r in enumerate([1e-3, 0.0, 1e-5])]
    (row,) = sweep.aggregate(runs)
    assert row["first_last_gradz_ratio"] == 0.0 and row["first_last_gradz_ratio_log10_std"] is None
    assert row["log10_gradz_ratio"] is None and row["log10_gradz_ratio_std"] is None and row["runs"] == 3
    (one,) = sweep.aggregate(runs[1:2])
    assert one["first_last_gradz_ratio"] == 0.0 and one["log10_gradz_ratio"] is None   # one run's ratio is itself
    (none,) = sweep.aggregate(runs[::2])
    assert none["first_last_gradz_ratio"] == pytest.approx(1e-4) and none["log10_gradz_ratio"] == pytest.approx(-4)


def test_a_tied_verdict_is_the_graver_whatever_the_seed_order_and_tables_say_the_split():
    runs = [{"values": {"depth": 20, "seed": s}, "verdict": v} for s, v in ((0, "vanishing"), (1, "stable"))]
    for order in (runs, runs[::-1]):
        (row,) = sweep.aggregate(order)
        assert row["verdict"] == "vanishing" and sweep.verdict_cell(row) == "vanishing 1/2"
    five = [{"values": {"depth": 20, "seed": s}, "verdict": v}
            for s, v in enumerate(["stable", "vanishing", "stable", "stable", "vanishing"])]
    (row,) = sweep.aggregate(five)
    assert row["verdict"] == "stable" and sweep.verdict_cell(row) == "stable 3/5"
    (same,) = sweep.aggregate([{**r, "verdict": "stable"} for r in five])
    assert sweep.verdict_cell(same) == "stable"


def test_gradient_ratio_changes_sign_where_chi1_crosses_one():
    # tanh without bias: ordered (chi_1 = 0.64) at sigma_w 0.8, chaotic (chi_1 = 1.06) at 1.3
    runs = list(sweep.sweep(tanh_net(), {"sigma_w": [0.8, 1.3], "seed": [0, 1]}))
    for r in runs:
        sw = r["values"]["sigma_w"]
        assert r["chi1"] == pytest.approx(theory.mean_field("tanh", sw, 0.0)["chi1"])
        if sw == 0.8:
            assert r["chi1"] < 1 and r["phase"] == "ordered" and r["log10_gradz_ratio"] < -1
        else:
            assert r["chi1"] > 1 and r["phase"] == "chaotic" and r["log10_gradz_ratio"] > 0.05
        assert r["log10_gradz_ratio"] == pytest.approx(r["predicted_log10_gradz_ratio"], abs=0.2)


def test_heatmap_places_each_point_at_its_coordinates():
    vary = {"depth": [2, 4, 6], "activation": ["tanh", "relu"]}
    rows = sweep.aggregate(list(sweep.sweep(SMALL, vary)))
    hm = sweep.heatmap(rows, vary, "last_a_std")
    assert hm["x"] == [2, 4, 6] and hm["y"] == ["tanh", "relu"]
    for r in rows:
        assert hm["values"][hm["y"].index(r["activation"])][hm["x"].index(r["depth"])] == r["last_a_std"]
    assert sweep.heatmap(rows, {"depth": [2, 4, 6]}) is None


def test_heatmap_cells_keep_small_values_apart_from_zero():
    """A first/last gradient ratio of 1e-5 printed with two decimals read as 0.00, as if nothing flowed back."""
    from initlab.tui.commands.sweep import heatmap_text
    from initlab.tui.widgets.sweep_chart import fit_number

    hm = {"x_field": "sigma_w", "y_field": "sigma_b", "x": [0.5, 1.0], "y": [0.0], "metric": "first_last_gradz_ratio",
          "values": [[1.234e-5, 0.0]]}
    row = heatmap_text(hm).splitlines()[-1].split()
    assert row[1:] == ["1.234e-05", "0"]
    for v, widths in ((1.234e-5, (4, 5, 6)), (-3.4e-7, (5, 6)), (0.004, (4, 5, 6))):
        for w in widths:
            text = fit_number(v, w)
            assert len(text) <= w and float(text) != 0 and float(text) == pytest.approx(v, rel=0.5), (v, w, text)
    assert fit_number(0.5, 4) == "0.50" and fit_number(0.0, 4) == "0.00" and fit_number(-3.4e-7, 4) == "####"


def test_edge_of_chaos_preset_and_its_critical_line():
    p = sweep.get_preset("edge-of-chaos-tanh")
    assert p.config.init == "scaled_normal" and p.config.activation == "tanh"
    assert set(p.vary) == {"sigma_w", "sigma_b"} and 1.0 in [round(v * v, 9) for v in p.vary["sigma_w"]]
    line = sweep.critical_line_for(p.config, {k: list(v) for k, v in p.vary.items()})
    assert line[0] == {"sigma_b2": 0.0, "sigma_w2": pytest.approx(1.0)}
    for d in line[1:]:
        sw = math.sqrt(d["sigma_w2"])
        assert theory.mean_field("tanh", sw, math.sqrt(d["sigma_b2"]))["chi1"] == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(SpecError, match="sweep preset"):
        sweep.get_preset("nope")


def test_train_sweep_reports_the_training_losses():
    from initlab.engine.train import run_training

    base = Config(depth=3, width=8, data="poly", n_rows=60, epochs=1, batch=10, device="cpu", seed=3)
    runs = list(sweep.sweep(base, {"activation": ["tanh", "relu"]}, train=True))
    for r in runs:
        direct = run_training(base.replace(**r["values"]))
        assert r["train_loss"] == pytest.approx(direct["epochs"][-1]["train_loss"], rel=1e-6)
        assert r["test_loss"] == pytest.approx(direct["epochs"][-1]["test_loss"], rel=1e-6)
        assert r["verdict"] in ("stable", "vanishing", "exploding", "nonfinite")


# cancelling ------------------------------------------------------------------------------------------------------

def test_stopping_the_generator_keeps_the_runs_done():
    vary = {"depth": [2, 3, 4, 5]}
    runs = []
    for r in sweep.sweep(SMALL, vary):
        runs.append(r)
        if len(runs) == 2:
            break
    s = sweep.summary(SMALL, vary, runs)
    assert (s["done"], s["total"], s["complete"]) == (2, 4, False)
    assert [p["depth"] for p in s["points"]] == [2, 3]


def test_sweep_job_cancelled_on_a_session_hands_out_the_points_done():
    events = []
    done = threading.Event()
    session = Session()

    def on_event(ev):
        events.append(ev)
        if isinstance(ev, Progress) and ev.step == 2:
            session.cancel(wait=False)
        if isinstance(ev, Cancelled):
            done.set()

    session.subscribe(on_event)
    session.start(sweep.SweepJob(SMALL, {"depth": [2, 3, 4, 5, 6, 7]}))
    assert done.wait(60)
    cancelled = [e for e in events if isinstance(e, Cancelled)][0]
    assert cancelled.result["done"] == 2 and not cancelled.result["complete"]
    assert [p["depth"] for p in cancelled.result["points"]] == [2, 3]
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2]


# command line ----------------------------------------------------------------------------------------------------

def test_sweep_json_and_progress(capsys):
    code = main(["sweep", "--vary", "depth=2,3", "--vary", "init=xavier_uniform,kaiming_normal", *SMALL_FLAGS,
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    doc = json.loads(out)
    assert doc["complete"] and doc["done"] == doc["total"] == 4
    assert [(p["depth"], p["init"]) for p in doc["points"]] == [
        (2, "xavier_uniform"), (2, "kaiming_normal"), (3, "xavier_uniform"), (3, "kaiming_normal")]
    assert doc["heatmap"]["x_field"] == "depth" and doc["heatmap"]["y_field"] == "init"
    assert err.count("[") == 4 and "[4/4]" in err


def test_sweep_text_table_with_seeds(capsys):
    assert main(["sweep", "--vary", "depth=2,3", "--vary", "seed=0,1", *SMALL_FLAGS]) == 0
    out, _ = capsys.readouterr()
    assert "verdict" in out and "log10 std" in out and "seeds" in out
    assert len([ln for ln in out.splitlines() if ln.strip().startswith(("2 ", "3 "))]) == 2


def test_sweep_preset_with_overrides_draws_the_phase_diagram(capsys):
    code = main(["sweep", "--preset", "edge-of-chaos-tanh", "--depth", "6", "--width", "16", "--in-features", "16",
                 "--out-features", "16", "--batch", "8", "--vary", "sigma_w=0.8,1.5", "--vary", "sigma_b=0,0.3",
                 "--device", "cpu"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "sigma_w^2" in out and "edge of chaos (chi_1 = 1)" in out and "chi_1" in out


@pytest.mark.parametrize("argv,needle", [
    (["--vary", "nosuch=1,2"], "vary: 'nosuch'"),
    (["--vary", "dpth=1,2"], "vary: 'dpth' is not allowed; a known setting (did you mean depth?): depth, width,"),
    (["--vary", "depth=2,x"], "depth: 'x'"),
    ([], "--vary"),
    (["--preset", "nope"], "preset: 'nope'"),
    (["--vary", "depth=2", "--metric", "nope"], "metric: 'nope'"),
    (["--vary", "depth=2", "--metric", "test_loss"], "metric: 'test_loss' is not allowed; with --train only"),
    # counted before any point is made: a grid of millions had filled the memory first
    (["--vary", "seed=" + ",".join(map(str, range(300))), "--vary", "depth=" + ",".join(map(str, range(1, 301))),
      "--vary", "width=" + ",".join(map(str, range(1, 301)))],
     "vary: '27000000 runs' is not allowed; at most 10000 runs in one sweep"),
])
def test_sweep_refusals_exit_2_in_one_line(capsys, argv, needle):
    assert main(["sweep", *argv, *SMALL_FLAGS]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and needle in err


def test_metric_picks_the_reports_figure_and_is_noted_where_nothing_reads_it(capsys, tmp_path):
    report = tmp_path / "one.md"
    assert main(["sweep", "--vary", "depth=2,3", "--metric", "last_a_std", "--report", str(report), "--json",
                 *SMALL_FLAGS]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["metric"] == "last_a_std" and "note: --metric" not in err
    text = report.read_text()
    assert "last_a_std per point" in text and "log10_gradz_ratio per point" not in text
    assert main(["sweep", "--vary", "depth=2,3", "--metric", "last_a_std", "--json", *SMALL_FLAGS]) == 0
    _, err = capsys.readouterr()
    assert "initlab: note: --metric last_a_std was not used" in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_a_sweep_stopped_before_its_first_point_writes_a_csv_header(tmp_path):
    # the gains' note is said just before the first point starts, which takes seconds at this depth
    path = tmp_path / "none.csv"
    cmd = [sys.executable, "-m", "initlab.tui.cli", "sweep", "--vary", "activation=tanh,relu", "--depth", "1500",
           "--width", "256", "--in-features", "256", "--out-features", "256", "--device", "cpu", "--json",
           "--csv", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stderr:
            if "note: gain left empty" in line:
                break
        time.sleep(0.5)         # past the note's own return: the first point runs for seconds
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted after 0 of 2 runs" in err
    assert json.loads(out)["done"] == 0
    assert path.read_text().splitlines() == ["activation,verdict"]      # the header says what the file is of


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_keeps_the_points_done():
    cmd = [sys.executable, "-m", "initlab.tui.cli", "sweep", "--vary", "seed=" + ",".join(map(str, range(400))),
           "--depth", "30", "--width", "64", "--in-features", "64", "--out-features", "64", "--device", "cpu",
           "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stderr:
            if line.startswith("[2/"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted after" in err
    doc = json.loads(out)
    assert not doc["complete"] and 2 <= doc["done"] < 400 and len(doc["runs"]) == doc["done"]


def test_phase_diagram_signs_follow_the_theoretical_phase():
    base = tanh_net().replace(init="scaled_normal", bias=True)
    vary = {"sigma_w": [0.8, 1.3], "sigma_b": [0.0, math.sqrt(0.1)]}     # sigma_w^2 0.64 and 1.69, sigma_b^2 0, 0.1
    res = sweep.summary(base, vary, list(sweep.sweep(base, vary)))
    hm = res["heatmap"]
    assert (hm["x_field"], hm["y_field"]) == ("sigma_w", "sigma_b")
    assert hm["x"] == pytest.approx([0.8, 1.3]) and hm["y"] == pytest.approx([0.0, math.sqrt(0.1)])
    for j, sb in enumerate(hm["y"]):
        for i, sw in enumerate(hm["x"]):
            chi1 = theory.mean_field("tanh", sw, sb)["chi1"]
            assert (hm["values"][j][i] > 0) == (chi1 > 1), (sw, sb, chi1, hm["values"][j][i])
    assert res["critical_line"][0]["sigma_w2"] == pytest.approx(1.0)


def test_the_apps_grid_field_takes_spaces_or_semicolons_between_settings():
    from initlab.tui.widgets.extra_fields import extra_error, parse_vary

    want = {"depth": [10, 20, 50], "init": ["xavier_uniform", "kaiming_normal"]}
    assert parse_vary("depth=10,20,50; init=xavier_uniform,kaiming_normal") == want     # as the README writes it
    assert parse_vary("depth=10,20,50 init=xavier_uniform,kaiming_normal") == want
    assert parse_vary("depth=10,20,50;init=xavier_uniform,kaiming_normal;") == want
    assert parse_vary(" ; ") == {}
    assert extra_error("vary", "depth=3,4; init=nope") is not None
    # a tuple setting's values are separated by ';' as on the command line: a ';' ends an item only before NAME=
    assert parse_vary("poly_w=2,-1;1,1 depth=3") == {"poly_w": [(2.0, -1.0), (1.0, 1.0)], "depth": [3]}
    assert parse_vary("poly_w=2,-1;1,1;depth=3") == sweep.parse_vary(["poly_w=2,-1;1,1", "depth=3"])
    # a space ends an item: a stray word is refused as typed, not joined to the item before it
    assert extra_error("vary", "depth=10 20").startswith("vary: '20' is not allowed")
    assert extra_error("vary", "poly_w=2,-1; 1,1").startswith("vary: '1,1' is not allowed")
    # a space after a comma ends the item there: the refusal says so
    said = extra_error("vary", "depth=3, 4")
    assert said == ("depth: '3,' is not allowed; values separated by ',', none of them empty, with no space after "
                    "a ',' (a space separates settings)")
    assert "space" not in extra_error("vary", "depth=3,,4")


def test_a_bad_data_file_anywhere_in_a_training_grid_is_refused_before_any_run(capsys, tmp_path):
    import numpy as np

    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    np.savez(good, X=np.zeros((20, 2), dtype=np.float32), y=np.zeros(20, dtype=np.float32))
    np.savez(bad, A=np.zeros(3))
    code = main(["sweep", "--train", "--vary", f"data={good},{bad}", "--depth", "2", "--width", "4", "--epochs", "1",
                 "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1      # no run's line before the refusal
    assert err.startswith(f"initlab: error: data: '{bad}' is not allowed; a file holding arrays X and y")


def test_a_runs_line_shows_the_settings_as_the_table_does():
    r = {"index": 0, "total": 2, "values": {"sigma_w": 1.8708286933869707, "sigma_b": 0.4472135954999579,
                                            "lr": 0.123456789, "depth": 10},
         "verdict": "stable", "first_last_gradz_ratio": 1.5, "seconds": 0.25}
    assert sweep.describe_run(r) == ("[1/2] sigma_w=1.871 sigma_b=0.4472 lr=0.1235 depth=10: stable, "
                                     "first/last dL/dz 1.5 (0.25 s)")


def test_a_flag_the_grid_varies_is_noted_as_not_used(capsys):
    assert main(["sweep", "--vary", "seed=0,1", "--seed", "5", "--no-bias", "--vary", "bias=true,false",
                 *SMALL_FLAGS, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "initlab: note: --vary seed=... gives its values; --seed 5 was not used" in err
    assert "initlab: note: --vary bias=... gives its values; --no-bias was not used" in err
    assert sorted({(r["values"]["seed"], r["values"]["bias"]) for r in json.loads(out)["runs"]}) == \
        [(0, False), (0, True), (1, False), (1, True)]


def test_a_run_that_went_non_finite_says_where_not_a_ratio_of_its_blown_up_numbers(capsys):
    code = main(["sweep", "--depth", "3", "--width", "8", "--vary", "lr=0.1,1e9", "--train", "--epochs", "1",
                 "--device", "cpu"])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert code == 0 and lines[0].startswith("[1/2] lr=0.1: stable, first/last dL/dz ")
    assert re.fullmatch(r"\[2/2\] lr=1e\+09: nonfinite( from layer \d)? \(\d+\.\d\d s\)", lines[1]), lines[1]
    # the layer is the training's own finding (none for a loss), not one read off the blown-up numbers
    assert main(["sweep", "--depth", "6", "--width", "16", "--vary", "lr=10,100", "--train", "--epochs", "2",
                 "--device", "cpu", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    for r in runs:
        cfg = Config(depth=6, width=16, lr=r["values"]["lr"], epochs=2, device="cpu")
        from initlab.engine.train import run_training

        trained = run_training(cfg)
        assert r["verdict"] == "nonfinite" and trained["stopped"] == "nonfinite"
        assert r["from_layer"] == trained["nonfinite"]["layer"]


def test_seed_means_leave_out_a_run_that_went_non_finite():
    runs = [{"values": {"lr": 0.45, "seed": 420}, "verdict": "nonfinite", "train_loss": 7e29, "last_a_std": 8e18},
            {"values": {"lr": 0.45, "seed": 29}, "verdict": "stable", "train_loss": 2.0, "last_a_std": 0.5},
            {"values": {"lr": 0.45, "seed": 7}, "verdict": "stable", "train_loss": 4.0, "last_a_std": 0.7}]
    (row,) = sweep.aggregate(runs)
    assert row["runs"] == 3 and row["nonfinite_runs"] == 1 and row["verdicts"] == {"nonfinite": 1, "stable": 2}
    assert row["train_loss"] == 3.0 and row["last_a_std"] == pytest.approx(0.6)
    assert row["train_loss_std"] == pytest.approx(math.sqrt(2))


def test_a_point_too_big_for_memory_is_refused_before_any_run(capsys, tmp_path):
    saved = tmp_path / "s.toml"
    code = main(["sweep", "--vary", "width=8,1048576", "--depth", "5", "--device", "cpu", "--save-config", str(saved)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1      # no run's line before the refusal
    assert err.startswith("initlab: error: width: 1048576 is not allowed; a network that fits in memory")
    assert not saved.exists()


@pytest.mark.parametrize("vary, train, why", [
    ("sigma_w=0.5,2", False, "init xavier_uniform does not read sigma_w; init scaled_normal does"),
    ("lr=0.1,0.2", False, "a probe does not read lr"),
    ("poly_w=1,2;3,4", False, "a probe does not read poly_w"),
    ("target=0,1", True, "a training does not read target"),
    ("momentum=0,0.9", True, "optimizer adam does not read momentum"),
])
def test_a_setting_no_point_reads_is_refused_before_any_runs(vary, train, why):
    base = Config(depth=3, width=8, optimizer="adam" if "momentum" in vary else "sgd")
    with pytest.raises(SpecError) as e:
        sweep.point_configs(base, sweep.parse_vary([vary]), train)
    assert e.value.field == "vary" and why in str(e.value)


def test_a_setting_read_at_some_points_of_the_grid_is_varied():
    """sigma_w beside init: the scaled_normal points read it, so the two inits' sigma_w points are the grid."""
    plan = sweep.point_configs(Config(depth=3, width=8),
                               sweep.parse_vary(["sigma_w=0.5,2", "init=scaled_normal,xavier_uniform"]))
    assert len(plan) == 4
    same = [run_probe(c, distributions=False).layers[0]["a_std"] for v, c in plan if v["init"] == "scaled_normal"]
    assert same[0] != same[1]


def test_a_config_saved_from_a_sweep_preset_brings_back_its_grid(capsys, tmp_path):
    saved = tmp_path / "eoc.toml"
    small = ["--depth", "3", "--width", "8", "--in-features", "8", "--out-features", "8", "--json"]
    assert main(["sweep", "--preset", "edge-of-chaos-tanh", *small, "--save-config", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert 'preset = "edge-of-chaos-tanh"' in saved.read_text()
    assert main(["sweep", "--config", str(saved), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["vary"] == first["vary"] and len(again["points"]) == len(first["points"])
    # the other commands take the file's settings: the net the sweep's points vary around
    assert main(["probe", "--config", str(saved), "--json"]) == 0
    probed = json.loads(capsys.readouterr().out)
    assert probed["config"]["depth"] == 3 and probed["config"]["width"] == 8 and len(probed["layers"]) == 3
    assert main(["jacobian", "--config", str(saved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [8, 8]


def test_a_varied_value_is_refused_as_typed(capsys):
    assert main(["sweep", "--init", "normal", "--vary", "std=1,1e400"]) == 2
    assert capsys.readouterr().err.startswith("initlab: error: std: '1e400' is not allowed; ")


@pytest.mark.parametrize("vary, why", [("target=0,1", "loss signal does not read target"),
                                       ("width=8,16", "a net of one layer has no hidden width")])
def test_more_settings_no_point_reads(vary, why):
    with pytest.raises(SpecError) as e:
        sweep.point_configs(Config(depth=1, width=8), sweep.parse_vary([vary]))
    assert why in str(e.value)


def test_a_training_sweep_does_not_vary_stats_every():
    """A point keeps its end state and epoch losses: stats_every=1,2 drew the same point twice."""
    with pytest.raises(SpecError) as e:
        sweep.point_configs(Config(depth=3, width=8), sweep.parse_vary(["stats_every=1,2"]), True)
    assert "reads its end state" in str(e.value)


def test_a_point_whose_runs_went_non_finite_keeps_its_time_and_a_lone_seed_has_no_std():
    base = Config(depth=150, width=4, in_features=4, out_features=4, activation="identity", init="normal",
                  device="cpu")
    runs = list(sweep.sweep(base, {"seed": [0, 1, 2]}))
    finite = [r for r in runs if r["verdict"] != "nonfinite"]
    row = sweep.aggregate(runs)[0]
    assert row["seconds"] == pytest.approx(sum(r["seconds"] for r in runs) / 3)
    assert len(finite) == 1             # two of the three seeds blow up: one value has no sample std
    assert row["nonfinite_runs"] == 2 and row["log10_gradz_ratio_std"] is None
    assert row["log10_gradz_ratio"] == pytest.approx(finite[0]["log10_gradz_ratio"])


def test_progress_lines_name_settings_as_the_table_does():
    from initlab.tui.widgets.sweep_chart import cell_text

    assert cell_text("gain", None) == "auto" and sweep.value_text("gain", None) == "auto"
    assert sweep.setting_text("gain", None) == "gain=auto"
    assert sweep.setting_text("poly_w", (1.0, 2.0)) == "poly_w=[1, 2]"
    assert sweep.setting_text("lr", 0.012345) == "lr=0.01235" and sweep.setting_text("depth", 4) == "depth=4"


def test_a_log10_of_zero_ratios_is_said_as_such_not_as_not_measured(capsys):
    """Every point with a seed whose first layer's gradient underflowed: the ratio is 0 and its log10 -inf, measured,
    not a metric that does not apply."""
    assert main(["sweep", "--width", "4", "--in-features", "4", "--out-features", "4", "--activation", "relu",
                 "--init", "kaiming_normal", "--vary", "depth=15,20", "--vary", "seed=0,1,2,3,4,5",
                 "--device", "cpu", "--json"]) == 0
    out, err = capsys.readouterr()
    points = json.loads(out)["points"]
    assert all(p["first_last_gradz_ratio"] == 0 and p["log10_gradz_ratio"] is None for p in points)
    assert "first/last dL/dz ratio is 0" in err and "no point has a value" not in err


def test_a_value_given_twice_is_run_once_and_said(capsys):
    assert main(["sweep", *SMALL_FLAGS, "--vary", "depth=2,2,3", "--json"]) == 0
    out, err = capsys.readouterr()
    assert [p["depth"] for p in json.loads(out)["points"]] == [2, 3]
    assert "initlab: note: --vary depth gives a value more than once; each runs once (2 of 3)" in err
    assert main(["sweep", *SMALL_FLAGS, "--vary", "depth=2,3", "--json"]) == 0
    assert "more than once" not in capsys.readouterr()[1]


def test_a_theory_metric_no_point_has_is_refused_before_any_point_runs(capsys):
    from initlab.tui.cli import main

    assert main(["sweep", "--depth", "2", "--width", "4", "--vary", "depth=2,3", "--metric", "chi1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == ("initlab: error: metric: 'chi1' is not allowed; a metric these points have (mean "
                                 "field's chi1 needs a scaled_normal init, no norm, no residual, no dropout: --init "
                                 "scaled_normal)\n")
    assert main(["sweep", "--depth", "2", "--width", "4", "--vary", "init=xavier_uniform,scaled_normal",
                 "--metric", "chi1", "--json"]) == 0          # one point has it


def test_a_training_sweeps_base_gives_the_sizes_its_trainings_ran_with():
    base = Config(depth=2, width=4, epochs=1, n_rows=100, device="cpu")        # in and out features 256 given
    s = sweep.summary(base, {"lr": [0.01, 0.1]}, list(sweep.sweep(base, {"lr": [0.01, 0.1]}, train=True)), True)
    assert (s["base"]["in_features"], s["base"]["out_features"]) == (2, 1)      # the poly data's
    probe = sweep.summary(base, {"depth": [2]}, list(sweep.sweep(base, {"depth": [2]})))
    assert probe["base"]["in_features"] == 256


@pytest.mark.parametrize("item,why", [
    ("residual=true,false", "a residual add needs a layer whose fan_in equals its fan_out"),
    ("last_activation=true,false", "activation identity without a norm leaves the last layer as it is"),
])
def test_a_grid_over_a_setting_this_net_has_no_use_for_is_refused(item, why):
    base = Config(depth=2, width=4, in_features=3, out_features=2, batch=2, activation="identity", device="cpu")
    with pytest.raises(SpecError, match=why):
        sweep.point_configs(base, sweep.parse_vary([item]))
    # where one point has a use for it, the grid runs: a square layer; an activation, or a norm after the last layer
    square = base.replace(in_features=4, activation="tanh")
    assert len(sweep.point_configs(square, sweep.parse_vary([item]))) == 2
    if item.startswith("last_activation"):
        assert len(sweep.point_configs(base.replace(norm="layer"), sweep.parse_vary([item]))) == 2
