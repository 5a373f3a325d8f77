"""The app under abuse: it never raises, shows every refusal beside its field, loses no key, goes on.

Random text typed into every field of the form, keys every 10 ms while a training runs, and jobs that fail.
"""
from __future__ import annotations

import os
import random
import re
import textwrap
import threading
import time

from textual import events
from textual.widgets import Input, TabbedContent

from initlab.engine.events import Progress
from initlab.engine.jobs import TrainJob
from initlab.engine.spec import FIELDS, Config, field_error
from initlab.tui.app import InitlabApp
from initlab.tui.widgets.charts_pane import TABS, tab_key
from initlab.tui.widgets.extra_fields import EXTRAS, extra_error

from apphelp import make_app, pilot_test, settle, start_training

SMALL = Config(depth=4, width=16, in_features=16, out_features=16, batch=8, device="cpu", seed=1)
TRAIN = Config(depth=3, width=8, data="poly", n_rows=200, batch=10, epochs=2, stats_every=2, loss="mse",
               device="cpu", seed=1, init="xavier_uniform", lr=0.01)
LONG_TRAIN = TRAIN.replace(epochs=100_000, n_rows=2000, stats_every=5)
# Issue 6 asks for 30 s of keys; the suite runs 10 s (INITLAB_LOAD_SECONDS=30 runs the full length)
LOAD_SECONDS = float(os.environ.get("INITLAB_LOAD_SECONDS", "10"))
FUZZ_ROUNDS = 6

TEXT_FIELDS = [n for n, info in FIELDS.items() if not info.choices and info.kind is not bool and n != "device"]
FORM_FIELDS = TEXT_FIELDS + list(EXTRAS)
PIECES = ["", " ", "0", "-1", "+5", "-0", "3.5", "1e309", "1e-400", "nan", "NaN", "inf", "-inf", "1_000", "0x10",
          "9" * 40, "None", "auto", "true", "1,2", "1;2", "[1]", "=", ",", ";", ":", ".py", "depth=", "init=",
          "sigma_w=0,", "x.py:f", "os:path", "∞", "名前", "😀", "\x00", "\t", "'", '"', "\\", "a" * 300, "é"]
TYPEABLE = "abcxyz0123456789-+.,;:=e_ "





def random_text(rng: random.Random, typeable: bool) -> str:
    """A random string: printable ASCII to type key by key, or anything at all to paste whole."""
    if typeable:
        return "".join(rng.choice(TYPEABLE) for _ in range(rng.randint(1, 6)))
    parts = [rng.choice(PIECES) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        parts.append("".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 6))))
    return "".join(parts)


def expected_error(name: str, raw: str) -> str | None:
    return extra_error(name, raw) if name in EXTRAS else field_error(name, raw)


def raw_of(app: InitlabApp, name: str) -> str:
    return app.extras.raw[name] if name in EXTRAS else app.form.values()[name]


def shown_error(app: InitlabApp, name: str) -> str | None:
    boxes = app.screen.query(f".error-{name}")
    return str(boxes.first().render()) if boxes else None


