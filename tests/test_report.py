"""CSV and Markdown reports: their content against the JSON, and atomic writes.

Files written by probe and train, every result kind, text bar charts; no temporary file is left and the previous
file stays intact when a write fails.
"""
from __future__ import annotations

import csv
import json
import math
import os

import pytest
import torch

from initlab.engine import export, report
from initlab.engine.textplot import bar_chart, fmt
from initlab.tui.cli import main

SMALL = ["--depth", "4", "--width", "8", "--in-features", "6", "--out-features", "3", "--batch", "16",
         "--device", "cpu"]
EXPLODE = ["--depth", "12", "--width", "16", "--in-features", "16", "--out-features", "16", "--activation",
           "identity", "--init", "normal", "--std", "1", "--no-bias", "--batch", "8", "--device", "cpu"]
MODEL = """
import torch
from torch import nn

def make():
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)), torch.randn(6, 5)
"""


def run_json(capsys, *argv: str) -> tuple[dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return json.loads(out), err


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def section(md: str, title: str) -> str:
    """The body of one '## title' section."""
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start:end if end >= 0 else len(md)]


def table_rows(md: str) -> list[list[str]]:
    """The body rows of the first Markdown table in md."""
    lines: list[str] = []
    for ln in md.splitlines():
        if ln.startswith("| "):
            lines.append(ln)
        elif lines:
            break
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[2:]]


# probe and train through the command line ------------------------------------------------------------------------

def test_probe_writes_a_csv_row_and_a_report_row_per_layer(tmp_path, capsys):
    c, m = tmp_path / "layers.csv", tmp_path / "probe.md"
    doc, err = run_json(capsys, "probe", *EXPLODE, "--csv", str(c), "--report", str(m), "--json")
    assert sorted(os.listdir(tmp_path)) == ["layers.csv", "probe.md"]      # no temporary file left
    assert f"wrote {c}" in err and f"wrote {m}" in err
    rows = read_csv(c)
    assert len(rows) == 12 == len(doc["layers"])
    for row, layer in zip(rows, doc["layers"]):
        assert int(row["index"]) == layer["index"] and row["name"] == layer["name"]
        for k in ("a_std", "grad_w_absmean", "grad_z_std", "fwd_var_ratio"):
            assert (row[k] == "" and layer[k] is None) or float(row[k]) == layer[k]
    md = m.read_text()
    v = doc["verdict"]
    assert v["kind"] in ("exploding", "nonfinite")
    assert f"**{v['kind']}** from layer {v['from_layer']}" in section(md, "Verdict")
    per_layer = section(md, "Per-layer statistics")
    body = table_rows(per_layer)
    assert [r[0] for r in body] == [str(i) for i in range(12)]
    head = next(ln for ln in per_layer.splitlines() if ln.startswith("| "))
    cols = [c.strip() for c in head.strip("|").split(" | ")]
    shown = [k for k in ("a_std", "z_std", "grad_w_absmean", "grad_z_std", "fwd_var_ratio") if k in cols]
    assert len(shown) >= 3, cols
    for row, layer in zip(body, doc["layers"]):         # every cell is its layer's value, as fmt writes it
        for k in shown:
            assert row[cols.index(k)] == fmt(layer[k]), (row[0], k)
    settings = dict(r[:2] for r in table_rows(section(md, "Settings")))
    assert settings["depth"] == "12" and settings["init"] == "normal"
    figures = section(md, "Figures")
    assert figures.count("```text") == 3 and "log10 scale" in figures


