"""Pilot tests of the app's views past the textbook, each run on the engine and checked against it.

Sweeps (a grid, the edge of chaos, a cancel that keeps the points done), the mean-field readout, the Jacobian
spectrum, the width check and the user's own model.
"""
from __future__ import annotations

import math
import textwrap
import time

import pytest

from initlab.engine import sweep
from initlab.engine.anyprobe import run_user_probe
from initlab.engine.jacobian import jacobian_spectrum
from initlab.engine.spec import Config, SpecError
from initlab.engine.theory import mean_field
from initlab.engine.usermodel import make_spec
from initlab.engine.widths import width_check
from initlab.tui.app import InitlabApp
from initlab.tui.widgets.sweep_chart import LINE, SweepData

from apphelp import SMALL, make_app, palette_commands, pilot_test, settle

# the edge-of-chaos net, shrunk: 16 tanh layers of 32, scaled-normal weights and biases
CHAOS = Config(depth=16, width=32, in_features=32, out_features=32, activation="tanh", init="scaled_normal",
               bias=True, batch=16, device="cpu", seed=0)





@pilot_test
async def test_sweep_of_the_vary_field_fills_table_and_heatmap_with_the_engines_numbers():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("vary", "depth=2,4 init=xavier_uniform,orthogonal")
        await pilot.press("8")                  # the Sweep tab
        await pilot.pause()
        assert app.charts.active == "sweep"
        await pilot.press("r")                  # run this view's experiment
        await settle(pilot, app)
        data: SweepData = app.charts.chart("sweep").data
        s = data.summary
        assert data.state == "finished" and s["done"] == s["total"] == 4 and app.last_kind == "sweep"
        vary = {"depth": [2, 4], "init": ["xavier_uniform", "orthogonal"]}
        ref = sweep.aggregate(list(sweep.sweep(SMALL, vary)))
        assert [(p["depth"], p["init"], p["verdict"]) for p in s["points"]] == \
            [(p["depth"], p["init"], p["verdict"]) for p in ref]
        assert [p["first_last_gradz_ratio"] for p in s["points"]] == \
            pytest.approx([p["first_last_gradz_ratio"] for p in ref], rel=1e-6)
        assert [p["last_a_std"] for p in s["points"]] == pytest.approx([p["last_a_std"] for p in ref], rel=1e-6)
        hm = s["heatmap"]
        assert (hm["x_field"], hm["y_field"]) == ("depth", "init")
        assert hm["values"][1][0] == pytest.approx(math.log10(ref[1]["first_last_gradz_ratio"]))
        text = app.charts.chart("sweep").render().plain
        assert "init down, depth across" in text and "dL/dz first/last" in text and "4/4 points" in text
        # the numbers key shows one row per point
        await pilot.press("n")
        await pilot.pause()
        cols, rows = app.charts.query_one("#numbers").shown
        assert cols[:3] == ["depth", "init", "verdict"] and len(rows) == 4
        assert any(m.startswith("[4/4] depth=4 init=orthogonal") for m in app.log_pane.messages())
        assert "sweep depth x init: 4 points" in app.log_pane.messages()
        # a new sweep clears the tab at once: the last one's points are not shown as if they were its own
        await pilot.press("n")
        app.extras.set_value("vary", "depth=3,5,6")
        app.action_sweep("field")
        data = app.charts.chart("sweep").data
        assert data.state == "starting" and data.summary["done"] == 0 and data.summary["total"] == 3
        assert data.summary["points"] == [] and "0/3 points" in app.charts.chart("sweep").render().plain
        assert app.log_pane.messages()[-1] == "sweep depth: 3 points"
        await settle(pilot, app)
        assert app.charts.chart("sweep").data.summary["done"] == 3