@pilot_test
async def test_random_text_in_every_field_is_refused_beside_it_and_starts_nothing():
    rng = random.Random(20261124)
    app = make_app(SMALL)
    app.animation_level = "none"
    tried = typed = refused = 0
    async with app.run_test(size=(110, 36), notifications=True) as pilot:
        await settle(pilot, app)
        originals = {n: raw_of(app, n) for n in FORM_FIELDS}
        for case in range(FUZZ_ROUNDS):
            if case % 2 == 0:
                # every field at once, pasted whole: any character, any length
                for name in FORM_FIELDS:
                    app.screen.query_one(f"#field-{name}", Input).value = random_text(rng, typeable=False)
                    tried += 1
            else:
                # two fields typed key by key, the cursor in each in turn
                for name in rng.sample(FORM_FIELDS, 2):
                    text = random_text(rng, typeable=True)
                    app.form.focus_field(name)
                    await pilot.pause()
                    widget = app.screen.query_one(f"#field-{name}", Input)
                    assert app.focused is widget, name
                    widget.value = ""
                    await pilot.press(*text)
                    assert widget.value == text
                    tried += 1
                    typed += 1
            await pilot.pause()
            for name in FORM_FIELDS:
                want = expected_error(name, raw_of(app, name))
                got = shown_error(app, name)
                assert (got is None) == (want is None), (name, raw_of(app, name), got, want)
                if want is not None:
                    # the reason, beside the field (its name is in the row above), and the field marked
                    assert got == want.split(": ", 1)[-1]
                    assert app.screen.query_one(f"#field-{name}").has_class("-refused")
            bad = {**app.form.errors(), **app.extras.errors()}
            refused += len(bad)
            if bad:
                await pilot.press("escape", "pt"[case // 2 % 2])     # p and t in turn: each refused
                await pilot.pause()
                assert app.last_kind == "" and not app.bridge.running and not app._starting
                level, message = app.log_pane.entries[-1][1:]
                assert level == "error" and message.startswith("cannot run: ")
                assert re.match(r"cannot run: (\w+): ", message).group(1) in bad
            app.clear_notifications()
            for name in FORM_FIELDS:
                if raw_of(app, name) != originals[name]:
                    app.screen.query_one(f"#field-{name}", Input).value = originals[name]
            await pilot.pause()
            assert not app.form.errors() and not app.extras.errors()
            assert not app.screen.query(".field-error")
        # the app still works: the restored form probes
        app.set_focus(None)
        await pilot.press("p")
        await settle(pilot, app)
        assert app.run_state == "idle" and len(app.last_result["layers"]) == SMALL.depth
    assert tried == FUZZ_ROUNDS // 2 * (len(FORM_FIELDS) + 2) and refused > tried // 3
    print(f"fuzzed form: {tried} values in {FUZZ_ROUNDS} rounds ({typed} typed key by key), {refused} refused")


@pilot_test
async def test_a_field_refused_accepted_and_refused_again_within_one_tick_shows_one_reason():
    app = make_app(SMALL)
    async with app.run_test(size=(110, 36)) as pilot:
        await settle(pilot, app)
        field = app.screen.query_one("#field-std", Input)
        for value in ("1e", "1e1", "1e1e"):     # three keys that arrive together (fast typing, a slow link)
            field.value = value
        await pilot.pause()
        assert app.is_running and shown_error(app, "std") == field_error("std", "1e1e").split(": ", 1)[-1]
        assert len(app.screen.query(".error-std")) == 1
        field.value = "1"
        await pilot.pause()
        assert not app.screen.query(".error-std") and app.return_code is None


@pilot_test
async def test_keys_every_10_ms_while_training_are_all_handled_and_the_screen_keeps_updating():
    seen: dict[int, object] = {}

    def hook(message) -> None:
        # a message bubbles through several widgets; each one counts once
        if isinstance(message, (TabbedContent.TabActivated, events.Key)):
            seen.setdefault(id(message), message)

    app = make_app(LONG_TRAIN)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await settle(pilot, app)
        app.set_focus(None)
        await start_training(pilot, app)
        seen.clear()
        keys = [tab_key(i) for i in range(1, len(TABS) + 1)]
        sent: list[str] = []
        driver = app._driver

        def keyboard() -> None:
            """A key every 10 ms, delivered from a thread as a terminal's input thread delivers them."""
            t0 = due = time.monotonic()
            while time.monotonic() - t0 < LOAD_SECONDS:
                key = keys[(len(sent) + 1) % len(keys)]      # from 2 on: every key a tab other than the one shown
                driver.process_message(events.Key(key, key))
                sent.append(key)
                due += 0.01
                time.sleep(max(0.0, due - time.monotonic()))

        steps: list[int] = []
        heat_versions = {app.charts.chart("heatmap").version}
        typist = threading.Thread(target=keyboard, name="keyboard")
        typist.start()
        while typist.is_alive():
            await pilot.pause(0.5)
            m = re.search(r"step (\d+)/", app.run_state)
            if m:
                steps.append(int(m.group(1)))
            heat_versions.add(app.charts.chart("heatmap").version)
        # every key is handled, in order, however far behind the app fell
        t1 = time.monotonic()
        while sum(isinstance(m, TabbedContent.TabActivated) for m in seen.values()) < len(sent):
            await pilot.pause(0.05)
            assert time.monotonic() - t1 < 30, "keys still unhandled"
        await pilot.pause(0.2)
        activated = [m.pane.id for m in seen.values() if isinstance(m, TabbedContent.TabActivated)]
        tab_ids = {tab_key(i): tid for i, (tid, *_rest) in enumerate(TABS, start=1)}
        assert activated == [tab_ids[k] for k in sent]
        assert sum(isinstance(m, events.Key) for m in seen.values()) == len(sent)
        assert app.charts.active == tab_ids[sent[-1]]
        # the training went on and the screen followed it: the status line's step and the heatmap's data
        assert app.bridge.running and app.run_state.startswith("training epoch")
        assert len(sent) >= 50 * LOAD_SECONDS      # the keyboard kept its pace (100 a second when it can)
        # sampled every half second or so: the step never goes back nor stands still for three samples in a row,
        # and the heatmap's data is new in most samples
        assert steps == sorted(steps) and len(set(steps)) >= LOAD_SECONDS / 2
        # never stalled for 3 s (seven samples half a second apart): on two shared cores a second can pass
        # between two sampled steps while a hundred keys a second are handled
        assert not any(len(set(steps[i:i + 7])) == 1 for i in range(len(steps) - 6)), steps
        assert len(heat_versions) >= LOAD_SECONDS / 2
        await pilot.press("s")
        await settle(pilot, app)
        assert app.run_state == "stopped" and app.last_result["stopped"] == "cancelled"
    rate = len(sent) / LOAD_SECONDS
    print(f"load: {len(sent)} keys in {LOAD_SECONDS:.0f} s ({rate:.0f}/s), all handled; steps seen {steps[:3]}..."
          f"{steps[-1]}")


MODEL = """
import torch

from torch import nn

class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
    def forward(self, x):
        h = self.lin(x)
        raise RuntimeError("the forward pass broke")

def broken():
    return Broken(), torch.randn(3, 4)
"""


class FailsMidTraining:
    """A real training whose step raises partway through, as a model whose forward raises mid-training does."""

    name = "train"

    def __init__(self, config: Config, after: int):
        self.config, self.after, self.train = config, after, TrainJob(config)

    def run(self, ctx) -> dict:
        emit, progress = ctx.emit, []

        def tee(ev) -> None:
            emit(ev)
            if isinstance(ev, Progress):
                progress.append(ev)
                if len(progress) == self.after:
                    raise RuntimeError(f"the forward pass broke at step {ev.step}")

        ctx.emit = tee
        return self.train.run(ctx)


@pilot_test
async def test_failed_jobs_are_logged_and_notified_and_the_next_run_works(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(textwrap.dedent(MODEL))
    app = make_app(TRAIN)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot, app)
        # a model whose forward raises, through the model field
        app.extras.set_value("model", f"{path}:broken")
        await pilot.press("p")
        await settle(pilot, app)
        assert app.run_state == "failed"
        assert not app.charts.chart("forward").has_data()         # nothing before it: no chart to mark
        level, message = app.log_pane.entries[-1][1:]
        assert level == "error" and message.startswith("probe failed: model: ")
        assert "RuntimeError: the forward pass broke" in message
        notes = [n for n in app._notifications if n.severity == "error"]
        assert notes and "the forward pass broke" in notes[-1].message and notes[-1].title == "probe failed"
        # a training that fails partway: its statistics so far stay on screen, the failure is said once
        app.extras.set_value("model", "")
        app.start_job(FailsMidTraining(LONG_TRAIN, after=3), "train")
        await settle(pilot, app)
        assert app.run_state == "failed"
        assert app.log_pane.entries[-1][1:] == ("error", "train failed: RuntimeError: the forward pass broke at "
                                                         f"step {app.snapshot.progress.step}")
        assert app.snapshot.stats is not None and app.charts.chart("forward").has_data()
        assert app.charts.chart("forward").data.label.endswith("; then it failed")
        assert sum(n.title == "train failed" for n in app._notifications) == 1
        # the app goes on: keys still act, and the next run finishes
        await pilot.press("5")
        await pilot.pause()
        assert app.charts.active == "training"
        await pilot.press("t")
        await settle(pilot, app)
        assert app.run_state == "idle" and app.last_result["stopped"] == "finished"
        assert len(app.charts.chart("training").data.epochs) == TRAIN.epochs
        await pilot.press("p")
        await settle(pilot, app)
        assert app.run_state == "idle" and len(app.last_result["layers"]) == TRAIN.depth
        assert app.charts.chart("forward").data.label == "probe"
        # a probe refused by the engine (the model again): the charts hold the probe before it, and say so
        app.extras.set_value("model", f"{path}:broken")
        await pilot.press("p")
        await settle(pilot, app)
        assert app.run_state == "failed"
        assert app.charts.chart("glorot").data.label == "probe; the latest probe, after it, failed"
        assert "the latest probe, after it, failed" in app.charts.chart("forward").draw(160, 20).plain.splitlines()[0]


@pilot_test
async def test_statistics_taken_before_their_jobs_start_is_handled_belong_to_that_job():
    """The bridge may hand over a job's first statistics before the app has handled its Started event: they are
    that job's (its settings name a pinned baseline; a failure says they are the failed job's), not the last's."""
    from initlab.engine.events import LayerStats, Started

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        cfg = Config(activation="relu", init="kaiming_normal")
        app._jobs.append(type("Queued", (), {"config": cfg})())
        app.bridge._on_event(Started("probe", config=cfg.to_dict()))      # posted: handled at the next await
        app.bridge._on_event(LayerStats("probe", step=0, layers=({"a_std": 1.0, "index": 0},)))
        app.drain(force=True)                                             # before that Started is handled
        assert app._snap_run == 1 and app._snap_config is cfg
        await pilot.pause()
        assert app._runs == 1 and app._charted == 1
        app.action_pin_baseline()
        assert app.baseline.label == "probe seed 0 relu kaiming_normal"


@pilot_test
async def test_s_while_one_run_replaces_another_stops_them_all(tmp_path):
    """s pressed while a start waits for the run before it to wind down: that start is called off too (it started
    anyway, and the run went on under 'stopping'); q asked about the run before does not quit the next one."""
    app = make_app(TRAIN)
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_job(TrainJob(LONG_TRAIN), "train")
        await pilot.pause(0.3)
        app.action_probe()
        app.start_job(TrainJob(LONG_TRAIN), "train")
        app.action_stop()
        await settle(pilot, app)
        assert not app.bridge.running and app.run_state == "stopped"
        said = app.log_pane.messages()
        # the probe had not started when the training after it was asked for: not said to have been running
        assert "a training was running; a probe replaces it" in said
        assert "a training replaces the probe just asked for" in said
        assert any(m.startswith("the training asked for was not started: s stopped it first") or
                   m.startswith("the probe asked for was not started") for m in said), said
        # e now exports a finished run's result, and only once its end has been handled; what it is of is the run
        # that ran, not a start called off
        assert app._ends == app._runs and app.last_kind == "train"
        app.start_job(TrainJob(LONG_TRAIN), "train")
        await pilot.pause(0.3)
        app.action_stop()
        app.export_dir = str(tmp_path)
        app.action_export()         # s, then e at once: the screen alone, and why
        assert app.log_pane.messages()[-1].startswith("a training is ending: wrote the screen to ")
        assert not list(tmp_path.glob("*.json"))
        await settle(pilot, app)
        app.start_job(TrainJob(LONG_TRAIN), "train")
        await pilot.pause(0.3)
        app.action_sweep("depth-x-init")
        app.action_stop()
        await settle(pilot, app)
        sweep = app.charts.chart("sweep").data
        assert sweep.state == "not started: s stopped it" and app.last_kind == "train"
        assert app.log_pane.messages()[-2:] == ["train stopped",
                                                "the sweep asked for was not started: s stopped it first"]
        app.start_job(TrainJob(LONG_TRAIN), "train")
        await pilot.pause(0.3)
        await pilot.press("q")                  # asks
        await pilot.press("s")
        await settle(pilot, app)
        app.start_job(TrainJob(LONG_TRAIN), "train")
        await pilot.pause(0.3)
        await pilot.press("q")                  # about this new run: asks again, does not quit
        await pilot.pause()
        assert app.is_running and (app.bridge.running or app._starting)
        assert app.log_pane.messages()[-1].startswith("a training is running: q again to quit")
        app.action_stop()
        await settle(pilot, app)


@pilot_test
async def test_a_sweep_replaced_by_another_leaves_the_tab_to_the_new_one():
    from initlab.tui.widgets.sweep_chart import SweepData

    app = make_app(SMALL)
    async with app.run_test(size=(140, 44)) as pilot:
        app.action_sweep("edge-of-chaos-tanh")
        await pilot.pause(0.5)
        app.action_sweep("depth-x-init")
        seen = set()            # what the tab showed while the new sweep ran: its own points, live
        while not app.settled:
            d = app.charts.chart("sweep").data
            if isinstance(d, SweepData):
                seen.add((d.summary.get("total"), d.state))
            await pilot.pause(0.05)
        # never the replaced sweep's 40 points, stopped, under the new sweep's name
        assert all(total == 12 for total, _state in seen), seen
        await settle(pilot, app)
        data = app.charts.chart("sweep").data
        assert isinstance(data, SweepData) and data.state == "finished"
        assert data.summary["done"] == data.summary["total"] == 12 and "depth x init" in data.label
