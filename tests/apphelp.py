"""What the app's Pilot tests share: running an async test, a quiet app, waiting until it has settled."""
from __future__ import annotations

import asyncio
import functools
import time

from initlab.engine.spec import Config
from initlab.tui.app import InitlabApp

SMALL = Config(depth=6, width=32, in_features=32, out_features=32, batch=16, device="cpu", seed=3)


def pilot_test(fn):
    """Run an async test on its own event loop (no asyncio plugin needed)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        asyncio.run(fn(*args, **kwargs))
    return run


def make_app(cfg: Config = SMALL, **kw) -> InitlabApp:
    """The app on cfg, without the opening probe unless asked, with a fixed clock in the log."""
    kw.setdefault("autoprobe", False)
    return InitlabApp(cfg, clock=lambda: "00:00:00", **kw)


def palette_commands(app: InitlabApp) -> dict[str, object]:
    """The command palette's entries by title, each with the callback it runs."""
    return {c.title: c.callback for c in app.get_system_commands(app.screen)}


async def settle(pilot, app: InitlabApp, timeout: float = 60.0) -> None:
    """Wait until no job runs, no worker is busy and the charts hold the last statistics."""
    t0 = time.monotonic()
    await pilot.pause()
    while not app.settled:
        await pilot.pause(0.02)
        assert time.monotonic() - t0 < timeout, f"app did not settle: {app.run_state}"
    await pilot.pause()


async def start_training(pilot, app: InitlabApp, timeout: float = 30.0) -> None:
    """Press t and wait until the app reports a training under way."""
    await pilot.press("t")
    t0 = time.monotonic()
    while not app.run_state.startswith("training epoch"):
        await pilot.pause(0.02)
        assert time.monotonic() - t0 < timeout
