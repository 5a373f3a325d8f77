"""The jobs a Session runs: probe and training; torch is imported on the job's thread, not at import time."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .events import LayerStats, LogLine
from .session import Context
from .spec import Config


def verdict_message(v: dict[str, Any]) -> tuple[str, str]:
    """(level, text) for a probe's verdict, as the log shows it."""
    kind, at = v.get("kind"), v.get("from_layer")
    if kind == "stable":
        return "info", "stable: no layer's signal vanishes or explodes"
    where = f" from layer {at}" if at is not None else ""
    return "warning", f"{kind}{where}"


@dataclass
class ProbeJob:
    config: Config
    name: str = "probe"

    def run(self, ctx: Context) -> dict[str, Any]:
        from .probe import run_probe

        ctx.emit(LogLine(self.name, "info", f"probing {self.config.depth} x {self.config.width} "
                                           f"{self.config.activation}, init {self.config.init}"))
        res = run_probe(self.config)
        ctx.emit(LayerStats(self.name, step=0, layers=tuple(res.layers),
                            distributions=tuple(res.distributions) if res.distributions else None,
                            input_std=res.input_std))
        level, text = verdict_message(res.verdict)
        ctx.emit(LogLine(self.name, level, f"{text} ({res.seconds:.2f} s on {res.device})"))
        return res.to_json()


@dataclass
class TrainJob:
    """A training run (or one per seed); its result is the training JSON."""

    config: Config
    seeds: tuple[int, ...] = ()
    name: str = "train"

    @property
    def total_steps(self) -> int | None:
        from .spec import BUILTIN_DATA

        c = self.config
        if c.data not in BUILTIN_DATA:
            return None
        per_epoch = -(-max(1, int(c.n_rows * 0.7)) // c.batch)
        return per_epoch * c.epochs * max(1, len(self.seeds))

    def run(self, ctx: Context) -> dict[str, Any]:
        from .train import run_training

        return run_training(self.config, ctx.emit, ctx.check, self.seeds)
