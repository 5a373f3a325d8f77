"""Pilot tests of the app: keys drive real probes and trainings; charts hold the engine's own numbers."""
from __future__ import annotations

import json
import math
import os
import sys
import time

import pytest

from initlab.engine.presets import PRESETS
from initlab.engine.probe import run_probe
from initlab.engine.spec import Config, SpecError
from initlab.tui.app import SWITCH_INTERVAL
from initlab.tui.widgets.plot import fmt

from apphelp import SMALL, make_app, palette_commands, pilot_test, settle, start_training


TRAIN = Config(depth=3, width=8, data="poly", n_rows=200, batch=10, epochs=3, stats_every=2, loss="mse",
               device="cpu", seed=1, init="xavier_uniform", lr=0.01)
LONG_TRAIN = TRAIN.replace(epochs=100_000, n_rows=2000)





@pilot_test
async def test_probe_by_key_fills_forward_chart_with_engine_numbers():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        data = app.charts.chart("forward").data
        ref = run_probe(SMALL)
        assert [d["a_std"] for d in data.layers] == pytest.approx([d["a_std"] for d in ref.layers], rel=1e-6)
        assert data.input_std == pytest.approx(ref.input_std, rel=1e-6)
        back = app.charts.chart("backward").data
        assert [d["grad_w_absmean"] for d in back.layers] == pytest.approx(
            [d["grad_w_absmean"] for d in ref.layers], rel=1e-6)
        dist = app.charts.chart("distributions").data.distributions
        assert dist[2]["weight"] == pytest.approx(ref.distributions[2]["weight"], rel=1e-6)
        # the numbers table shows the same values, formatted
        await pilot.press("n")
        await pilot.pause()
        cols, rows = app.charts.query_one("#numbers").shown
        assert cols[:2] == ["layer", "a_std"]
        assert [r[1] for r in rows] == [fmt(d["a_std"]) for d in ref.layers]
        assert app.run_state == "idle" and app.device_name == "cpu"
        assert "stable" in app.log_pane.messages()[-1]


@pilot_test
async def test_the_numbers_table_is_as_wide_as_its_numbers_from_the_keyboard_alone():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        await pilot.press("n")
        for tab in ("7", "4", "1"):         # the numbers stay on while the tabs change
            await pilot.press(tab)
            await pilot.pause()
            table = app.charts.query_one("#numbers")
            cols, rows = table.shown
            assert rows
            for i, col in enumerate(table.ordered_columns):
                widest = max(len(str(r[i])) for r in rows + [cols])
                assert col.content_width >= widest, (tab, cols[i], col.content_width, widest)


@pilot_test
async def test_only_the_visible_chart_is_drawn():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        fwd, back = app.charts.chart("forward"), app.charts.chart("backward")
        assert fwd.builds >= 1 and back.builds == 0
        await pilot.press("2")
        await pilot.pause()
        assert back.builds >= 1 and app.charts.active == "backward"
        assert "mean |dL/dW|" in back.render().plain


