"""The one bridge between the engine's Session and the app: discrete events become messages, statistics merge."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

from initlab.engine.events import EpochEnd, Event, LayerStats, Progress, Started
from initlab.engine.history import Bounded
from initlab.engine.session import Job, Session

HEAT_STAT = "grad_w_absmean"    # the heatmap's statistic: the Backward chart's bars, which the presets' figures read
HEAT_COLUMNS = 256          # steps kept for the heatmap; older ones thin out (engine.history.Bounded)
EPOCHS_KEPT = 2048


def log10_or_none(v: Any) -> float | None:
    """log10 of a positive finite number; None for zero, negatives, NaN, inf and None."""
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        return None
    return math.log10(v)


@dataclass(frozen=True)
class Snapshot:
    """The latest merged statistics of the running job: what the charts draw."""

    stats: LayerStats | None
    progress: Progress | None
    epochs: tuple[EpochEnd, ...]
    heat: tuple[tuple[int, tuple[float | None, ...]], ...]   # (step, log10 mean |dL/dW| per layer)
    version: int
    run: int = 0        # which job these are of: the count of jobs started when they came (1 for the first)
    heat_seen: int = 0  # sampled steps the heatmap was given, of which `heat` keeps a thinned part on a long run


class EngineBridge:
    """Owns the Session. On the job thread, statistics, progress and epoch ends go into a slot under a lock
    (the job thread never waits on the UI); every other event goes to `post` as it comes. The UI thread takes
    the slot with take(), at most a few times a second, so the screen shows the latest values, never a backlog."""

    def __init__(self, post: Callable[[Event], None]):
        self._post = post
        self._lock = threading.Lock()
        self._runs = 0
        self._reset()
        self.session = Session(self._on_event)

    def _reset(self) -> None:
        self._stats: LayerStats | None = None
        self._progress: Progress | None = None
        self._epochs: Bounded[EpochEnd] = Bounded(EPOCHS_KEPT)
        self._heat: Bounded[tuple[int, tuple[float | None, ...]]] = Bounded(HEAT_COLUMNS)
        self._version = 0
        self._taken = 0

    def _on_event(self, ev: Event) -> None:
        """Runs on the job thread."""
        if isinstance(ev, LayerStats):
            # the end state is not a step of the run: the heatmap keeps to steps
            column = None if ev.final else tuple(log10_or_none(d.get(HEAT_STAT)) for d in ev.layers)
            with self._lock:
                if self._stats is not None and ev.run != self._stats.run:
                    # a training's next seed starts again at step 0: its heatmap is its own, not joined to the last
                    self._heat = Bounded(HEAT_COLUMNS)
                self._stats = ev
                if column is not None:
                    self._heat.append((ev.step, column))
                self._version += 1
            return
        if isinstance(ev, Progress):
            with self._lock:
                self._progress = ev
                self._version += 1
            return
        if isinstance(ev, EpochEnd):
            with self._lock:
                self._epochs.append(ev)
                self._version += 1
            return
        if isinstance(ev, Started):
            with self._lock:
                self._reset()
                self._runs += 1
        self._post(ev)

    def take(self, force: bool = False) -> Snapshot | None:
        """The merged statistics when they changed since the last take (or always, with force)."""
        with self._lock:
            if self._version == self._taken and not force:
                return None
            self._taken = self._version
            return Snapshot(self._stats, self._progress, tuple(self._epochs.values()), tuple(self._heat.values()),
                            self._version, self._runs, self._heat.seen)

    @property
    def pending(self) -> bool:
        """True while statistics wait in the slot."""
        with self._lock:
            return self._version != self._taken

    @property
    def running(self) -> bool:
        return self.session.running

    def start(self, job: Job, unless: Callable[[], bool] | None = None) -> bool:
        """Start a job, replacing a running one; blocks until that one has stopped, so call it off the UI thread.
        False where `unless` called it off meanwhile."""
        return self.session.start(job, unless)

    def cancel(self, wait: bool = False, timeout: float = 5.0) -> bool:
        return self.session.cancel(wait=wait, timeout=timeout)


class Helpers:
    """Short-lived threads for the app's own torch work (the device list, activation curves). Not Textual's
    thread workers: those run on an executor whose threads outlive the work, and a live thread that has used
    torch's OpenMP pool slows training on the session's thread to less than half (measured on two cores)."""

    def __init__(self, on_error: Callable[[str, BaseException], None]):
        self._on_error = on_error
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def run(self, name: str, fn: Callable[[], None]) -> None:
        def body() -> None:
            try:
                fn()
            except BaseException as exc:      # reported, never raised into the void of a thread
                self._on_error(name, exc)
            finally:
                with self._lock:
                    self._threads.discard(t)

        t = threading.Thread(target=body, name=f"initlab-{name}", daemon=True)
        with self._lock:
            self._threads.add(t)
        t.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._threads)