@pilot_test
async def test_sweep_runs_train_sweeps_trainings_the_refusal_of_a_probe_sweep_points_to():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("vary", "lr=0.01,0.1")
        assert "a training does (sweep_runs train)" in str(app.extras.query_one(".error-vary").render())
        app.extras.set_value("sweep_runs", "trains")
        assert str(app.extras.query_one(".error-sweep_runs").render()) == "'trains' is not allowed; one of probe, train"
        app.extras.set_value("sweep_runs", "train")
        assert not app.extras.query_one(".error-vary").display       # the grid is read by trainings
        cfg = app.form.config().replace(epochs=1, n_rows=100)
        for name in ("epochs", "n_rows"):
            app.form.widget_for(name).value = str(getattr(cfg, name))
        await pilot.pause()
        await pilot.press("8", "r")
        await settle(pilot, app)
        s = app.charts.chart("sweep").data.summary
        assert s["mode"] == "train" and s["done"] == s["total"] == 2
        ref = sweep.aggregate(list(sweep.sweep(app.form.config(), {"lr": [0.01, 0.1]}, train=True)))
        assert [p["test_loss"] for p in s["points"]] == pytest.approx([p["test_loss"] for p in ref], rel=1e-9)
        assert "sweep lr: 2 points, a training at each" in app.log_pane.messages()
        assert "test loss" in app.charts.chart("sweep").render().plain


@pilot_test
async def test_depth_x_init_from_the_palette_sweeps_the_configured_net():
    app = make_app(SMALL.replace(width=8, in_features=8, out_features=8, batch=4))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        commands = palette_commands(app)
        assert {"Sweep: depth x init", "Sweep: the vary field", "Sweep: edge-of-chaos-tanh", "Jacobian spectrum",
                "Width check", "Sweep (8)", "Jacobian (9)", "Widths (0)"} <= set(commands)
        commands["Sweep: depth x init"]()
        await settle(pilot, app, timeout=120)
        s = app.charts.chart("sweep").data.summary
        assert s["vary"] == {"depth": [5, 10, 20, 40], "init": ["xavier_uniform", "kaiming_normal", "orthogonal"]}
        assert s["complete"] and len(s["points"]) == 12 and s["base"]["width"] == 8
        assert app.charts.active == "sweep" and app.run_state == "idle"


@pilot_test
async def test_phase_diagram_draws_the_critical_line_where_the_measured_ratio_changes_sign():
    app = make_app(CHAOS)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        sw2, sb2 = [0.5, 1.0, 1.5, 2.5, 4.0], [0.0, 0.3]
        app.extras.set_value("vary", "sigma_w=" + ",".join(repr(math.sqrt(v)) for v in sw2)
                             + " sigma_b=" + ",".join(repr(math.sqrt(v)) for v in sb2))
        await pilot.press("8", "r")
        await settle(pilot, app)
        s = app.charts.chart("sweep").data.summary
        line = {round(d["sigma_b2"], 9): d["sigma_w2"] for d in s["critical_line"]}
        # tanh without bias is critical at sigma_w^2 = 1 (q* = 0); a bias moves the edge to larger sigma_w^2
        assert line[0.0] == pytest.approx(1.0, abs=1e-6) and line[0.3] > 1.5
        rows = s["heatmap"]["values"]
        for j, b2 in enumerate(sb2):
            crit = line[round(b2, 9)]
            for i, w2 in enumerate(sw2):
                # margins past 1.5x, so that a point on the margin (1.5 against a line at 1 - 4e-16) is not tested
                if w2 < crit / 1.5 * (1 - 1e-6):
                    assert rows[j][i] < 0, (w2, b2)     # ordered: the gradient shrinks towards the input
                if w2 > crit * 1.5 * (1 + 1e-6):
                    assert rows[j][i] > 0, (w2, b2)     # chaotic: it grows
        text = app.charts.chart("sweep").render().plain.splitlines()
        heat = [ln for ln in text if ln.lstrip().startswith(("0 ", "0.3 "))]
        assert len(heat) == 2 and all(LINE in ln for ln in heat)
        # the mark sits further right (larger sigma_w^2) in the row with the bias
        assert heat[1].index(LINE) > heat[0].index(LINE)
        assert any("chi_1 = 1" in ln for ln in text)