def test_train_csv_holds_epochs_then_final_layers(tmp_path, capsys):
    c, m = tmp_path / "train.csv", tmp_path / "train.md"
    doc, _ = run_json(capsys, "train", "--depth", "3", "--width", "6", "--epochs", "3", "--n-rows", "60",
                      "--batch", "10", "--device", "cpu", "--csv", str(c), "--report", str(m), "--json")
    rows = read_csv(c)
    epochs = [r for r in rows if r["table"] == "epoch"]
    layers = [r for r in rows if r["table"] == "final_layer"]
    assert len(epochs) + len(layers) == len(rows)
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3]
    assert [float(r["train_loss"]) for r in epochs] == [e["train_loss"] for e in doc["epochs"]]
    assert [int(r["index"]) for r in layers] == [0, 1, 2]
    assert [float(r["a_std"]) for r in layers] == [d["a_std"] for d in doc["final"]["layers"]]
    assert {r["seed"] for r in rows} == {"0"} and {r["run"] for r in rows} == {"0"}
    md = m.read_text()
    outcome = section(md, "Outcome")
    assert "stopped: finished" in outcome and "gradient signal over the final layers: **" in outcome
    assert [r[0] for r in table_rows(outcome[outcome.index("### Epochs"):])] == ["1", "2", "3"]
    final = outcome[outcome.index("### Final per-layer statistics"):]
    assert [r[0] for r in table_rows(final)] == ["0", "1", "2"]
    assert "train loss per epoch" in outcome and sorted(os.listdir(tmp_path)) == ["train.csv", "train.md"]


def test_user_model_report_has_warnings_and_modules(tmp_path, capsys):
    src = tmp_path / "net.py"
    src.write_text(MODEL)
    m = tmp_path / "net.md"
    doc, _ = run_json(capsys, "probe", "--model", f"{src}:make", "--device", "cpu", "--report", str(m), "--json")
    md = m.read_text()
    assert md.startswith(f"# initlab probe report: {src}:make")
    body = table_rows(section(md, "Per-layer statistics"))
    assert [(r[1], r[2]) for r in body] == [("0", "Linear"), ("1", "Tanh"), ("2", "Linear")]
    assert f"**{doc['verdict']['kind']}**" in section(md, "Verdict")


@pytest.mark.parametrize("flag,where,words", [
    ("--report", "missing/r.md", "a file in an existing folder"),
    ("--csv", ".", "a file path, not a folder"),
])
def test_a_bad_output_path_is_refused_before_the_run(tmp_path, capsys, flag, where, words):
    code = main(["probe", *SMALL, flag, str(tmp_path / where)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert os.listdir(tmp_path) == []


def test_two_outputs_naming_one_file_are_refused_before_the_run(tmp_path, capsys):
    """The later write would replace the earlier one's file (a history lost under its CSV): one line, exit 2."""
    os.symlink(tmp_path / "r.md", tmp_path / "link.md")
    for flags, words in ((["--csv", "r.md", "--report", "r.md"], "report: 'r.md' is not allowed; a file other than "
                                                                "--csv's"),
                         (["--save-config", "r.md", "--report", "link.md"], "a file other than --save-config's"),
                         (["--report", ""], "report: '' is not allowed; a file path, not an empty one")):
        code = main(["probe", *SMALL, *[f if f.startswith("--") or not f else str(tmp_path / f) for f in flags]])
        out, err = capsys.readouterr()
        words = words.replace("'r.md'", repr(str(tmp_path / "r.md")))
        assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert os.listdir(tmp_path) == ["link.md"]


def test_an_output_naming_a_file_the_run_reads_is_refused_before_the_run(tmp_path, capsys):
    """--out over the --data file wrote JSON into the data; --csv over the --config or the --model file alike."""
    data = tmp_path / "d.pt"
    torch.save({"X": torch.randn(40, 3), "y": torch.randn(40, 1)}, data)
    cfg = tmp_path / "c.toml"
    cfg.write_text("depth = 2\nwidth = 4\n")
    model = tmp_path / "net.py"
    model.write_text("from torch import nn\n\ndef make():\n    return nn.Linear(3, 2)\n")
    before = {p: p.read_bytes() for p in (data, cfg, model)}
    for argv, out, read in ((["train", "--data", str(data), "--epochs", "1", "--out", str(data)], "out", "--data"),
                            (["train", "--data", str(data), "--epochs", "1", "--save-config", str(data)], "save_config",
                             "--data"),
                            (["probe", "--config", str(cfg), "--csv", str(cfg)], "csv", "--config"),
                            (["probe", "--model", f"{model}:make", "--input-shape", "2,3", "--report", str(model)],
                             "report", "--model")):
        code = main(argv)
        out_, err = capsys.readouterr()
        assert code == 2 and out_ == "" and err.count("\n") == 1, err
        assert err.startswith(f"initlab: error: {out}: ") and f"a file other than {read}'s, which this run reads" in err
    assert {p: p.read_bytes() for p in (data, cfg, model)} == before
    # a sweep's grid of data files, and a model named as a module
    argv = ["sweep", "--train", "--vary", f"data={data},{data}", "--depth", "2", "--epochs", "1", "--csv", str(data)]
    assert main(argv) == 2 and "a file other than --vary's, which this run reads" in capsys.readouterr().err
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["probe", "--model", "net:make", "--input-shape", "2,3", "--report", str(model)]) == 2
    finally:
        sys.path.remove(str(tmp_path))
    assert "a file other than --model's, which this run reads" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (data, cfg, model)} == before
    # a config rewritten by the run that read it holds settings still: allowed
    assert main(["probe", "--config", str(cfg), "--depth", "3", "--save-config", str(cfg), "--json"]) == 0
    capsys.readouterr()
    assert "depth = 3" in cfg.read_text()