@pilot_test
async def test_stop_ends_a_training_within_half_a_second():
    app = make_app(LONG_TRAIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_training(pilot, app)
        await pilot.press("s")
        t_stop = time.monotonic()
        while app.bridge.running or app.run_state != "stopped":
            await pilot.pause(0.01)
            assert time.monotonic() - t_stop < 5
        assert time.monotonic() - t_stop < 0.5
        assert app.last_result["stopped"] == "cancelled"
        assert "train stopped" in app.log_pane.messages()
        await pilot.press("s")          # nothing runs now: said in the log, not silently ignored
        await pilot.pause()
        assert app.log_pane.messages()[-1].startswith("nothing is running")


@pilot_test
async def test_an_export_from_a_folder_since_removed_goes_to_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    spare = tmp_path / "spare"
    spare.mkdir()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    monkeypatch.chdir(here)
    app = make_app()            # exports go to ".", the folder it started in
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        here.rmdir()            # gone: getcwd() fails with it
        await pilot.press("e")
        await pilot.pause()
        assert sorted(p.suffix for p in spare.iterdir()) == [".json", ".svg"]
        assert app.log_pane.entries[-1][1:][0] == "info"


@pilot_test
async def test_a_field_changed_while_a_training_runs_is_said_to_wait_for_the_next_run():
    from initlab.tui.messages import DevicesFound

    app = make_app(LONG_TRAIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_training(pilot, app)
        # what the app sets itself is no edit: the devices found (the selector's options reset) say nothing
        app.post_message(DevicesFound([("cpu", "cpu")]))
        await pilot.pause()
        assert not [m for m in app.log_pane.messages() if "keeps the settings" in m]
        for name, value in (("weight_decay", "0.01"), ("lr", "0.1")):
            app.form.widget_for(name).value = value
            await pilot.pause()
        said = [m for m in app.log_pane.messages() if "keeps the settings it started with" in m]
        assert said == ["the running training keeps the settings it started with: weight_decay and any other "
                        "change take effect at the next run"]       # once a run
        await pilot.press("s")
        while app.bridge.running:
            await pilot.pause(0.01)
        assert app.last_result["config"]["weight_decay"] == 0.0        # as it started
        app.form.widget_for("lr").value = "0.2"         # nothing runs: nothing to say
        await pilot.pause()
        assert len([m for m in app.log_pane.messages() if "keeps the settings" in m]) == 1
        # a preset chosen in the selector while a training runs is the user's choice: said, once a run
        from initlab.tui.widgets.config_form import ConfigForm

        app.form.load(LONG_TRAIN)
        await pilot.pause()
        await start_training(pilot, app)
        app.form.post_message(ConfigForm.PresetChosen(app.form, "tanh-naive"))
        await pilot.pause()
        said = [m for m in app.log_pane.messages() if "keeps the settings" in m]
        assert len(said) == 2 and said[-1].endswith("the preset's take effect at the next run")
        await pilot.press("s")
        while app.bridge.running:
            await pilot.pause(0.01)
        # a preset run from the palette while a training runs replaces it with the preset's settings: no note
        app.form.load(LONG_TRAIN)
        await pilot.pause()
        await start_training(pilot, app)
        app.action_run_preset("tanh-deep-train")
        for _ in range(20):
            await pilot.pause(0.05)
        assert len([m for m in app.log_pane.messages() if "keeps the settings" in m]) == 2
        await pilot.press("s")


@pilot_test
async def test_invalid_field_blocks_running_and_keys_go_to_the_field():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        depth = app.form.widget_for("depth")
        depth.focus()
        depth.value = ""
        await pilot.press("1", "2", "p", "t")       # typed into the field, not run
        await pilot.pause()
        assert depth.value == "12pt"
        assert not app.bridge.running and app.last_kind == ""
        error = app.form.query_one(".error-depth").render()
        assert str(error) == "'12pt' is not allowed; an integer in [1, 10000]"
        assert depth.has_class("-refused")
        await pilot.press("escape", "p")
        await pilot.pause()
        assert app.last_kind == "" and not app.bridge.running
        assert app.log_pane.entries[-1][1:] == ("error", "cannot run: depth: '12pt' is not allowed; "
                                                         "an integer in [1, 10000] (the cursor is in depth now; "
                                                         "escape leaves it)")
        depth.value = "4"
        await pilot.pause()
        assert not depth.has_class("-refused")
        await pilot.press("escape", "p")
        await settle(pilot, app)
        assert len(app.charts.chart("forward").data.layers) == 4


@pilot_test
async def test_b_pins_a_baseline_overlaid_on_later_runs():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        first = app.charts.chart("forward").data.layers
        await pilot.press("b")
        await pilot.pause()
        assert app.baseline is not None and app.baseline.layers == first
        assert any("baseline" in m for m in app.log_pane.messages())
        app.form.widget_for("init").value = "normal"   # a Select: a value the user could pick
        await pilot.pause()
        await pilot.press("p")
        await settle(pilot, app)
        now = app.charts.chart("forward").data
        assert now.baseline == first and now.layers != first
        assert "baseline a_std" in app.charts.chart("forward").render().plain
        # a net of another depth: no layer to stand beside, so no per-layer overlay
        app.form.widget_for("depth").value = "3"
        await pilot.pause()
        await pilot.press("escape", "p")
        await settle(pilot, app)
        other = app.charts.chart("forward").data
        assert len(other.layers) == 3 and other.baseline == ()
        assert "baseline a_std" not in app.charts.chart("forward").render().plain
        # said, once: the log names why the per-layer charts have no baseline
        apart = [m for m in app.log_pane.messages() if m.startswith("the baseline has")]
        assert apart == [f"the baseline has {len(first)} layers, this run 3: it is overlaid on the Training chart "
                         f"alone"]


@pilot_test
async def test_q_during_a_training_asks_again_before_quitting(monkeypatch):
    from initlab.tui import app as app_module

    monkeypatch.setattr(app_module, "QUIT_CONFIRM_SECONDS", 120.0)     # a busy test machine is slow between keys
    app = make_app(LONG_TRAIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_training(pilot, app)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code is None and app.bridge.running       # still running, and so is the training
        assert app.log_pane.messages()[-1].startswith("a training is running: q again to quit")
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0                                   # the second q quits


@pilot_test
async def test_e_writes_the_result_and_the_screen(tmp_path):
    app = make_app(export_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        await pilot.press("e")
        await pilot.pause()
        js = list(tmp_path.glob("*.json"))
        svg = list(tmp_path.glob("*.svg"))
        assert len(js) == 1 and len(svg) == 1
        saved = json.loads(js[0].read_text())
        assert [d["a_std"] for d in saved["layers"]] == [d["a_std"] for d in app.last_result["layers"]]
        assert svg[0].read_text().lstrip().startswith("<svg")
        last = app.log_pane.messages()[-1]
        assert str(js[0]) in last and str(svg[0]) in last
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert "baseline" not in saved
        # a pinned baseline, overlaid on the charts, goes into the file too
        await pilot.press("b", "e")
        await pilot.pause()
        newest = max(tmp_path.glob("*.json"), key=lambda f: f.stat().st_mtime_ns)
        doc = json.loads(newest.read_text())
        assert [d["a_std"] for d in doc["baseline"]["layers"]] == [d["a_std"] for d in app.baseline.layers]
        assert doc["baseline"]["label"] == app.baseline.label


@pilot_test
async def test_an_export_that_cannot_be_written_names_the_folder_not_a_temporary_file(tmp_path, monkeypatch):
    import tempfile

    gone = tmp_path / "gone"
    spare = tmp_path / "spare"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))       # the system's temporary folder, for this test
    app = make_app(export_dir=str(gone))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        # the folder initlab started in refuses the files: they go to the temporary folder, said once, not lost
        await pilot.press("e")
        await pilot.pause()
        entries = [e[1:] for e in app.log_pane.entries]
        warned = [m for lvl, m in entries if lvl == "warning" and "written to" in m]
        assert warned == [f"cannot write in {gone} (No such file or directory): written to {spare} instead"]
        assert entries[-1][1].startswith(f"exported the probe result to {spare}/initlab-probe-")
        assert sorted(p.suffix for p in spare.iterdir()) == [".json", ".svg"]
        await pilot.press("e")          # within the same second, most likely: a name of its own there too
        await pilot.pause()
        assert sorted(p.suffix for p in spare.iterdir()) == [".json", ".json", ".svg", ".svg"]
        # and where that folder refuses them too: said, naming the folder initlab started in
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone too"))
        await pilot.press("e")
        await pilot.pause()
        level, message = app.log_pane.entries[-1][1:]
        assert level == "error" and message.startswith("export failed: No such file or directory: cannot write ")
        assert f"in {gone} (exports go to the folder initlab started in)" in message and ".tmp" not in message


@pilot_test
async def test_training_fills_training_and_heatmap_with_the_run():
    app = make_app(TRAIN)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("t")
        await settle(pilot, app)
        result = app.last_result
        assert result["stopped"] == "finished"
        chart = app.charts.chart("training").data
        assert [e["train_loss"] for e in chart.epochs] == pytest.approx([e["train_loss"] for e in result["epochs"]])
        heat = app.charts.chart("heatmap").data
        steps = [s["step"] for s in result["steps"]]
        assert [c[0] for c in heat] == steps
        last = result["steps"][-1]["layers"]
        assert heat[-1][1] == pytest.approx([math.log10(r["grad_w_absmean"]) for r in last])
        assert app.run_state == "idle"
        await pilot.press("5")
        await pilot.pause()
        assert "train" in app.charts.chart("training").render().plain


@pilot_test
async def test_starting_a_run_while_one_goes_replaces_it():
    app = make_app(LONG_TRAIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_training(pilot, app)
        app.form.load(SMALL)
        await pilot.pause()
        await pilot.press("p")
        await settle(pilot, app)
        msgs = app.log_pane.messages()
        assert any("a training was running; a probe replaces it" in m for m in msgs)
        assert "train stopped" in msgs
        assert app.last_kind == "probe" and "layers" in app.last_result and app.run_state == "idle"


@pilot_test
async def test_a_failed_job_is_logged_and_notified_and_the_app_goes_on(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a tensor file")
    app = make_app(TRAIN.replace(data=str(bad)))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("t")
        await settle(pilot, app)
        assert app.run_state == "failed"
        level, message = app.log_pane.entries[-1][1:]
        assert level == "error" and message.startswith("train failed: data: ")
        assert any(n.severity == "error" for n in app._notifications)
        app.form.load(SMALL)
        await pilot.pause()
        await pilot.press("p")
        await settle(pilot, app)
        assert app.run_state == "idle" and "layers" in app.last_result


@pilot_test
async def test_palette_offers_every_action_and_every_preset():
    app = make_app()
    async with app.run_test() as pilot:
        titles = palette_commands(app)
        for action in ("Probe (p)", "Train (t)", "Stop (s)", "Baseline (b)", "Export (e)", "Numbers (n)",
                       "Config (c)", "Help (?)", "Forward (1)", "Activation (7)"):
            assert action in titles
        assert {f"Preset {name}" for name in PRESETS} <= set(titles)
        await pilot.pause()


@pilot_test
async def test_every_preset_from_the_palette_runs_to_completion():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        commands = palette_commands(app)
        for name, preset in PRESETS.items():
            commands[f"Preset {name}"]()
            await settle(pilot, app, timeout=120)
            assert app.run_state in ("idle", "stopped: non-finite"), (name, app.run_state)
            assert app.last_kind == preset.kind
            assert app.form.config() == preset.config, name
            if preset.kind == "train":
                assert app.last_result["stopped"] in ("finished", "nonfinite")
                assert len(app.last_result.get("runs", [None])) == max(1, len(preset.seeds))
                if preset.seeds:        # each run's ending is logged by its seed, and the legend names the seeds
                    ends = [(r["config"]["seed"], r["epochs"][-1]) for r in app.last_result["runs"]]
                    assert app.log_pane.messages()[-1] == "runs: " + "; ".join(
                        f"seed {seed}: train {e['train_loss']:.4g}, test {e['test_loss']:.4g}" for seed, e in ends)
                    app.charts.show_tab("training")
                    await pilot.pause()
                    assert f"test seed {preset.seeds[1]}" in app.charts.chart("training").render().plain
            else:
                assert len(app.last_result["layers"]) == preset.config.depth


@pilot_test
async def test_quitting_while_the_form_still_mounts_raises_nothing():
    """The form mounts its groups one refresh at a time; an app closed meanwhile must close cleanly. Before the
    fixes, Textual's own Select raised NoMatches in about one quick exit in four, and a q while the groups
    mounted raised MountError every time."""
    early = 0
    for i in range(20):
        app = make_app()
        async with app.run_test() as pilot:      # an exception inside the app is raised here, on the way out
            await pilot.pause(i % 5 * 0.003)
            early += not app.form.mounted_fields
            if i % 2:
                await pilot.press("q")          # as a person quits; else the test's end closes the app
    assert early >= 5       # most exits came before the form had finished mounting, as the test intends


@pilot_test
async def test_the_app_shortens_the_gil_switch_interval_while_it_runs_and_restores_it():
    before = sys.getswitchinterval()
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
    assert sys.getswitchinterval() == before


@pilot_test
async def test_the_preset_and_choice_fields_show_their_values():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.form.mounted_fields:
            await pilot.pause(0.01)
        await pilot.pause()
        for name in ("activation", "init", "device"):
            select = app.form.widget_for(name)
            assert str(select.query_one("#label").render()) == str(select.value), name
        assert str(app.screen.query_one("#preset #label").render()) == "choose a preset"


@pilot_test
async def test_narrow_terminal_collapses_the_configuration():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.has_class("narrow") and not app.form.display or not app.form.region.width
        await pilot.press("c")
        await pilot.pause()
        assert app.form.region.width == 80
        await pilot.press("c")
        await pilot.pause()
        assert app.form.region.width == 0
    wide = make_app()
    async with wide.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert not wide.has_class("narrow") and wide.form.region.width > 0


@pilot_test
async def test_a_training_that_goes_non_finite_at_once_keeps_the_app_and_says_why_no_curve():
    app = make_app(TRAIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")
        await settle(pilot, app)                    # a first run: its curves are on the Training tab
        assert app.charts.chart("training").data.epochs
        app.form.widget_for("lr").value = "1e6"
        await pilot.pause()
        await pilot.press("escape", "t")
        await settle(pilot, app)
        assert app.run_state == "stopped: non-finite" and app.last_result["stopped"] == "nonfinite"
        data = app.charts.chart("training").data
        assert data.epochs == () and data.label == "no epoch finished: stopped on a non-finite value"
        nf = app.last_result["nonfinite"]
        assert any(m.startswith(f"non-finite {nf['tensor']} at step {nf['step']}") for m in app.log_pane.messages())


@pilot_test
async def test_a_training_stopped_before_its_first_epoch_says_so_on_the_training_tab():
    app = make_app(LONG_TRAIN.replace(n_rows=200_000))          # 14,000 steps to an epoch
    async with app.run_test(size=(120, 40)) as pilot:
        await start_training(pilot, app)
        await pilot.press("s")
        await settle(pilot, app)
        assert app.run_state == "stopped" and app.last_result["epochs"] == []
        assert app.charts.chart("training").data.label == "no epoch finished: stopped"


@pilot_test
async def test_an_edited_several_seed_preset_says_it_runs_one_seed():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        app.form.query_one("#preset").value = "seed-sensitivity"
        await pilot.pause()
        assert app.preset_name == "seed-sensitivity"
        app.form.widget_for("epochs").value = "1"
        await pilot.pause()
        await pilot.press("escape", "t")
        await settle(pilot, app)
        assert "runs" not in app.last_result and app.last_result["config"]["seed"] == 420
        assert any(m.startswith("the form no longer holds seed-sensitivity's settings: one run, seed 420")
                   for m in app.log_pane.messages())


@pilot_test
async def test_log_lines_wrap_in_a_pane_narrower_than_78_columns():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        log = app.log_pane
        assert log.size.width < 78
        app.log_pane.add("error", "a refusal long enough to need two lines in this pane: " + "x" * 40 + " end")
        await pilot.pause()
        assert log.virtual_size.width <= log.size.width          # wrapped, not cut at the edge
        assert any("end" in line.text for line in log.lines)


@pilot_test
async def test_tab_from_nowhere_lands_on_the_first_field():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("escape", "tab")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "preset"      # not the form's scroll container


@pilot_test
async def test_help_and_distribution_kinds():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ != "HelpScreen"
        await pilot.press("p")
        await settle(pilot, app)
        await pilot.press("k")
        await pilot.pause()
        chart = app.charts.chart("distributions")
        assert app.charts.active == "distributions" and chart.kind == "gradient"
        assert "gradient quantiles" in chart.render().plain


@pilot_test
async def test_an_edit_clears_the_preset_selector_and_choosing_the_preset_again_reloads_it():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        preset = app.form.query_one("#preset")
        preset.value = "tanh-deep-train"
        await pilot.pause()
        assert app.form.values()["depth"] == str(PRESETS["tanh-deep-train"].config.depth)
        app.form.widget_for("depth").value = "7"
        await pilot.pause()
        assert preset.is_blank()
        assert "edited after loading tanh-deep-train" in str(app.form.query_one("#preset-summary").render())
        preset.value = "tanh-deep-train"        # the same preset again: a change of the selector, so it reloads
        await pilot.pause()
        assert app.form.values()["depth"] == str(PRESETS["tanh-deep-train"].config.depth)
        assert str(app.form.query_one("#preset-summary").render()).startswith("train: ")


@pilot_test
async def test_during_a_training_the_distributions_tab_does_not_show_an_earlier_nets_boxes():
    app = make_app(LONG_TRAIN.replace(depth=5))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)                     # a probe: 5 layers of boxes
        chart = app.charts.chart("distributions")
        assert chart.has_data() and len(chart.data.distributions) == 5
        app.form.widget_for("depth").value = "3"
        await pilot.pause()
        await pilot.press("escape", "4")
        await start_training(pilot, app)
        t0 = time.monotonic()
        while chart.has_data() and time.monotonic() - t0 < 10:
            await pilot.pause(0.05)
        assert not chart.has_data() and "no quantile boxes for this training" in chart.empty
        assert "no quantile boxes for this training" in str(chart.render())
        await pilot.press("s")
        await settle(pilot, app)
        app.form.widget_for("epochs").value = "1"
        await pilot.pause()
        await pilot.press("escape", "t")
        await settle(pilot, app)                     # a finished training draws its end state's boxes
        assert chart.has_data() and len(chart.data.distributions) == 3


@pilot_test
async def test_a_chart_squeezed_below_a_readable_height_says_so_instead_of_drawing():
    from initlab.tui.widgets.plot import MIN_HEIGHT

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        chart = app.charts.chart("forward")
        assert chart.size.height >= MIN_HEIGHT and "a_std" in str(chart.render())
        await pilot.press("n")
        await pilot.pause()
        assert chart.size.height < MIN_HEIGHT
        assert str(chart.render()).startswith("too small to draw here")


@pilot_test
async def test_a_stopped_training_spans_the_epochs_it_ran_not_those_planned():
    app = make_app(LONG_TRAIN.replace(n_rows=200, epochs=300))
    async with app.run_test(size=(120, 40)) as pilot:
        await start_training(pilot, app)
        chart = app.charts.chart("training")
        t0 = time.monotonic()
        while not (chart.data and len(chart.data.epochs) >= 2) and time.monotonic() - t0 < 30:
            await pilot.pause(0.05)
        assert chart.data.total_epochs == 300          # while it runs, the axis spans the planned epochs
        await pilot.press("s")
        await settle(pilot, app)
        assert app.run_state == "stopped"
        done = len(app.last_result["epochs"])
        assert chart.data.total_epochs == 0 and 2 <= len(chart.data.epochs) == done < 300
        await pilot.press("5")
        await pilot.pause()
        picture = str(chart.render())
        assert "epoch" in picture and " 300" not in picture


@pilot_test
async def test_the_log_wraps_again_when_the_terminal_is_resized():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        log = app.log_pane
        log.add("info", "a line long enough to be wrapped in a narrow log pane: " + "word " * 16 + "end")
        await pilot.pause()
        narrow = len(log.lines)
        await pilot.resize_terminal(200, 30)
        await pilot.pause()
        await pilot.pause()
        assert len(log.lines) < narrow and any(line.text.rstrip().endswith("end") for line in log.lines)
        assert sum("a line long enough" in line.text for line in log.lines) == 1      # not written twice


@pilot_test
async def test_the_numbers_view_of_an_empty_tab_wraps_its_hint():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("9", "n")                 # the Jacobian tab, not run yet
        await pilot.pause()
        table = app.charts.query_one("NumbersTable")
        chart = app.charts.chart("jacobian")
        lines = [row[0] for row in table.shown[1]]
        assert " ".join(lines) == " ".join(chart.empty.split())
        assert max(len(line) for line in lines) <= table.size.width


@pilot_test
async def test_a_log_scrolled_back_stays_there_when_the_terminal_is_resized():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        log = app.log_pane
        for i in range(40):
            log.add("info", f"line {i}: " + "word " * 12)
        await pilot.pause()
        log.scroll_home(animate=False)
        await pilot.pause()
        assert log.scroll_y == 0 and log.max_scroll_y > 0
        await pilot.resize_terminal(160, 30)
        await pilot.pause()
        await pilot.pause()
        assert log.scroll_y == 0
        log.scroll_end(animate=False)
        await pilot.pause()
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.1)
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y > 0          # one that followed the end still does
        # a terminal made smaller in both directions (a shorter log pane too): the newest line stays in sight
        await pilot.resize_terminal(60, 15)
        await pilot.pause(0.1)
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y > 0


async def from_palette(pilot, text: str) -> None:
    """Run the palette's first match for text, typed as a user would."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*text)
    await pilot.pause(0.5)          # the palette searches on a timer
    await pilot.press("enter")
    await pilot.pause()


@pilot_test
async def test_the_preset_line_describes_a_preset_loaded_from_the_palette():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        line = app.form.query_one("#preset-summary")
        app.form.query_one("#preset").value = "sigmoid-vanishing"
        await settle(pilot, app)
        await from_palette(pilot, "tanh-naive")
        await settle(pilot, app)
        assert app.form.query_one("#preset").value == "tanh-naive"
        assert str(line.render()) == f"probe: {PRESETS['tanh-naive'].summary}"
        app.form.focus_field("depth")           # an edit, then another preset from the palette
        await pilot.press("backspace", "3")
        await pilot.press("escape")
        assert "edited after loading tanh-naive" in str(line.render())
        await from_palette(pilot, "relu-kaiming")
        await settle(pilot, app)
        assert str(line.render()) == f"probe: {PRESETS['relu-kaiming'].summary}"


@pilot_test
async def test_hiding_the_configuration_takes_the_keyboard_out_of_it():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        gain = app.form.values()["gain"]
        await pilot.press("escape")
        for _ in range(40):                 # tab to the init selector: c is no text for a selector, so it hides
            if app.focused is not None and app.focused.id == "field-init":
                break
            await pilot.press("tab")
        assert app.focused.id == "field-init"
        await pilot.press("c")
        await pilot.pause()
        assert not app.has_class("show-config") and app.focused is None
        await pilot.press("p")              # the footer's p: a probe, not a letter in a hidden field
        await settle(pilot, app)
        assert app.last_kind == "probe" and app.form.values()["gain"] == gain
        await pilot.press("c")              # a terminal narrowed under a focused field closes the drawer over it
        app.form.focus_field("depth")
        await pilot.pause()
        await pilot.resize_terminal(80, 30)
        await pilot.pause()
        assert not app.has_class("show-config") and app.focused is None


@pilot_test
async def test_the_palettes_screenshot_saves_where_exports_go(tmp_path):
    app = make_app(export_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await from_palette(pilot, "Screenshot")
        await pilot.pause(0.5)
        svgs = list(tmp_path.glob("*.svg"))
        assert len(svgs) == 1 and svgs[0].read_text().lstrip().startswith("<svg")
        assert svgs[0].name.startswith("initlab-screen-")
        assert app.log_pane.messages()[-1] == f"wrote the screen to {svgs[0]}"
        assert os.listdir(tmp_path) == [svgs[0].name]           # no temporary left beside it


@pilot_test
async def test_a_training_of_several_seeds_says_which_seed_the_charts_hold():
    from initlab.engine.train import run_training
    from initlab.tui.bridge import log10_or_none

    cfg = SMALL.replace(epochs=2, n_rows=100, stats_every=2)
    app = make_app(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        app.action_train(seeds=(3, 5))
        await settle(pilot, app)
        messages = app.log_pane.messages()
        assert any(m.endswith("; seed 3, run 1 of 2") for m in messages)
        assert any(m.endswith("; seed 5, run 2 of 2") for m in messages)
        # each seed's ending is logged before the next seed's start, then the job's line
        first_end = next(i for i, m in enumerate(messages)
                         if m.startswith("finished after ") and m.endswith("(seed 3, run 1 of 2)"))
        second_start = next(i for i, m in enumerate(messages) if m.endswith("; seed 5, run 2 of 2"))
        assert first_end < second_start
        assert any(m.startswith("finished after ") and m.endswith("(seed 5, run 2 of 2)") for m in messages)
        assert messages[-2].startswith("training of 2 seeds finished (") and messages[-2].endswith(
            "the charts hold seed 5's run")
        assert app.charts.chart("forward").data.label.endswith(", seed 5")       # the end state shown: the last run's
        heat = app.charts.chart("heatmap")
        assert heat.label == "seed 5"
        # the heatmap holds the second seed's steps alone, not the first's joined before them
        second = run_training(cfg, seeds=(3, 5))["runs"][1]
        assert [step for step, _ in heat.data] == [s["step"] for s in second["steps"]]
        assert list(heat.data[-1][1]) == pytest.approx(
            [log10_or_none(d["grad_w_absmean"]) for d in second["steps"][-1]["layers"]], rel=1e-6)
        # b pins the run the charts show: the second seed's end state and its epochs alone, drawn as the baseline's
        # one curve (both seeds' had been pinned and drawn as one), its seed and lr in its label
        await pilot.press("b")
        await pilot.pause()
        base = app.baseline
        assert [e["train_loss"] for e in base.epochs] == pytest.approx([e["train_loss"] for e in second["epochs"]])
        assert {e["run"] for e in base.epochs} == {0} and base.config["lr"] == cfg.lr
        assert base.config["seed"] == 5 and base.label.startswith("train seed 5 ")
        assert base.label.endswith(f"sgd lr {cfg.lr:g}")
        pinned = app.log_pane.messages()[-1]
        assert pinned.count("seed 5") == 1 and pinned.startswith("pinned the current train ")


@pilot_test
async def test_an_export_while_a_run_goes_on_writes_the_screen_alone(tmp_path):
    app = make_app(SMALL.replace(epochs=5000, n_rows=200), export_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        app.action_probe()
        await settle(pilot, app)                    # a result from before: not to be exported beside this run
        await pilot.press("t")
        for _ in range(100):
            await pilot.pause(0.05)
            if app.bridge.running and app.charts.chart("forward").data.label.startswith("train"):
                break
        await pilot.press("b", "e")
        await pilot.pause()
        assert app.bridge.running
        pinned, exported = app.log_pane.messages()[-2:]
        assert pinned.startswith("pinned the current train ") and pinned.endswith(", still running) as the baseline")
        assert exported.startswith("a training is running: wrote the screen to ")
        assert app.log_pane.entries[-1][1] == "info"          # as said, not a warning: the screen was written
        assert [p.suffix for p in tmp_path.iterdir()] == [".svg"]
        await pilot.press("s")
        await settle(pilot, app)


@pilot_test
async def test_w_saves_the_forms_settings_as_toml_that_initlab_config_opens(tmp_path):
    from initlab.tui.app_main import app_config
    from initlab.tui.cli import main

    app = make_app(export_dir=str(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, app)
        app.form.widget_for("depth").value = "x"
        await pilot.pause()
        app.action_save_config()                    # a refused field: said, nothing written
        assert "cannot write the configuration: depth: 'x' is not allowed" in app.log_pane.messages()[-1]
        assert not list(tmp_path.glob("*.toml"))
        app.form.widget_for("depth").value = "7"
        app.form.widget_for("activation").value = "relu"
        app.extras.set_value("vary", "lr=0.01,0.1; epochs=1,2")
        app.extras.set_value("sweep_runs", "train")
        app.extras.set_value("widths", "16,32")
        await pilot.pause()
        await pilot.press("escape", "w")
        await pilot.pause()
        saved = app.form.config()
        [f] = tmp_path.glob("initlab-config-*.toml")
        assert app.log_pane.messages()[-1] == f"wrote the configuration to {f} (initlab --config {f} opens it)"
    cfg, extras, opened, preset = app_config(str(f))
    assert preset == "" and cfg == saved and saved.depth == 7 and saved.activation == "relu"
    assert extras == {"vary": "lr=0.01,0.1 epochs=1,2", "sweep_runs": "train", "widths": "16,32"}
    assert opened == (f"opened {f}",)
    reopened = make_app(cfg, extras=extras, opened=opened)
    async with reopened.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert reopened.form.config() == saved and reopened.extras.values()["vary"] == "lr=0.01,0.1 epochs=1,2"
        assert reopened.extras.parsed("sweep_runs") == "train" and reopened.log_pane.messages()[0] == f"opened {f}"
    # the commands read the same file: a sweep of trainings over its grid
    assert main(["sweep", "--config", str(f), "--width", "4", "--n-rows", "40", "--json"]) == 0
    # a file a command saved opens in the app, what it holds that the app has no field for said
    sweep_toml = tmp_path / "s.toml"
    assert main(["sweep", "--vary", "depth=2,3", "--width", "8", "--save-config", str(sweep_toml), "--json"]) == 0
    cfg, extras, opened, _ = app_config(str(sweep_toml))
    assert extras["vary"] == "depth=2,3" and extras["sweep_runs"] == "probe" and cfg.width == 8
    assert len(opened) == 1         # its metric is the default: nothing to say of it
    assert main(["sweep", "--vary", "depth=2, 3", "--width", "8", "--metric", "last_a_std",
                 "--save-config", str(sweep_toml), "--json"]) == 0
    cfg, extras, opened, _ = app_config(str(sweep_toml))
    assert extras["vary"] == "depth=2,3"        # one --vary item with a space: one item of the field still
    assert opened[1] == "the file's metric is the command line's: the app has no such field"
    eoc = tmp_path / "eoc.toml"
    assert main(["sweep", "--preset", "edge-of-chaos-tanh", "--depth", "2", "--width", "4", "--vary", "sigma_w=1.0",
                 "--vary", "sigma_b=0", "--save-config", str(eoc), "--json"]) == 0
    cfg, extras, _, preset = app_config(str(eoc))        # a sweep preset's net, the file's grid
    assert cfg.init == "scaled_normal" and cfg.depth == 2 and extras["vary"] == "sigma_w=1.0 sigma_b=0"
    (tmp_path / "eoc_only.toml").write_text('preset = "edge-of-chaos-tanh"\n')
    _, extras, _, _ = app_config(str(tmp_path / "eoc_only.toml"))       # no grid in the file: the preset's own
    assert extras["vary"].startswith("sigma_w=0.7071067811865476,") and " sigma_b=0.0," in extras["vary"]
    bad = tmp_path / "bad.toml"
    bad.write_text('train = "yes"\n')
    with pytest.raises(SpecError, match="train: 'yes' is not allowed; true or false"):
        app_config(str(bad))
    (tmp_path / "few.toml").write_text('preset = "sigmoid-vanishing"\ndepth = 5\n')
    few, _, opened, _ = app_config(str(tmp_path / "few.toml"))        # over the preset's settings
    assert few.depth == 5 and few.activation == "sigmoid"
    assert opened == (f"opened {tmp_path / 'few.toml'}: preset sigmoid-vanishing, with the file's settings over it",)
    assert main(["--config", str(f), "theory"]) == 2        # before a command it would be the app's, unread
    (tmp_path / "matrix.toml").write_text('preset = "random-matrix"\n')
    with pytest.raises(SpecError, match="preset: 'random-matrix' is not allowed; a network or sweep preset"):
        app_config(str(tmp_path / "matrix.toml"))
    # an empty grid is kept as such; a refused field read from a file says so as the app opens
    (tmp_path / "empty.toml").write_text('vary = []\nwidths = "64,x"\n')
    cfg, extras, opened, _ = app_config(str(tmp_path / "empty.toml"))
    assert extras == {"vary": "", "widths": "64,x"}
    shown = make_app(cfg, extras=extras, opened=opened)
    async with shown.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert shown.extras.values()["vary"] == ""
        assert "'64,x' is not allowed" in str(shown.extras.query_one(".error-widths").render())


@pilot_test
async def test_a_several_seed_presets_file_keeps_its_seeds_in_the_app_and_w_keeps_them(tmp_path):
    from initlab.tui.app_main import app_config

    f = tmp_path / "seeds.toml"
    f.write_text('preset = "seed-sensitivity"\n')
    cfg, extras, opened, preset = app_config(str(f))
    assert preset == "seed-sensitivity"
    app = make_app(cfg, extras=extras, opened=opened, preset=preset, export_dir=str(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.preset_seeds(app.form.config()) == PRESETS["seed-sensitivity"].seeds     # both, as the CLI runs
        from textual.widgets import Select

        assert app.form.query_one("#preset", Select).value == "seed-sensitivity"      # named in the selector
        app.action_save_config()
        await pilot.pause()
        [saved] = tmp_path.glob("initlab-config-*.toml")
        text = saved.read_text()
        assert 'preset = "seed-sensitivity"' in text and "\nseed = " not in text
        app.extras.set_value("vary", "depth=3,x")
        await pilot.pause()
        app.action_probe()          # a refused grid stops every run: said under its own field's name
        assert app.log_pane.messages()[-1].startswith("cannot run: vary: depth: 'x' is not allowed")
    # as the command line runs such files: a changed setting keeps the seeds, a seed named runs alone
    f.write_text('preset = "seed-sensitivity"\nepochs = 5\n')
    cfg, extras, opened, preset = app_config(str(f))
    app = make_app(cfg, extras=extras, opened=opened, preset=preset)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.preset_seeds(app.form.config()) == PRESETS["seed-sensitivity"].seeds
    f.write_text('preset = "seed-sensitivity"\nseed = 420\n')
    assert app_config(str(f))[3] == ""
    f.write_text('preset = "edge-of-chaos-tanh"\n')          # a sweep preset's name is written back too
    cfg, extras, opened, preset = app_config(str(f))
    app = make_app(cfg, extras=extras, opened=opened, preset=preset, export_dir=str(tmp_path / "eoc"))
    (tmp_path / "eoc").mkdir()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.action_save_config()
        await pilot.pause()
    [saved] = (tmp_path / "eoc").glob("initlab-config-*.toml")
    assert 'preset = "edge-of-chaos-tanh"' in saved.read_text()


@pilot_test
async def test_the_log_names_the_gain_used_and_a_field_the_run_does_not_read():
    app = make_app(SMALL.replace(activation="relu", init="xavier_uniform", epochs=1, n_rows=60))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        # xavier's empty gain is relu's sqrt 2: said, since two probes of "xavier" differ by it
        assert any(m.startswith("probing 6 x 32 relu, init xavier_uniform, gain 1.414 (relu's)")
                   for m in app.log_pane.messages())
        await pilot.press("b")
        assert app.baseline.label == "probe seed 3 relu xavier_uniform gain 1.414"
        app.form.widget_for("gain").value = "1"
        app.form.widget_for("init").value = "kaiming_normal"
        await pilot.pause()
        before = len(app.log_pane.messages())
        await pilot.press("p")
        await settle(pilot, app)
        said = app.log_pane.messages()[before:]
        note = ("note: init kaiming_normal does not read gain; init xavier_uniform, xavier_normal, orthogonal do; "
                "gain 1 was not used")
        assert said.count(note) == 1 and any(m == "probing 6 x 32 relu, init kaiming_normal" for m in said)
        before = len(app.log_pane.messages())
        await pilot.press("p")          # said once, not at every run with the same fields
        await settle(pilot, app)
        assert note not in app.log_pane.messages()[before:]
        # a training's baseline: the Training chart's key names it as the Forward chart's does
        app.form.widget_for("init").value = "xavier_uniform"
        await pilot.pause()
        await pilot.press("t")
        await settle(pilot, app)
        await pilot.press("b")
        app.charts.show_tab("training")
        await pilot.pause()
        label = app.baseline.label
        assert label.startswith("train seed 3 relu xavier_uniform gain 1 sgd lr")
        assert f"baseline train ({label})" in " ".join(app.charts.chart("training").render().plain.split())


@pilot_test
async def test_a_long_field_left_reads_from_its_start():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        app.open_field("vary")          # its group opened, then the cursor put in it
        await pilot.pause()
        app.form.focus_field("vary")
        await pilot.pause()
        field = app.extras.query_one("#field-vary")
        assert app.focused is field
        field.value = "activation=sigmoid,tanh,gelu,relu,elu,selu,silu,softplus"
        field.cursor_position = len(field.value)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert field.scroll_x == 0 and field.cursor_position == len(field.value)
        field.focus()                   # back in it (as a refusal puts it), the view is at the cursor again
        await pilot.pause()
        assert field.scroll_x > 0
        await pilot.press("x")
        assert field.value.endswith("softplusx") and field.scroll_x > 0


@pilot_test
async def test_every_tab_is_in_sight_at_any_width():
    from textual.widgets import TabbedContent

    from initlab.tui.widgets.charts_pane import TABS

    app = make_app()
    for size in ((160, 40), (100, 30), (80, 24)):
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for shown in (False, True):       # the configuration pane takes 40 columns from the charts
                app.set_class(shown, "show-config")
                await pilot.pause()
                await pilot.pause()
                tabs = app.query_one(TabbedContent)
                bar = app.charts.region
                for i, (tid, title, *_rest) in enumerate(TABS, start=1):
                    tab = tabs.get_tab(tid)
                    assert bar.contains_region(tab.region), (size, shown, tid, tab.region, bar)
                    assert tab.label.plain.startswith(f"{i % 10} ")
                    if size == (160, 40) and not shown:
                        assert tab.label.plain == f"{i % 10} {title}"       # whole names where they fit
        app = make_app()


@pilot_test
async def test_a_note_is_said_once_while_its_field_stays_unread_and_the_features_note_once():
    from initlab.engine.events import RESIZED

    app = make_app(SMALL.replace(init="kaiming_normal", gain=1.0, epochs=1, n_rows=60))
    async with app.run_test(size=(160, 48)) as pilot:
        gain = "note: init kaiming_normal does not read gain; init xavier_uniform, xavier_normal, orthogonal do; " \
               "gain 1 was not used"
        await pilot.press("p")
        await settle(pilot, app)
        app.form.widget_for("optimizer").value = "adam"
        app.form.widget_for("momentum").value = "0.9"
        await pilot.pause()
        for key in ("t", "t"):
            await pilot.press(key)
            await settle(pilot, app)
        said = app.log_pane.messages()
        assert said.count(gain) == 1        # a second note (momentum) does not bring the first back
        assert said.count("note: optimizer adam does not read momentum; sgd, rmsprop do; momentum 0.9 was not used") == 1
        # the form's probe sizes against the data's: said at the first training, not at each
        assert sum(m.startswith(RESIZED) for m in said) == 1
        table = app.charts.chart("training").table()[1]
        assert table[0][0] == "1"           # a run counted from 1, as the log counts it


@pilot_test
async def test_a_tab_key_in_the_narrow_drawer_shows_the_charts_and_the_footer_says_escape_leaves_a_field():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.has_class("narrow")
        app.set_class(True, "show-config")
        app.form.focus_field("depth")
        await pilot.pause()
        footer = " ".join(b.binding.description for b in app.active_bindings.values() if b.binding.show)
        assert "leave field" in footer
        await pilot.press("escape", "5")
        await pilot.pause()
        assert app.charts.active == "training" and not app.has_class("show-config")


@pilot_test
async def test_the_numbers_tables_rows_are_reached_from_the_keyboard():
    from initlab.tui.widgets.numbers import NumbersTable

    app = make_app(SMALL.replace(depth=60, width=16, in_features=16, out_features=16))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        await pilot.press("n")
        await pilot.pause()
        table = app.charts.query_one(NumbersTable)
        assert table.row_count == 60 and table.scroll_y == 0
        assert app.focused is table         # the keys below go to it, not to the form's preset selector
        await pilot.press("end")
        await pilot.pause()
        assert table.scroll_y > 0           # the last layer is in sight
        await pilot.press("home", "down", "down", "pagedown")
        await pilot.pause()
        assert table.cursor_row > 2
        # another page of columns, or the table laid out again, keeps the reader's row
        row = table.cursor_row
        table.show(table.shown[0] + ["extra"], [r + ["1"] for r in table.shown[1]], keys=table.keys)
        await pilot.pause()
        assert table.cursor_row == row
        await pilot.press("escape", "home")     # with no widget focused the app's own keys move it
        await pilot.pause()
        assert app.focused is None and table.scroll_y == 0
        await pilot.press("n")
        await pilot.pause()
        assert not table.display and app.focused is None


@pilot_test
async def test_the_palette_tells_where_the_random_matrix_runs():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        palette_commands(app)["Preset random-matrix"]()
        await pilot.pause()
        assert app.log_pane.messages()[-1].endswith("initlab probe --preset random-matrix runs it")
        assert app.last_kind == ""          # nothing ran


@pilot_test
async def test_a_narrow_header_drops_the_apps_name_before_the_run_state():
    from initlab.tui.widgets.status_bar import StatusBar

    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot, app)
        bar = app.query_one(StatusBar)
        state = "training epoch 157/400 step 12201/42000"
        bar.state = state
        await pilot.pause()
        line = bar.render().plain
        assert line.endswith(state) and "initlab" not in line and len(line) <= 60
        bar.state = "idle"
        await pilot.pause()
        assert bar.render().plain.startswith(" initlab │ device ")        # room for all of it