@pilot_test
async def test_stopping_the_edge_of_chaos_preset_keeps_the_points_done():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        palette_commands(app)["Sweep: edge-of-chaos-tanh"]()
        preset = sweep.SWEEP_PRESETS["edge-of-chaos-tanh"]
        t0 = time.monotonic()
        while not (app.charts.chart("sweep").has_data() and app.charts.chart("sweep").data.summary["done"] >= 1):
            await pilot.pause(0.05)
            assert time.monotonic() - t0 < 60
        assert app.run_state.startswith("sweep ") and app.run_state.endswith("/40 points")
        await pilot.press("s")
        await settle(pilot, app)
        data = app.charts.chart("sweep").data
        s = data.summary
        assert data.state.startswith("stopped") and 1 <= s["done"] < s["total"] == 40
        assert s["base"]["depth"] == preset.config.depth and s["base"]["device"] == "cpu"
        assert len(s["points"]) == s["done"] == app.last_result["done"]
        assert "sweep stopped" in app.log_pane.messages()


@pilot_test
async def test_theory_readout_follows_activation_and_sigmas():
    app = make_app(SMALL.replace(activation="relu", init="scaled_normal", sigma_w=math.sqrt(2.0), bias=False))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("7")
        await pilot.pause()
        chart = app.charts.chart("activation")
        assert chart.theory.theory["chi1"] == pytest.approx(1.0, rel=1e-9)      # ReLU: chi_1 = sigma_w^2 / 2
        assert "chi_1 1 (critical)" in chart.render().plain
        # a refused sigma_w leaves the readout of the last accepted values, said so
        app.form.widget_for("sigma_w").value = "abc"
        await settle(pilot, app)
        text = chart.render().plain
        assert "mean field of the last accepted relu, sigma_w 1.414, sigma_b 0 (sigma_w refused)" in text
        assert "chi_1 1 (critical)" in text
        # two refused, then one mended: the one still refused is named; another activation meanwhile is not the
        # readout's, which says whose it is
        app.form.widget_for("sigma_b").value = "xyz"
        app.form.widget_for("activation").value = "tanh"
        await settle(pilot, app)
        assert "(sigma_w, sigma_b refused)" in chart.render().plain
        app.form.widget_for("sigma_b").value = "0"
        await settle(pilot, app)
        text = chart.render().plain
        assert "mean field of the last accepted relu, sigma_w 1.414, sigma_b 0 (sigma_w refused)" in text
        app.form.widget_for("activation").value = "relu"
        app.form.widget_for("sigma_w").value = "1.0"
        await settle(pilot, app)
        assert chart.theory.theory["chi1"] == pytest.approx(0.5, rel=1e-9)
        assert "(ordered)" in chart.render().plain and "refused" not in chart.render().plain
        app.form.widget_for("activation").value = "tanh"
        app.form.widget_for("bias").value = True
        app.form.widget_for("sigma_b").value = "0.3"
        app.form.widget_for("sigma_w").value = "1.5"
        await settle(pilot, app)
        ref = mean_field("tanh", 1.5, 0.3)
        got = chart.theory.theory
        for key in ("q_star", "chi1", "depth_scale_forward", "depth_scale_backward"):
            assert got[key] == pytest.approx(ref[key], rel=1e-12), key
        assert got["phase"] == ref["phase"] == "chaotic"
        # the empirical gain is the figure `initlab gain` prints, to every digit
        from initlab.engine.activations import gain_table

        assert chart.data.name == "tanh"
        assert chart.data.empirical_gain == next(r.empirical for r in gain_table() if r.name == "tanh")
        await pilot.press("n")
        await pilot.pause()
        _cols, rows = app.charts.query_one("#numbers").shown
        assert ["chi_1", f"{ref['chi1']:.4g}", ""] in rows
        # with the table open, a new sigma_w's figures reach it too, not only the line above the curve
        app.form.widget_for("sigma_w").value = "2"
        await settle(pilot, app)
        _cols, rows = app.charts.query_one("#numbers").shown
        assert ["chi_1", f"{mean_field('tanh', 2.0, 0.3)['chi1']:.4g}", ""] in rows


