"""The jobs a Session runs (probe, training, your model, Jacobian, width check); torch loads on the job's thread."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .events import LayerStats, LogLine, WarningLine, log_line
from .session import Context
from .spec import Config
from .verdict import stable_text, symmetry_note


DEFAULT_WIDTHS = (64, 128, 256, 512, 1024)      # the width check's, here so that its job needs no torch to be made


def verdict_message(v: dict[str, Any]) -> tuple[str, str]:
    """(level, text) for a probe's verdict, as the log shows it."""
    kind, at = v.get("kind"), v.get("from_layer")
    if kind == "stable":
        return "info", f"stable: {stable_text(v)}"
    where = f" from layer {at}" if at is not None else ""
    return "warning", f"{kind}{where}"


@dataclass
class ProbeJob:
    config: Config
    name: str = "probe"

    def run(self, ctx: Context) -> dict[str, Any]:
        from .inits import gain_note
        from .probe import run_probe

        ctx.emit(LogLine(self.name, "info", f"probing {self.config.depth} x {self.config.width} "
                                           f"{self.config.activation}, init {self.config.init}"
                                           f"{gain_note(self.config)}"))
        res = run_probe(self.config, check=ctx.check)
        ctx.emit(LayerStats(self.name, step=0, layers=tuple(res.layers),
                            distributions=tuple(res.distributions) if res.distributions else None,
                            input_std=res.input_std))
        level, text = verdict_message(res.verdict)
        ctx.emit(log_line(self.name, level, f"{text} ({res.seconds:.2f} s on {res.device})"))
        note = symmetry_note(res.layers)
        if note:
            ctx.emit(WarningLine(self.name, "warning", note))
        return res.to_json()


@dataclass
class TrainJob:
    """A training run (or one per seed); its result is the training JSON."""

    config: Config
    seeds: tuple[int, ...] = ()
    name: str = "train"

    @property
    def total_steps(self) -> int | None:
        from .spec import BUILTIN_DATA, steps_per_epoch, validate

        c = self.config
        validate(c)         # a refused setting (a batch of 0) fails the job with its own message
        if c.data not in BUILTIN_DATA:
            return None
        per_epoch = steps_per_epoch(max(1, int(c.n_rows * 0.7)), c.batch, c.norm)
        return per_epoch * c.epochs * max(1, len(self.seeds))

    def run(self, ctx: Context) -> dict[str, Any]:
        from .train import run_training

        return run_training(self.config, ctx.emit, ctx.check, self.seeds, end_distributions=True)


@dataclass(frozen=True)
class UserProbeSettings:
    """The settings of a user-model probe as given (unchecked), for the Started event."""

    model: str
    input_shape: Any
    layers: str | None
    seed: Any
    device: str

    def to_dict(self) -> dict[str, Any]:
        shape = list(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else self.input_shape
        return {"model": self.model, "input_shape": shape, "layers": self.layers, "seed": self.seed,
                "device": self.device}


@dataclass
class UserProbeJob:
    """A probe of the user's own model (`file.py:factory` or `package.module:factory`); its result is the
    user-model probe JSON. Settings are checked on the job's thread, so a refusal arrives as a Failed event
    whose message is the one-line SpecError."""

    model_spec: str
    input_shape: str | tuple[int, ...] | None = None
    layers: str | None = None
    seed: int | str = 0
    device: str = "auto"
    name: str = "probe"

    @property
    def config(self) -> UserProbeSettings:
        return UserProbeSettings(self.model_spec, self.input_shape, self.layers, self.seed, self.device)

    def run(self, ctx: Context) -> dict[str, Any]:
        from .anyprobe import run_user_probe
        from .usermodel import make_spec

        spec = make_spec(self.model_spec, self.input_shape, self.layers, self.seed, self.device)
        shape = f" on N(0, 1) inputs of shape {list(spec.input_shape)}" if spec.input_shape else ""
        ctx.emit(LogLine(self.name, "info", f"probing {spec.model}{shape}"))
        res = run_user_probe(spec, ctx.check)
        for w in res.warnings:
            ctx.emit(WarningLine(self.name, "warning", w["message"]))
        ctx.emit(LayerStats(self.name, step=0, layers=tuple(res.layers), input_std=res.input_std))
        level, text = verdict_message(res.verdict)
        ctx.emit(log_line(self.name, level, f"{text} ({len(res.layers)} modules of {res.model}, loss from "
                                           f"{res.loss_source}, {res.seconds:.2f} s on {res.device})"))
        return res.to_json()


@dataclass
class JacobianJob:
    """The Jacobian spectrum as a Session job."""

    config: Config
    inputs: int = 1
    bins: int = 20
    name: str = "jacobian"

    def run(self, ctx: Context) -> dict[str, Any]:
        from .jacobian import jacobian_spectrum

        return jacobian_spectrum(self.config, self.inputs, self.bins, check=ctx.check)


@dataclass
class WidthsJob:
    """The width check as a Session job: a Progress after each width, cancellable between steps."""

    config: Config
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    steps: int = 5
    name: str = "widths"

    @property
    def total_steps(self) -> int:
        return len(self.widths)

    def run(self, ctx: Context) -> dict[str, Any]:
        from .events import Progress
        from .widths import width_check

        return width_check(self.config, list(self.widths), self.steps, check=ctx.check,
                           progress=lambda i, n: ctx.emit(Progress(self.name, step=i, total_steps=n)))
