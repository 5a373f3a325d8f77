"""Width check: records against a hand-written training loop, known behaviours, `initlab widths`.

Flat lines at init under Kaiming, the Xavier first layer's known shrinkage, Adam's width-proportional output update.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from initlab.engine.models import build_mlp
from initlab.engine.spec import Config, SpecError
from initlab.engine.spec import parse_widths
from initlab.engine.widths import fixed_batch, loglog_slope, width_check
from initlab.tui.cli import main

WIDTHS = [64, 128, 256, 512, 1024]


def net(**kw) -> Config:
    base = dict(depth=3, in_features=16, out_features=16, batch=64, activation="relu", init="kaiming_normal",
                optimizer="sgd", lr=1e-3, device="cpu", seed=0)
    return Config(**{**base, **kw})


def test_records_match_a_hand_written_training_loop():
    cfg = net(optimizer="sgd", lr=0.05, momentum=0.5, activation="tanh", init="xavier_normal")
    res = width_check(cfg, [24, 40], steps=3)
    for i, w in enumerate([24, 40]):
        c = cfg.replace(width=w)
        x, y = fixed_batch(c, torch.device("cpu"))
        torch.manual_seed(c.seed)
        model = build_mlp(c, torch.device("cpu"))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
        first = None
        for t in range(4):
            acts, h = [], x
            for b in model.blocks:
                h = b(h)
                acts.append(h)
            loss = torch.nn.functional.mse_loss(h, y)
            first = first or [a.detach().clone() for a in acts]
            assert res["mean_abs_a"][i][t] == pytest.approx([float(a.detach().abs().mean()) for a in acts], rel=1e-5)
            assert res["mean_abs_delta"][i][t] == pytest.approx(
                [float((a.detach() - a0).abs().mean()) for a, a0 in zip(acts, first)], rel=1e-4, abs=1e-7)
            assert res["loss"][i][t] == pytest.approx(float(loss.detach()), rel=1e-5)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert res["loss"][0][3] < res["loss"][0][0]       # it did train
    assert res["mean_abs_delta"][0][0] == [0.0, 0.0, 0.0]


def test_with_dropout_the_records_are_of_a_forward_without_it():
    # each training forward draws new masks: read from it, |a - a_0| would show the masks, not the learning
    cfg = net(dropout=0.5, lr=0.05)
    res = width_check(cfg, [24, 40], steps=2)
    c = cfg.replace(width=24)
    x, y = fixed_batch(c, torch.device("cpu"))
    torch.manual_seed(c.seed)
    model = build_mlp(c, torch.device("cpu"))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    first = None
    for t in range(3):
        model.eval()
        with torch.no_grad():
            acts, h = [], x
            for b in model.blocks:
                h = b(h)
                acts.append(h)
        first = first or acts
        assert res["mean_abs_a"][0][t] == pytest.approx([float(a.abs().mean()) for a in acts], rel=1e-5)
        assert res["mean_abs_delta"][0][t] == pytest.approx(
            [float((a - a0).abs().mean()) for a, a0 in zip(acts, first)], rel=1e-4, abs=1e-7)
        assert res["loss"][0][t] == pytest.approx(float(torch.nn.functional.mse_loss(h, y)), rel=1e-5)
        model.train()
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    still = width_check(net(dropout=0.5, lr=1e-9), [24, 40], steps=2)
    assert max(max(row) for w in still["mean_abs_delta"] for row in w) < 1e-6


def test_loglog_slope_is_the_exponent():
    assert loglog_slope(WIDTHS, [3.0 * w ** 0.5 for w in WIDTHS]) == pytest.approx(0.5)
    assert loglog_slope(WIDTHS, [2.0] * 5) == pytest.approx(0.0)
    assert loglog_slope(WIDTHS, [None, 0.0, float("nan"), 1.0, None]) is None


def test_kaiming_standard_parametrisation_is_flat_in_width_at_init():
    res = width_check(net(), WIDTHS, steps=0)
    for layer in range(3):
        vals = [res["mean_abs_a"][i][0][layer] for i in range(len(WIDTHS))]
        assert max(vals) / min(vals) < 1.6
        assert abs(res["slopes"][0][layer]) < 0.15


def test_xavier_first_layer_shrinks_with_width_when_the_input_size_is_fixed():
    # Var(W) = 2 / (16 + w): the first layer's output std is sqrt(2 / (16 + w)) times the input row norm
    cfg = net(activation="identity", init="xavier_uniform", gain=1.0)
    res = width_check(cfg, WIDTHS, steps=0)
    x, _ = fixed_batch(cfg, torch.device("cpu"))
    row_norm = float(x.norm(dim=1).mean())
    for i, w in enumerate(WIDTHS):
        expected = math.sqrt(2 / math.pi) * math.sqrt(2 / (16 + w)) * row_norm
        assert res["mean_abs_a"][i][0][0] == pytest.approx(expected, rel=0.05)
    assert res["slopes"][0][0] < -0.3


def test_adam_under_standard_parametrisation_moves_the_output_in_proportion_to_width():
    # Adam's first update has entries of size lr whatever the width, so the output moves by about lr * width;
    # the first layer's fan-in is the fixed input size, so its change does not grow
    res = width_check(net(optimizer="adam", lr=1e-4), WIDTHS, steps=1)
    out_change = [res["mean_abs_delta"][i][1][-1] for i in range(len(WIDTHS))]
    assert out_change[-1] / out_change[0] > 8
    assert res["delta_slopes"][1][-1] > 0.8
    assert abs(res["delta_slopes"][1][0]) < 0.2


def test_widths_refusals():
    assert parse_widths("64, 128") == [64, 128]
    for raw in ("64", "64,abc", "64,64", "0,64"):
        with pytest.raises(SpecError, match="widths"):
            parse_widths(raw)
    with pytest.raises(SpecError, match="steps"):
        width_check(net(), [8, 16], steps=-1)


def test_widths_json(capsys):
    assert main(["widths", "--widths", "8,16,32", "--steps", "2", "--depth", "3", "--in-features", "4",
                 "--out-features", "2", "--batch", "8", "--device", "cpu", "--json"]) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert doc["widths"] == [8, 16, 32] and doc["steps"] == 2 and doc["layers"] == 3
    assert len(doc["mean_abs_a"]) == 3 and len(doc["mean_abs_a"][0]) == 3 and len(doc["mean_abs_a"][0][0]) == 3
    assert len(doc["slopes"]) == 3 and len(doc["slopes"][0]) == 3


def test_widths_text_and_refusal(capsys):
    assert main(["widths", "--widths", "8,16", "--steps", "1", "--depth", "2", "--in-features", "4",
                 "--out-features", "2", "--batch", "8", "--device", "cpu"]) == 0
    out, _ = capsys.readouterr()
    assert "mean |a| at step 0" in out and "w=16" in out and "slope" in out and "after 1 step\n" in out
    assert main(["widths", "--steps", "few"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "steps" in err


def test_widths_job_on_a_session_reports_each_width():
    from initlab.engine.events import Finished, Progress
    from initlab.engine.session import Session
    from initlab.engine.jobs import WidthsJob

    events = []
    session = Session(events.append)
    cfg = net(depth=2, in_features=4, out_features=2, batch=8)
    session.start(WidthsJob(cfg, (8, 16, 32), steps=1))
    assert session.wait(60)
    assert [(e.step, e.total_steps) for e in events if isinstance(e, Progress)] == [(1, 3), (2, 3), (3, 3)]
    done = [e for e in events if isinstance(e, Finished)][0].result
    assert done["mean_abs_a"] == width_check(cfg, [8, 16, 32], steps=1)["mean_abs_a"]


def test_a_width_check_stops_within_a_width():
    # one width of many steps: a stop waited for the width to end (seconds, at the widths a check is for)
    import threading
    import time

    from initlab.engine.events import Cancelled
    from initlab.engine.session import Session
    from initlab.engine.jobs import WidthsJob

    events = []
    session = Session(events.append)
    session.start(WidthsJob(net(depth=3, in_features=4, out_features=2, batch=8), (1024, 2048), steps=1000))
    time.sleep(0.5)         # inside the first width's steps (1000 of them at 1024 take seconds here)
    t0 = time.perf_counter()
    assert session.cancel(wait=True)
    assert time.perf_counter() - t0 < 0.5 and isinstance(events[-1], Cancelled)
    assert not [t for t in threading.enumerate() if t.name.startswith("initlab")]


@pytest.mark.parametrize("flag, value", [("--width", "32"), ("--epochs", "3"), ("--stats-every", "2"),
                                         ("--loss", "mse"), ("--target", "2"), ("--schedule", "cosine")])
def test_widths_refuses_the_flags_it_would_ignore(capsys, tmp_path, flag, value):
    assert main(["widths", "--widths", "8,16", flag, value]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "not with widths" in err
    assert err.startswith(f"initlab: error: {flag[2:].replace('-', '_')}: ")


def test_widths_help_leaves_out_the_flags_it_refuses(capsys):
    with pytest.raises(SystemExit):
        main(["widths", "--help"])
    text = capsys.readouterr().out
    assert "--widths" in text and "--lr" in text and "--depth" in text
    for flag in ("--width ", "--epochs", "--stats-every", "--loss", "--target", "--schedule"):
        assert flag not in text, flag


def test_a_config_saved_by_widths_or_probe_loads_into_widths(capsys, tmp_path):
    """A config file holds every setting, width and epochs among them: widths passes over those it does not read."""
    saved = tmp_path / "w.toml"
    args = ["--depth", "3", "--widths", "8,16", "--steps", "1", "--json"]
    assert main(["widths", *args, "--save-config", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert "width = " in saved.read_text()
    assert main(["widths", "--config", str(saved), "--widths", "8,16", "--steps", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_abs_a"] == first["mean_abs_a"]
    probe_saved = tmp_path / "p.toml"
    assert main(["probe", "--depth", "3", "--width", "8", "--json", "--save-config", str(probe_saved)]) == 0
    capsys.readouterr()
    assert main(["widths", "--config", str(probe_saved), "--widths", "8,16", "--steps", "1", "--json"]) == 0


def test_a_width_that_goes_non_finite_gets_a_note_naming_when(capsys):
    """The table's nan cells say a width blew up; the note says when: at its initialisation or after some steps."""
    assert main(["widths", "--depth", "3", "--widths", "8,16", "--steps", "3", "--lr", "1e9", "--init", "normal",
                 "--std", "100", "--activation", "identity", "--json"]) == 1         # as a training that blew up
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert "width" not in doc["config"] and doc["config"]["depth"] == 3       # the widths are the run's own
    assert [nf["width"] for nf in doc["nonfinite"]] == [8, 16]              # the files say it too
    from initlab.engine import report

    assert "## Non-finite\n\n- width 8 is non-finite after " in report.markdown("widths", doc)
    notes = err.splitlines()
    assert len(notes) == 2 and all(n.startswith("initlab: note: width ") for n in notes)
    for w, note in zip((8, 16), notes):
        i = doc["widths"].index(w)
        bad = lambda v: v is None or not math.isfinite(v)
        t = next(t for t, row in enumerate(doc["mean_abs_a"][i]) if any(map(bad, row)) or bad(doc["loss"][i][t]))
        assert {nf["width"]: nf["step"] for nf in doc["nonfinite"]}[w] == t
        assert f"width {w} is non-finite after {t} step{'s' if t > 1 else ''}" in note
        assert t > 0 and "a smaller lr" in note
    assert main(["widths", "--depth", "3", "--widths", "8,16", "--steps", "1", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_a_width_check_of_one_layer_is_refused(capsys):
    from initlab.tui.cli import main

    assert main(["widths", "--depth", "1", "--in-features", "3", "--out-features", "2", "--steps", "1",
                 "--widths", "4,8", "--batch", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == "initlab: error: depth: '1' is not allowed; at least 2 for a width check: a net of one layer has " \
                  "no hidden width\n"


@pytest.mark.parametrize("argv,step,fix", [
    # outputs of some 1e20 stay finite in float32; their squared error does not
    (["--depth", "4", "--widths", "8,16", "--steps", "0", "--activation", "relu", "--init", "normal", "--std", "1e5"],
     0, "another init, or a smaller scale"),
    (["--depth", "4", "--widths", "8,16", "--steps", "1", "--lr", "1e-9", "--activation", "relu", "--init", "normal",
      "--std", "1e5"], 0, "another init, or a smaller scale"),
])
def test_a_loss_that_overflows_while_the_outputs_stay_finite_is_non_finite_too(capsys, argv, step, fix):
    assert main(["widths", *argv, "--json"]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert all(math.isfinite(v) for v in doc["mean_abs_a"][0][0])          # every output finite at step 0
    assert doc["loss"][0][0] is None or not math.isfinite(doc["loss"][0][0])
    assert doc["nonfinite"] == [{"width": w, "step": step, "layer": None, "tensor": "loss"} for w in (8, 16)]
    assert "width 8 is non-finite at step 0, before training (its loss" in err and fix in err