@pilot_test
async def test_a_pinned_run_keeps_its_own_settings_after_a_jacobian_of_others():
    """The Jacobian sends no statistics: the charts keep the probe, and b names the probe's settings, not the form's
    new ones."""
    app = make_app(SMALL.replace(activation="tanh"))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("p")
        await settle(pilot, app)
        probed = app.charts.chart("forward").data.layers
        app.form.widget_for("activation").value = "relu"
        await pilot.pause()
        await pilot.press("9", "r")
        await settle(pilot, app)
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
        assert app.baseline.layers == probed and \
            app.baseline.label == f"probe seed {SMALL.seed} tanh {SMALL.init} gain 1.667"       # tanh's, the gain empty


@pilot_test
async def test_jacobian_view_of_an_orthogonal_linear_net_is_isometric():
    cfg = SMALL.replace(depth=10, activation="identity", init="orthogonal", bias=False)
    app = make_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("9", "r")
        await settle(pilot, app)
        r = app.charts.chart("jacobian").data
        assert r["max"] == pytest.approx(1.0, abs=1e-4) and r["min"] == pytest.approx(1.0, abs=1e-4)
        assert r["condition_number"] == pytest.approx(1.0, abs=1e-3)
        ref = jacobian_spectrum(cfg, inputs=4)
        assert r["singular_values"] == pytest.approx(ref["singular_values"], rel=1e-9)
        assert sum(r["histogram"]["counts"]) == 4 * 32
        text = app.charts.chart("jacobian").render().plain
        assert "condition number 1" in text
        assert any(m.startswith("jacobian: max 1") for m in app.log_pane.messages())


def test_jacobian_view_gives_a_min_below_the_resolution_as_a_bound():
    from initlab.tui.widgets.jacobian_chart import extremes, fmt

    cfg = Config(depth=50, width=32, in_features=32, out_features=32, activation="identity", bias=False,
                 device="cpu", init="normal", std=32 ** -0.5)
    r = jacobian_spectrum(cfg)
    below = 32 - r["numerical_rank"]
    assert below > 0
    text = extremes(r)
    assert f"min < {fmt(r['resolution'])} ({below} of 32 below the resolution)" in text
    assert f"condition number > {fmt(r['max'] / r['resolution'])}" in text
    assert fmt(r["min"]) not in text          # the SVD's noise is not shown as the minimum


@pilot_test
async def test_widths_view_matches_the_coordinate_check():
    cfg = SMALL.replace(depth=3, in_features=8, out_features=4, batch=8, lr=0.1)
    app = make_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("widths", "16,32,64")
        await pilot.press("0", "r")
        await settle(pilot, app)
        r = app.charts.chart("widths").data
        ref = width_check(cfg, [16, 32, 64], steps=5)
        assert r["widths"] == [16, 32, 64] and r["steps"] == 5
        flat = lambda t: [v for per_width in t for step in per_width for v in step]
        assert flat(r["mean_abs_a"]) == pytest.approx(flat(ref["mean_abs_a"]), rel=1e-6)
        assert len(flat(r["mean_abs_a"])) == 3 * 6 * 3          # widths x steps 0..5 x layers
        text = app.charts.chart("widths").render().plain
        assert "step 0" in text and "step 5" in text and "largest |slope|" in text and "steps 0 to 5: " in text
        worst = max(abs(v) for v in ref["slopes"][-1])
        moved = max(abs(v) for v in ref["delta_slopes"][-1])       # how far training moved each layer
        assert app.log_pane.messages()[-1].startswith("widths: 16, 32, 64 over 5 steps")
        assert app.log_pane.messages()[-1].endswith(f"of mean |a| {worst:.3g}, of mean |a - a_0| (how far training "
                                                    f"moved each layer) {moved:.3g} (both near 0 is width-stable)")


