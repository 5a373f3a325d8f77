"""The app's messages: engine events that cross from the job thread, and results of the app's own workers."""
from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from initlab.engine.events import Event


@dataclass
class EngineEvent(Message):
    """A discrete engine event (started, log line, non-finite, finished, failed, cancelled), in order.
    High-rate events (per-step statistics, progress, epoch ends) never come this way: the bridge merges them."""

    event: Event


@dataclass
class DevicesFound(Message):
    """The devices present on this machine, as (device string, label), once torch has loaded."""

    devices: list[tuple[str, str]]


@dataclass
class CurveReady(Message):
    """An activation's curve and gains, computed on a worker thread."""

    name: str
    slope: float
    x: list[float]
    f: list[float]
    df: list[float]
    max_derivative: float
    torch_gain: float | None
    empirical_gain: float
    rms_gain: float | None = None       # sqrt(E[x^2] / E[f(x)^2]), the second moment's gain


@dataclass
class TheoryReady(Message):
    """Mean-field numbers (engine.theory.mean_field's dict) for the form's activation, sigma_w and sigma_b, with
    the init they describe exactly (scaled_normal) and the form's init, computed on a worker thread."""

    theory: dict
    init: str


@dataclass
class HelperFailed(Message):
    """One of the app's own background computations raised."""

    name: str
    message: str