# atomic writes ---------------------------------------------------------------------------------------------------

def test_a_failed_write_leaves_the_previous_files_and_no_temporary(tmp_path, capsys, monkeypatch):
    doc, _ = run_json(capsys, "probe", *SMALL, "--json")
    c, m = tmp_path / "p.csv", tmp_path / "p.md"
    c.write_text("old csv\n")
    m.write_text("old report\n")

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "replace", disk_full)
    with pytest.raises(OSError):
        report.write("probe", doc, csv=str(c), report=str(m))
    assert c.read_text() == "old csv\n" and m.read_text() == "old report\n"
    assert sorted(os.listdir(tmp_path)) == ["p.csv", "p.md"]
    monkeypatch.undo()
    assert report.write("probe", doc, csv=str(c), report=str(m)) == [str(c), str(m)]
    assert len(read_csv(c)) == 4 and m.read_text().startswith("# initlab probe report")


def test_a_result_that_cannot_be_rendered_touches_no_file(tmp_path):
    c, m = tmp_path / "p.csv", tmp_path / "p.md"
    c.write_text("kept\n")
    with pytest.raises((TypeError, AttributeError)):
        report.write("probe", {"layers": [None]}, csv=str(c), report=str(m))
    assert c.read_text() == "kept\n" and not m.exists() and os.listdir(tmp_path) == ["p.csv"]


# the other results -----------------------------------------------------------------------------------------------