@pilot_test
async def test_b_pins_the_run_the_charts_show_after_a_width_check():
    """A width check after a training leaves the training on the Forward and Training tabs: b pins that."""
    cfg = SMALL.replace(depth=3, in_features=8, out_features=4, batch=8, epochs=2)
    app = make_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("t")
        await settle(pilot, app)
        shown = app.charts.chart("forward").data.layers
        app.extras.set_value("widths", "16,32")
        await pilot.press("0", "r")
        await settle(pilot, app)
        await pilot.press("b")
        await pilot.pause()
        assert app.baseline is not None and app.baseline.layers == shown and len(app.baseline.epochs) == 2
        assert app.log_pane.messages()[-1].startswith("pinned the current train ")


MODEL = """
import torch

from torch import nn

def cnn():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    return net, torch.randn(8, 3, 6, 6)

def bare():
    return nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))

def raises():
    raise ValueError("no weights here")
"""


@pilot_test
async def test_model_field_probes_your_own_model_and_refusals_leave_the_app_usable(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(MODEL))
    app = make_app()
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot, app)
        # a file that is not there: refused beside the field, nothing runs
        app.extras.set_value("model", str(tmp_path / "nope.py") + ":cnn")
        await pilot.pause()
        assert "no such file" in str(app.extras.query_one(".error-model").render())
        await pilot.press("p")
        await pilot.pause()
        assert app.last_kind == "" and not app.bridge.running
        assert app.log_pane.entries[-1][1] == "error" and "cannot run: model:" in app.log_pane.entries[-1][2]
        # the CNN: its statistics are the engine's
        app.extras.set_value("model", f"{path}:cnn")
        await pilot.pause()
        assert not app.extras.query(".error-model")
        assert app.focused is app.extras.query_one("#field-model")     # the refusal put the cursor there
        await pilot.press("escape", "p")
        await settle(pilot, app)
        ref = run_user_probe(make_spec(f"{path}:cnn", seed=SMALL.seed, device="cpu"))
        layers = app.charts.chart("forward").data.layers
        assert [d["name"] for d in layers] == [d["name"] for d in ref.layers] == ["0", "1", "2", "3"]
        await pilot.press("b")          # a user's model is pinned by its factory's name
        await pilot.pause()
        assert app.baseline is not None and app.baseline.label == f"probe seed {SMALL.seed} {path}:cnn"
        assert [d["a_std"] for d in layers] == pytest.approx([d["a_std"] for d in ref.layers], rel=1e-6)
        assert app.last_result["model"] == "Sequential" and app.run_state == "idle"
        # the numbers name each row's module and kind, kept in sight when the columns are paged
        for name in ("forward", "backward", "glorot"):
            chart = app.charts.chart(name)
            cols, rows = chart.table()
            assert cols[:2] == ["layer", "module"] and chart.key_columns() == 2
            assert [r[1] for r in rows] == [f"{d['name']} ({d['kind']})" for d in ref.layers]
        assert app.charts.chart("forward").xlabel().startswith("module, in execution order")
        # Distributions says this probe has no boxes, rather than keep the startup MLP's under this probe's label
        dist = app.charts.chart("distributions")
        assert not dist.has_data() and dist.empty.startswith("no quantile boxes for a probe of your own model")
        # a model without inputs takes the input shape field; left empty, the failure is refused there
        app.extras.set_value("model", f"{path}:bare")
        await pilot.press("escape", "p")
        await settle(pilot, app)
        message = app.log_pane.entries[-1][2]
        assert message.startswith("probe failed: input_shape: none given") and "MissingSetting" not in message
        assert message.endswith("(the cursor is in input_shape now; escape leaves it)")
        assert app.focused is app.extras.query_one("#field-input_shape")
        assert "none given" in str(app.extras.query_one(".error-input_shape").render())
        app.extras.set_value("model", f"{path}:cnn")        # another model: the mark was the one before's
        await pilot.pause()
        assert not app.extras.query(".error-input_shape")
        app.extras.set_value("model", f"{path}:bare")
        app.extras.set_value("input_shape", "4,6")
        await pilot.pause()
        assert not app.extras.query(".error-input_shape")
        await pilot.press("escape", "p")
        await settle(pilot, app)
        assert app.last_result["inputs"] == [[4, 6]]
        # a Jacobian leaves the model aside: said
        await pilot.press("9", "r")
        await settle(pilot, app)
        assert "the Jacobian is of the configured MLP; the model field is probed with p" in app.log_pane.messages()
        # a factory that raises: one line in the log and a notification, and the app goes on
        app.extras.set_value("model", f"{path}:raises")
        await pilot.press("p")
        await settle(pilot, app)
        assert app.run_state == "failed"
        level, message = app.log_pane.entries[-1][1:]
        assert level == "error" and message.startswith("probe failed: model: ") and "ValueError" in message
        assert any(n.severity == "error" and "no weights here" in n.message for n in app._notifications)
        # with the field cleared, p probes the configured MLP again; an input shape left in its field is said unread
        app.extras.set_value("model", "")
        app.extras.set_value("input_shape", "2,8")
        await pilot.press("escape", "p")
        await settle(pilot, app)
        assert app.run_state == "idle" and len(app.last_result["layers"]) == SMALL.depth
        assert "input_shape is read with a model only: the configured MLP's inputs are in_features wide" in \
            app.log_pane.messages()


