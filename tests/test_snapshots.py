"""Snapshot tests of the app at 80x24 and 160x48, on seeded CPU runs.

A fixed clock, no cursor blink, no animation, timings in the log written as 0.00 s.
"""
from __future__ import annotations

import re
import time

import pytest
from textual.widgets import Input

from initlab.engine.presets import PRESETS
from initlab.engine.spec import Config
from initlab.tui.app import InitlabApp
from initlab.tui.widgets.log_pane import LogPane

SIZES = [(80, 24), (160, 48)]
TRAIN = Config(depth=3, width=8, data="poly", n_rows=200, batch=10, epochs=4, stats_every=2, loss="mse",
               device="cpu", seed=1, init="xavier_uniform", lr=0.01)


@pytest.fixture(autouse=True)
def no_timings(monkeypatch):
    """Seconds measured by the engine change from run to run; the picture shows them as 0.00 s."""
    add = LogPane.add

    def scrubbed(self, level: str, message: str) -> None:
        add(self, level, re.sub(r"\d+(\.\d+)? s\b", "0.00 s", message))

    monkeypatch.setattr(LogPane, "add", scrubbed)


def snap_app(cfg: Config, autoprobe: bool = True) -> InitlabApp:
    app = InitlabApp(cfg, autoprobe=autoprobe, clock=lambda: "12:00:00")
    app.animation_level = "none"
    return app


async def settle(pilot) -> None:
    app = pilot.app
    t0 = time.monotonic()
    await pilot.pause()
    while not app.settled:
        await pilot.pause(0.02)
        assert time.monotonic() - t0 < 60
    for inp in app.query(Input):
        inp.cursor_blink = False
    # repaint every widget from scratch: cached lines keep the cuts of earlier partial updates, which differ
    # from run to run with the timing of the updates (same picture, different SVG)
    for w in app.screen.walk_children(with_self=True):
        w.refresh()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_first_screen(snap_compare, size):
    # the default experiment, probed at once
    assert snap_compare(snap_app(Config(device="cpu")), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_linear_explode_probe(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        # the preset's experiment, pinned to the CPU so that the picture is the same on every machine
        pilot.app.form.load(PRESETS["linear-explode"].config.replace(device="cpu"))
        await pilot.press("p")
        await settle(pilot)

    assert snap_compare(snap_app(Config(device="cpu"), autoprobe=False), terminal_size=size,
                        run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_short_seeded_training(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("t")      # train
        await settle(pilot)
        await pilot.press("5")      # the Training tab
        await settle(pilot)

    assert snap_compare(snap_app(TRAIN, autoprobe=False), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_invalid_field(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        if pilot.app.has_class("narrow"):
            await pilot.press("c")                  # open the configuration drawer
        pilot.app.form.focus_field("width")
        pilot.app.form.widget_for("width").value = ""
        await pilot.press("1", "e", "3")            # typed into the field: no export happens
        await pilot.press("escape", "p")            # leave the field; the probe is refused
        pilot.app.form.scroll_home(animate=False)   # the same view whenever the refusal's row was mounted
        await settle(pilot)

    assert snap_compare(snap_app(Config(device="cpu"), autoprobe=False), terminal_size=size,
                        run_before=run_before)