def test_theory_csv_and_report(capsys):
    doc, _ = run_json(capsys, "theory", "--activation", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.1", "--json")
    (row,) = report.csv_rows("theory", doc)
    assert row["q_star"] == doc["q_star"] and row["chi1"] == doc["chi1"]
    md = report.markdown("theory", doc)
    assert "| chi1 |" in md and "| q_star |" in md
    edge = f"edge of chaos at this sigma_b: sigma_w {fmt(doc['critical_sigma_w'])} " \
           f"(sigma_w^2 {fmt(doc['critical_sigma_w2'])})"
    assert section(md, "Notes").startswith(f"## Notes\n\n- {edge}\n")


def test_a_theory_report_says_what_it_could_not_compute_and_why(capsys):
    doc, _ = run_json(capsys, "theory", "--activation", "tanh", "--sigma-w", "4", "--sigma-b", "3", "--json")
    assert doc["q_star"] > 9 and doc["c_star"] is None and doc["chi1"] > 1
    notes = section(report.markdown("theory", doc), "Notes")
    assert "- c*, chi_c and the forward depth scale are not computed: past q* = 9 the correlation map's quadrature" \
        in notes
    # chi_1 > 1: the backward depth scale is negative, a scale of growth
    # chi_1 multiplies the gradient's mean square: its size grows by e over twice the depth scale
    back = doc["depth_scale_backward"]
    assert f"mean square grows by a factor e every {fmt(-back)} layers towards the input (its size every " \
           f"{fmt(-2 * back)})" in notes
    assert main(["theory", "--activation", "tanh", "--sigma-w", "4", "--sigma-b", "3"]) == 0
    out, _ = capsys.readouterr()
    bullets = [n[2:] for n in notes.splitlines() if n.startswith("- ")]
    assert len(bullets) == 3 and all(b in out for b in bullets)      # the terminal says the same
    # a readout from q0 = 1 that runs off, while a smaller input settles: both said
    gelu, _ = run_json(capsys, "theory", "--activation", "gelu", "--sigma-w", "1.76", "--sigma-b", "0.05", "--json")
    gelu_notes = section(report.markdown("theory", gelu), "Notes")
    assert "- from q0 = 1 the variance grows without bound" in gelu_notes
    assert "at q = 10000 chi_1 is 1.551" in gelu_notes
    assert "- the fixed point depends on the input's scale: from q0 = 0.001 the variance settles at q* 0.01201 " \
           "(chi_1 0.7975, ordered), not q0 = 1's" in gelu_notes
    assert "not computed: they are taken at a finite fixed point q*, and there is none" in gelu_notes


def test_jacobian_csv_and_report(capsys):
    doc, _ = run_json(capsys, "jacobian", "--depth", "3", "--width", "8", "--in-features", "8", "--out-features", "8",
                      "--device", "cpu", "--json")
    rows = report.csv_rows("jacobian", doc)
    assert [r["singular_value"] for r in rows] == doc["singular_values"]
    md = report.markdown("jacobian", doc)
    chart = section(md, "Figures")
    counts = [int(ln.rsplit("| ", 1)[1]) for ln in chart.splitlines() if ln.count("|") == 2]
    assert sum(counts) == len(doc["singular_values"])
    assert "condition_number" in section(md, "Spectrum")
    zero, _ = run_json(capsys, "jacobian", "--depth", "3", "--width", "8", "--in-features", "4", "--out-features", "4",
                       "--init", "zeros", "--device", "cpu", "--json")
    md = report.markdown("jacobian", zero)
    assert "| condition_number | undefined (the Jacobian is zero) |" in section(md, "Spectrum")
    assert "| zeros (not in the histogram) | 4 |" in section(md, "Spectrum")
    assert section(md, "Figures").strip() == "## Figures\n\nNo singular value above zero or the resolution to bin."


def test_widths_csv_has_a_row_per_width_step_and_layer(capsys):
    doc, _ = run_json(capsys, "widths", "--widths", "8,16", "--depth", "2", "--steps", "1", "--device", "cpu",
                      "--json")
    rows = report.csv_rows("widths", doc)
    assert len(rows) == 2 * 2 * 2
    first = next(r for r in rows if r["width"] == 16 and r["step"] == 1 and r["layer"] == 1)
    assert first["mean_abs_a"] == doc["mean_abs_a"][1][1][1]
    md = report.markdown("widths", doc)
    assert "## Slopes" in md and md.count("```text") == 2 * len(doc["layer_names"])


def test_sweep_csv_and_heatmap(capsys):
    doc, _ = run_json(capsys, "sweep", "--vary", "depth=2,3", "--vary", "init=xavier_uniform,kaiming_normal",
                      "--width", "6", "--in-features", "6", "--out-features", "6", "--batch", "8", "--device", "cpu",
                      "--json")
    rows = report.csv_rows("sweep", doc)
    assert [(r["depth"], r["init"]) for r in rows] == [(p["depth"], p["init"]) for p in doc["points"]]
    md = report.markdown("sweep", doc)
    assert [r[0] for r in table_rows(section(md, "Verdicts"))] == ["2", "2", "3", "3"]
    assert report.heatmap_text(doc["heatmap"]) in section(md, "Heatmap")       # as the terminal prints it
    assert "(init down, depth across)" in section(md, "Heatmap")


def test_a_seed_sweeps_report_labels_points_by_their_settings_and_counts_verdicts_in_words(capsys):
    doc, _ = run_json(capsys, "sweep", "--vary", "depth=2,3", "--vary", "seed=0,1", "--width", "6", "--in-features",
                      "6", "--out-features", "6", "--batch", "8", "--device", "cpu", "--json")
    rows = report.csv_rows("sweep", doc)
    assert [r["verdicts"] for r in rows] == [", ".join(f"{k} {n}" for k, n in p["verdicts"].items())
                                             for p in doc["points"]]
    md = report.markdown("sweep", doc)
    assert "seed=None" not in md and "depth=2 |" in section(md, "Figures") and "{" not in section(md, "Verdicts")


# text figures ----------------------------------------------------------------------------------------------------

def bars(chart: str) -> list[int]:
    return [ln.split("|")[1].count("#") for ln in chart.splitlines() if ln.count("|") == 2]


def test_log_bars_grow_with_the_decades():
    chart = bar_chart(["a", "b", "c", "d", "e"], [1e-3, 1e-2, 1e-1, 1.0, None], width=31, log=True)
    assert bars(chart) == [1, 11, 21, 31, 0]
    assert chart.splitlines()[4].endswith("| -") and "log10 scale, 0.001 to 1" in chart


def test_linear_bars_start_at_zero_both_ways():
    chart = bar_chart(["neg", "pos", "zero"], [-1.0, 3.0, 0.0], width=40)
    lines = chart.splitlines()
    assert bars(chart) == [10, 30, 0]
    assert lines[0].split("|")[1].rstrip() == "#" * 10                 # left of zero
    assert lines[1].split("|")[1] == " " * 10 + "#" * 30


def test_a_narrow_spread_still_spans_a_decade():
    assert bars(bar_chart(["a", "b"], [0.5, 1.0], width=21, log=True)) == [15, 21]


def test_the_sweep_reports_heatmap_is_the_terminals():
    """Axes as sigma_w^2 and sigma_b^2 with their labels written as numbers are (0.5, not 0.7071067811865476), and
    the edge-of-chaos line the terminal prints under it."""
    hm = {"x_field": "sigma_w", "y_field": "sigma_b", "x": [math.sqrt(0.5), 1.0], "y": [0.0, math.sqrt(0.05)],
          "metric": "log10_gradz_ratio", "values": [[-1.5, None], [1e-5, 2.0]]}
    res = {"mode": "probe", "vary": {"sigma_w": hm["x"], "sigma_b": hm["y"]}, "done": 3, "total": 4, "base": {},
           "points": [], "heatmap": hm, "critical_line": [{"sigma_b2": 0.0, "sigma_w2": 1.0},
                                                         {"sigma_b2": 0.05, "sigma_w2": 1.1}]}
    text = report.heatmap_text(hm).splitlines()
    assert text[0] == "log10_gradz_ratio (sigma_b^2 down, sigma_w^2 across)"
    assert text[1].split() == ["0.5", "1"] and text[2].split() == ["0", "-1.5", "-"]
    assert text[3].split() == ["0.05", "1.000e-05", "2"]
    md = report.sweep_markdown(res).split("## Heatmap")[1]
    assert "\n".join(text) in md
    assert "edge of chaos (chi_1 = 1): sigma_b^2 0 -> sigma_w^2 1; sigma_b^2 0.05 -> sigma_w^2 1.1" in md


def test_report_fixes_from_reading_every_output(tmp_path, capsys):
    # a sweep's Verdicts table has every key a point has, as the CSV does (not only the first point's)
    res = {"mode": "train", "vary": {"lr": [0.001, 1000.0]}, "done": 2, "total": 2, "base": {},
           "points": [{"lr": 0.001, "verdict": "stable"}, {"lr": 1000.0, "verdict": "nonfinite", "nonfinite_runs": 1}]}
    assert "nonfinite_runs" in report.sweep_markdown(res).split("## Verdicts")[1].splitlines()[2]
    # a training that stopped short says whose statistics its last table holds
    doc, _ = run_json(capsys, "train", "--depth", "3", "--width", "8", "--epochs", "1", "--lr", "1e6",
                      "--stats-every", "3", "--json")
    md = report.markdown("train", doc)
    assert doc["stopped"] == "nonfinite" and "### Final per-layer statistics" not in md
    assert f"### Per-layer statistics of the last sampled step (step {doc['steps'][-1]['step']}; the run stopped " \
           f"nonfinite)" in md
    # the Jacobian's report counts the values its histogram leaves out
    jac = {"singular_values": [1.0, 1e-20], "histogram": {"edges": [0.0, 0.1], "counts": [1], "zeros": 0,
                                                          "unresolved": 1, "log10": True}, "numerical_rank": 1}
    assert "| unresolved (not in the histogram) | 1 |" in report.markdown("jacobian", jac)


def test_a_saved_training_config_reloads_without_notes_and_with_its_data_found_anywhere(tmp_path, capsys,
                                                                                         monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32),
             y=np.zeros(40, dtype=np.float32))
    saved = tmp_path / "t.toml"
    assert main(["train", "--data", "d.npz", "--depth", "2", "--width", "4", "--epochs", "1", "--json",
                 "--save-config", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert f'data = "{tmp_path / "d.npz"}"' in saved.read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--config", str(saved), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "note" not in err and json.loads(out)["epochs"] == first["epochs"]


@pytest.mark.parametrize("argv, key", [
    (["widths", "--widths", "16,32", "--steps", "2", "--depth", "3"], "mean_abs_a"),
    (["sweep", "--vary", "sigma_w=0.5,1", "--vary", "seed=0,1", "--init", "scaled_normal", "--depth", "4",
      "--width", "8", "--in-features", "8", "--out-features", "8"], "points"),
    (["jacobian", "--depth", "4", "--width", "32", "--inputs", "3", "--bins", "5"], "histogram"),
])
def test_a_commands_own_settings_are_saved_and_read_back(tmp_path, capsys, argv, key):
    """widths' widths and steps, a sweep's grid, the Jacobian's inputs and bins go into --save-config and come back
    with --config; a flag given beside the file wins; the other commands pass over them."""
    saved = tmp_path / "own.toml"
    assert main([*argv, "--device", "cpu", "--json", "--save-config", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([argv[0], "--config", str(saved), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    pick = lambda doc: [p["log10_gradz_ratio"] for p in doc["points"]] if key == "points" else doc[key]
    assert pick(again) == pick(first)
    assert main(["probe", "--config", str(saved), "--json"]) == 0
    capsys.readouterr()
    if argv[0] == "widths":
        assert main(["widths", "--config", str(saved), "--widths", "8,16", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["widths"] == [8, 16]


def test_csv_cells_tell_an_infinite_value_from_a_missing_one():
    text = export.csv_text([{"a": float("inf"), "b": None, "c": float("nan"), "d": -float("inf"), "e": 1.5}])
    row = next(csv.DictReader(text.splitlines()))
    assert row == {"a": "inf", "b": "", "c": "nan", "d": "-inf", "e": "1.5"}
    assert float(row["a"]) == float("inf")


def test_widths_outputs_carry_the_loss_and_the_move_slopes(tmp_path, capsys):
    c, m = tmp_path / "w.csv", tmp_path / "w.md"
    doc, _ = run_json(capsys, "widths", "--widths", "16,32", "--steps", "2", "--depth", "3", "--device", "cpu",
                      "--csv", str(c), "--report", str(m), "--json")
    rows = list(csv.DictReader(c.read_text().splitlines()))
    for r in rows:
        wi = doc["widths"].index(int(r["width"]))
        assert float(r["loss"]) == doc["loss"][wi][int(r["step"])]
    md = m.read_text()
    assert "## Loss" in md and "log-log slope of mean |a - a_0|" in md
    assert report.fmt(doc["delta_slopes"][2][0]) in md.split("mean |a - a_0|")[1]


def test_report_labels_read_as_the_tables_do(capsys, tmp_path):
    m = tmp_path / "s.md"
    run_json(capsys, "sweep", "--vary", "sigma_w=1,2", "--init", "scaled_normal", *SMALL, "--report", str(m), "--json")
    assert "sigma_w=1 |" in m.read_text() and "sigma_w=1.0" not in m.read_text()
    run_json(capsys, "sweep", "--vary", "seed=0,1", *SMALL, "--report", str(m), "--json")
    assert "all seeds |" in m.read_text()
    doc, _ = run_json(capsys, "train", "--preset", "seed-sensitivity", "--epochs", "1", "--json")
    md = report.markdown("train", doc)
    assert "| seed | 420, 29 |" in md and "train_acc" not in md          # a regression has no accuracy
    assert report.layer_figures([{"index": 0, "name": "0", "a_std": 1.0}]).count("0 0") == 0


# what a read of every file the commands write found ----------------------------------------------------------------

def test_a_training_stopped_before_any_epoch_ended_keeps_the_csvs_epoch_columns(tmp_path, capsys):
    path = tmp_path / "t.csv"
    code = main(["train", "--lr", "1e6", "--epochs", "2", "--device", "cpu", "--csv", str(path), "--json"])
    doc = json.loads(capsys.readouterr()[0])
    assert code == 1 and doc["epochs"] == [] and doc["final"]["layers"]
    with open(path, newline="") as fh:
        header = next(csv.reader(fh))
    assert header[:8] == ["table", "run", "seed", *report.EPOCH_COLUMNS]     # as a run whose epochs ended has it
    assert all(r["epoch"] == "" for r in read_csv(path))


def test_the_width_checks_report_gives_its_steps_and_only_the_settings_it_reads(capsys):
    doc, _ = run_json(capsys, "widths", "--widths", "8,16", "--depth", "2", "--steps", "3", "--device", "cpu",
                      "--json")
    settings = section(report.markdown("widths", doc), "Settings")
    assert "| steps | 3 |" in settings and "| optimizer | sgd |" in settings and "| depth | 2 |" in settings
    names = [r[0] for r in table_rows(settings.split("Base settings:")[1])]
    assert names and not {"width", "epochs", "stats_every", "schedule", "loss", "target", "data", "n_rows"} & set(names)
    assert "lr" in names and "init" in names and "batch" in names


def test_the_jacobian_outputs_give_bins_and_inputs_and_which_values_are_resolved(capsys):
    doc, _ = run_json(capsys, "jacobian", "--depth", "6", "--width", "8", "--in-features", "8", "--out-features", "8",
                      "--activation", "relu", "--init", "zeros", "--no-bias", "--bins", "7", "--device", "cpu", "--json")
    md = report.markdown("jacobian", doc)
    assert "| bins | 7 |" in section(md, "Settings") and "| inputs | 1 |" in section(md, "Settings")
    assert section(md, "Spectrum").splitlines()[2] == "| figure | value |"
    rows = report.csv_rows("jacobian", doc)
    assert [r["resolved"] for r in rows] == [s > 0 and s >= doc["resolution"] for s in doc["singular_values"]]
    ok, _ = run_json(capsys, "jacobian", "--depth", "2", "--width", "8", "--in-features", "4", "--out-features", "4",
                     "--device", "cpu", "--json")
    assert all(r["resolved"] is True for r in report.csv_rows("jacobian", ok))


def test_a_theory_report_parts_its_settings_from_its_figures(capsys):
    doc, _ = run_json(capsys, "theory", "--activation", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.1", "--json")
    md = report.markdown("theory", doc)
    assert [r[0] for r in table_rows(section(md, "Settings"))] == ["activation", "sigma_w", "sigma_b"]
    figures = section(md, "Figures")
    assert figures.splitlines()[2] == "| figure | value |" and "| chi1 |" in figures and "| sigma_w |" not in figures


def test_a_sweep_counts_zero_nonfinite_runs_and_says_its_spread_is_a_sample_std(capsys):
    doc, _ = run_json(capsys, "sweep", "--vary", "seed=0,1,2", *SMALL, "--json")
    (point,) = doc["points"]
    assert point["nonfinite_runs"] == 0 and report.csv_rows("sweep", doc)[0]["nonfinite_runs"] == 0
    values = [r["last_a_std"] for r in doc["runs"]]
    m = sum(values) / 3
    assert point["last_a_std_std"] == pytest.approx(math.sqrt(sum((v - m) ** 2 for v in values) / 2), rel=1e-12)
    assert "`_std`: the sample std (n - 1) of the seeds' values" in section(report.markdown("sweep", doc), "Verdicts")
    one, _ = run_json(capsys, "sweep", "--vary", "depth=2,3", *SMALL, "--json")
    assert "sample std" not in report.markdown("sweep", one)


def test_a_linear_chart_of_negative_values_says_where_zero_is():
    chart = bar_chart(["a", "b"], [-0.5, -1.0], width=20)
    lines = chart.splitlines()
    assert lines[0].split("|")[1] == " " * 10 + "#" * 10 and lines[1].split("|")[1] == "#" * 20
    assert lines[2].strip() == "linear scale, -1 to 0: bars grow from 0, to the left (every value is negative)"
    assert "linear scale" in bar_chart(["a", "b"], [-1.0, 3.0]) and "linear scale" not in bar_chart(["a"], [3.0])


def test_written_files_are_named_as_the_user_gave_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_json(capsys, "probe", *SMALL, "--csv", "p.csv", "--report", "p.md", "--json")
    code = main(["probe", *SMALL, "--csv", "p.csv", "--report", "p.md", "--json"])
    err = capsys.readouterr()[1]
    assert code == 0 and err.splitlines()[-2:] == ["wrote p.csv", "wrote p.md"]


def test_reports_state_the_zero_init_lesson(capsys):
    """The symmetry note the terminal and the app's log give, in the Markdown reports too."""
    doc, _ = run_json(capsys, "train", "--preset", "zero-init-symmetry", "--epochs", "1", "--json")
    assert "end state: symmetry: layer 0 has 1 distinct unit of 2" in report.markdown("train", doc)
    doc, _ = run_json(capsys, "probe", "--init", "zeros", "--depth", "3", "--width", "4", "--device", "cpu", "--json")
    assert "symmetry: layer 0 has 1 distinct unit of 4, layer 1 1 of 4" in report.markdown("probe", doc)
    doc, _ = run_json(capsys, "probe", "--depth", "3", "--width", "4", "--device", "cpu", "--json")
    assert "symmetry" not in report.markdown("probe", doc)


def test_a_label_with_a_newline_stays_one_row_of_a_text_chart():
    from initlab.engine.textplot import bar_chart

    rows = bar_chart(["out\nx", "in|proj"], [1.0, 10.0], log=True).splitlines()
    assert rows[0].lstrip().startswith("out x |") and rows[1].lstrip().startswith("in|proj |")