@pilot_test
async def test_a_preset_runs_the_built_in_mlp_even_with_a_model_in_the_field(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(MODEL))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("model", f"{path}:cnn")
        palette_commands(app)["Preset sigmoid-vanishing"]()
        await settle(pilot, app)
        assert app.extras.raw["model"] == ""
        assert len(app.last_result["layers"]) == 11 and "model" not in app.last_result
        assert any("the model field is cleared" in m for m in app.log_pane.messages())


async def type_in_vary(pilot, app: InitlabApp, text: str) -> None:
    app.open_field("vary")
    await pilot.pause()
    app.focused.value = ""
    await pilot.press(*text)
    await pilot.pause()


@pilot_test
async def test_a_refusal_at_the_foot_of_the_form_is_wrapped_and_scrolled_into_view():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await type_in_vary(pilot, app, "foo=1,2")
        await pilot.pause()
        reason = app.extras.query_one(".error-vary")
        # the form names every setting: the reason points to it, where forty names ran some 25 lines
        assert str(reason.render()) == "'foo' is not allowed; a known setting: a field of the form, by its name " \
                                       "(lr, init, ...)"
        assert 1 < reason.region.height <= 6                   # wrapped, not cut at the column's edge
        form = app.form.content_region
        assert form.y <= reason.region.y and reason.region.bottom <= form.bottom      # all of it in the pane
        assert form.contains_region(app.focused.region)                                   # and the field above it


