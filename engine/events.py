"""The events the engine emits: frozen dataclasses of plain Python values, never tensors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESIZED = "in_features and out_features follow the data:"   # how a training says so (the app says it once)


@dataclass(frozen=True)
class Event:
    job: str                        # "probe", "train", "sweep", ...


@dataclass(frozen=True)
class Started(Event):
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    total_steps: int | None = None      # the whole job's (every seed's, for several); None where not known ahead
    replaced: bool = False          # a running job was cancelled to make room for this one


@dataclass(frozen=True)
class LayerStats(Event):
    """Per-layer statistics of one probe or one sampled training step; `final`: a finished training's end state
    (the first training batch after the last update, with distinct units), not a step's."""

    step: int = 0
    epoch: int = 0
    layers: tuple[dict[str, Any], ...] = ()
    distributions: tuple[dict[str, list[float]], ...] | None = None
    input_std: float | None = None
    final: bool = False
    run: int = 0            # which run of a training of several seeds (0 for the first, or the only one)


@dataclass(frozen=True)
class Progress(Event):
    step: int = 0
    total_steps: int = 0    # of this run: a training of several seeds counts each seed's steps from 0
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    steps_per_sec: float = 0.0
    run: int = 0            # which of `runs` trainings (one per seed) this is
    runs: int = 1


@dataclass(frozen=True)
class EpochEnd(Event):
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    train_loss: float | None = None
    test_loss: float | None = None
    train_acc: float | None = None
    test_acc: float | None = None
    run: int = 0                    # which run of a several-seed preset


@dataclass(frozen=True)
class LogLine(Event):
    level: str = "info"             # info, warning, error
    message: str = ""


@dataclass(frozen=True)
class WarningLine(LogLine):
    """A log line of level warning, typed apart: a subscriber may take the warnings alone, and every reader of
    LogLine still sees them."""

    level: str = "warning"


def log_line(job: str, level: str, message: str) -> LogLine:
    """A LogLine, or a WarningLine for level warning."""
    return (WarningLine if level == "warning" else LogLine)(job, level, message)


@dataclass(frozen=True)
class NonFinite(Event):
    step: int = 0
    layer: int | None = None
    tensor: str = "loss"            # activation, gradient, weight or loss


@dataclass(frozen=True)
class Finished(Event):
    result: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Failed(Event):
    message: str = ""


@dataclass(frozen=True)
class Cancelled(Event):
    result: dict[str, Any] = field(default_factory=dict)