@pilot_test
async def test_vary_refuses_what_the_sweep_would_refuse_and_r_puts_the_cursor_there():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await type_in_vary(pilot, app, "lr=0.1,0.2")
        vary = app.extras.query_one("#field-vary")
        # the engine's own refusal, beside the field, before anything runs
        with pytest.raises(SpecError) as refused:
            sweep.point_configs(SMALL, sweep.parse_vary(["lr=0.1,0.2"]), train_hint="sweep_runs train")
        assert str(app.extras.query_one(".error-vary").render()) == str(refused.value).split(": ", 1)[1]
        await pilot.press("escape", "8", "r")
        await pilot.pause()
        assert app.focused is vary and app.last_kind == ""
        assert "cannot run the sweep: vary: 'lr'" in app.log_pane.messages()[-1]
        assert app.log_pane.messages()[-1].endswith("(the cursor is in vary now; escape leaves it)")
        await pilot.press("backspace", "e", "p", "t")         # the correction is typed, no export, probe, training
        await pilot.pause()
        assert vary.value == "lr=0.1,0.ept" and app.last_kind == ""
        # whether a setting is read follows the form: gain is read by orthogonal weights, not by kaiming's
        await type_in_vary(pilot, app, "gain=1,2")
        app.form.widget_for("init").value = "kaiming_normal"
        await pilot.pause()
        assert "init kaiming_normal does not read gain" in str(app.extras.query_one(".error-vary").render())
        await pilot.press("escape", "p")                        # a grid the sweep would not read stops the sweep alone
        await settle(pilot, app)
        assert app.last_kind == "probe"
        app.form.widget_for("init").value = "orthogonal"
        await pilot.pause()
        assert not app.extras.query(".error-vary")
        await pilot.press("escape", "r")
        await settle(pilot, app)
        assert app.last_kind == "sweep" and app.last_result["done"] == 2
        # an empty grid: refused beside the field (its placeholder reads like a grid), the cursor put there
        await type_in_vary(pilot, app, "")
        await pilot.press("escape", "r")
        await pilot.pause()
        assert app.focused is vary and str(app.extras.query_one(".error-vary").render()).startswith("'' is not")
        assert app.log_pane.messages()[-1].endswith("(the cursor is in vary now; escape leaves it)")


@pilot_test
async def test_e_exports_the_result_the_visible_tab_shows(tmp_path):
    import json
    import os

    app = make_app(export_dir=str(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("vary", "depth=2,3")
        await pilot.press("8", "r")
        await settle(pilot, app)
        await pilot.press("escape", "1", "p")       # a probe after the sweep: the Sweep tab still shows the sweep
        await settle(pilot, app)
        assert app.last_kind == "probe"
        await pilot.press("8", "e")
        await pilot.pause()
        (js,) = [f for f in os.listdir(tmp_path) if f.endswith(".json")]
        assert js.startswith("initlab-sweep-") and os.path.exists(tmp_path / js.replace(".json", ".svg"))
        doc = json.loads((tmp_path / js).read_text())
        assert [p["depth"] for p in doc["points"]] == [2, 3] and "layers" not in doc
        await pilot.press("1", "e")                 # the Forward tab: the probe's numbers
        await pilot.pause()
        probe_js = [f for f in os.listdir(tmp_path) if f.startswith("initlab-probe-") and f.endswith(".json")]
        assert len(probe_js) == 1
        assert json.loads((tmp_path / probe_js[0]).read_text())["layers"] == app.last_result["layers"]
        await pilot.press("9", "e")                 # no Jacobian yet: said, and only the screen is written
        await pilot.pause()
        assert app.log_pane.messages()[-1].startswith("no Jacobian result to export yet; wrote the screen to ")
        await pilot.press("7")                      # the Activation tab: its gains and mean field go with the probe
        t0 = time.monotonic()
        while app.charts.chart("activation").theory is None and time.monotonic() - t0 < 30:
            await pilot.pause(0.05)
        await pilot.press("e")
        await pilot.pause()
        probe_js = sorted(f for f in os.listdir(tmp_path) if f.startswith("initlab-probe-") and f.endswith(".json"))
        doc = json.loads((tmp_path / probe_js[-1]).read_text())
        readout, curve = doc["activation_readout"], app.charts.chart("activation").data
        assert doc["layers"] == app.last_result["layers"] and readout["activation"] == SMALL.activation
        assert readout["empirical_gain"] == curve.empirical_gain and readout["torch_gain"] == curve.torch_gain
        mf = mean_field(SMALL.activation, SMALL.sigma_w, SMALL.sigma_b if SMALL.bias else 0.0, SMALL.slope)
        assert readout["mean_field"]["chi1"] == pytest.approx(mf["chi1"]) and readout["mean_field"]["of_init"] == \
            "scaled_normal"


@pilot_test
async def test_a_width_check_refused_for_memory_marks_the_widths_field():
    app = make_app(SMALL.replace(depth=3))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("widths", "64,1048576")
        await pilot.press("0", "r")
        await settle(pilot, app)
        level, message = app.log_pane.entries[-1][1:]
        assert level == "error" and message.startswith("widths failed: widths: '64,1048576' is not allowed; a network "
                                                        "that fits in memory")
        assert message.endswith("(the cursor is in widths now; escape leaves it)")
        assert "fits in memory" in str(app.extras.query_one(".error-widths").render())
        assert app.focused is app.extras.query_one("#field-widths")


@pilot_test
async def test_e_on_the_training_tab_exports_the_training_it_shows_after_a_probe(tmp_path):
    import json
    import os

    app = make_app(SMALL.replace(epochs=2, n_rows=100, batch=20), export_dir=str(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("5", "e")         # no training yet: said, the screen alone written
        await pilot.pause()
        assert app.log_pane.messages()[-1].startswith("no training result to export yet; wrote the screen to ")
        await pilot.press("t")
        await settle(pilot, app)
        await pilot.press("p")
        await settle(pilot, app)
        assert app.last_kind == "probe"
        for tab in ("5", "6"):              # Training and Heatmap still show the training
            await pilot.press(tab, "e")
            await pilot.pause()
        names = sorted(f for f in os.listdir(tmp_path) if f.endswith(".json"))
        assert len(names) == 2 and all(n.startswith("initlab-train-") for n in names)
        docs = [json.loads((tmp_path / n).read_text()) for n in names]
        assert all(len(d["epochs"]) == 2 and d["stopped"] == "finished" for d in docs)


@pilot_test
async def test_a_probe_after_a_training_leaves_its_training_and_heatmap_tabs_with_a_baseline_pinned():
    app = make_app(SMALL.replace(epochs=2, n_rows=100, batch=20, stats_every=1))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        await pilot.press("t")
        await settle(pilot, app)
        await pilot.press("b")          # a baseline pinned: the Training tab was redrawn from the probe's no epochs
        await pilot.pause()
        epochs = app.charts.chart("training").data.epochs
        heat = app.charts.chart("heatmap").data
        assert len(epochs) == 2 and len(heat) > 1
        await pilot.press("p")
        await settle(pilot, app)
        assert app.last_kind == "probe"
        training = app.charts.chart("training").data
        assert training.epochs == epochs and training.baseline        # the training's curves, the baseline beside
        assert app.charts.chart("heatmap").data == heat                # a probe's one step does not replace it


@pilot_test
async def test_a_stopped_width_check_says_the_tab_keeps_the_one_before():
    app = make_app(SMALL.replace(depth=3))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.extras.set_value("widths", "8,16")
        await pilot.press("0", "r")
        await settle(pilot, app)
        before = app.charts.chart("widths").data
        # a width check stopped in its first width hands back nothing (the engine's own test stops one so)
        from initlab.engine.events import Cancelled
        from initlab.tui.messages import EngineEvent

        app.post_message(EngineEvent(Cancelled("widths", result={})))
        await pilot.pause()
        assert app.charts.chart("widths").data is before
        assert "the Widths tab keeps the width check before the one stopped" in app.log_pane.messages()


@pilot_test
async def test_a_width_that_went_non_finite_is_said_in_the_log():
    from initlab.engine.events import Finished
    from initlab.tui.messages import EngineEvent

    cfg = SMALL.replace(depth=3, in_features=8, out_features=4, batch=8, lr=1e4, activation="identity", init="normal")
    result = width_check(cfg, [8, 64], steps=3)
    app = make_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.post_message(EngineEvent(Finished("widths", result=result, seconds=0.1)))
        await pilot.pause()
        warned = [m for lvl, m in [e[1:] for e in app.log_pane.entries] if lvl == "warning"]
        # lr 1e4: the loss overflows after a step while the outputs are still finite (the engine's widths tests)
        assert result["nonfinite"][1] == {"width": 64, "step": 1, "layer": None, "tensor": "loss"}
        assert ("width 64 is non-finite after 1 step (its loss: the outputs are finite, their squared error is not); "
                "a smaller lr keeps it finite") in warned
