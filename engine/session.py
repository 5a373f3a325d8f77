"""Session: runs one job at a time on a background thread; events go to a callback and to async iterators."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, Protocol

from .events import Cancelled, Event, Failed, Finished, Started


_log = logging.getLogger("initlab")


class JobCancelled(Exception):
    """Raised inside a job by Context.check() once cancel() was asked for."""


class Context:
    """What a job sees: emit() for events, check() between steps to honour cancellation."""

    def __init__(self, emit: Callable[[Event], None], stop: threading.Event):
        self.emit = emit
        self._stop = stop
        self.partial: dict[str, Any] = {}   # a job keeps its result so far here; a cancel hands it out
        self.stopped = False                # check() raised: the job stopped short (it may still return)

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def check(self) -> None:
        if self._stop.is_set():
            self.stopped = True
            raise JobCancelled()


class Job(Protocol):
    name: str

    def run(self, ctx: Context) -> dict[str, Any]: ...


def describe_error(exc: BaseException) -> str:
    """One line for a failed job; out-of-memory names the memory asked for and what to lower."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    # CUDA says "out of memory"; the CPU allocator "can't allocate memory" or "not enough memory"
    if (type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError) or "out of memory" in low
            or "can't allocate memory" in low or "not enough memory" in low):
        import re

        m = re.search(r"Tried to allocate ([\d.]+ [KMGT]i?B)", str(exc))
        n = re.search(r"you tried to allocate (\d+) bytes", str(exc))
        if m:
            asked = f"tried to allocate {m.group(1)}"
        elif n:
            size, unit = float(n.group(1)), "B"
            for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
                if size < 1024 or unit == "PiB":
                    break
                size /= 1024
            asked = f"tried to allocate {size:.2f} {unit}"
        else:
            asked = "allocation failed"
        return f"out of memory: {asked}; try a smaller batch or width"
    if any(c.__name__ == "SpecError" for c in type(exc).__mro__):       # a refusal (MissingSetting too) says it all
        return text
    return f"{type(exc).__name__}: {text}"


class Session:
    """One job at a time. start() replaces a running job (cancels it, waits for it, then starts)."""

    def __init__(self, callback: Callable[[Event], None] | None = None):
        self._callbacks: list[Callable[[Event], None]] = [callback] if callback else []
        self._queues: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.last_event: Event | None = None

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._callbacks.append(callback)

    def _emit(self, ev: Event) -> None:
        self.last_event = ev
        for cb in list(self._callbacks):
            try:
                cb(ev)
            except Exception:       # a subscriber's bug is its own: the job, the others and the queues go on
                _log.exception("initlab: a Session callback raised on %s; the job goes on", type(ev).__name__)
        for loop, q in list(self._queues):
            try:
                loop.call_soon_threadsafe(q.put_nowait, ev)
            except RuntimeError:        # that loop is closed
                if (loop, q) in self._queues:
                    self._queues.remove((loop, q))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: Job, unless: Callable[[], bool] | None = None) -> bool:
        """Start `job` once the running one has stopped (however long its last step takes: two jobs never run at
        once); False, and nothing started, where `unless` (asked after that wait) says the start was called off
        meanwhile (a stop asked for while the old job wound down)."""
        with self._lock:
            replaced = self.running
            self._stop.set()
            while not self.cancel(wait=True):
                pass
            if unless is not None and unless():
                return False
            self._stop = threading.Event()
            stop = self._stop
            self._thread = threading.Thread(target=self._run, args=(job, stop, replaced), daemon=True,
                                            name=f"initlab-{job.name}")
            self._thread.start()
        return True

    def _run(self, job: Job, stop: threading.Event, replaced: bool) -> None:
        ctx = Context(self._emit, stop)
        t0 = time.perf_counter()
        cfg = getattr(job, "config", None)
        self._emit(Started(job.name, config=cfg.to_dict() if hasattr(cfg, "to_dict") else {},
                           device=getattr(cfg, "device", "cpu"), total_steps=getattr(job, "total_steps", None),
                           replaced=replaced))
        try:
            result = job.run(ctx)
        except JobCancelled:
            self._emit(Cancelled(job.name, result=ctx.partial))
            return
        except BaseException as exc:   # a job's failure is an event; the session and the app go on
            self._emit(Failed(job.name, message=describe_error(exc)))
            return
        if ctx.stopped:
            # it stopped short and returned what it had (a training's steps so far); a job that ran to its end
            # before the stop was asked for finished, and says so
            self._emit(Cancelled(job.name, result=result))
        else:
            self._emit(Finished(job.name, result=result, seconds=time.perf_counter() - t0))

    def cancel(self, wait: bool = True, timeout: float = 5.0) -> bool:
        """Ask the running job to stop; with wait, join its thread. True when no job thread is left."""
        self._stop.set()
        t = self._thread
        if t is not None and wait and t is not threading.current_thread():
            t.join(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> bool:
        t = self._thread
        if t is not None:
            t.join(timeout)
        return not self.running

    def events(self, until_end: bool = False) -> "EventStream":
        """An async iterator of every event from this call on, in order, on the calling event loop (call it in a
        coroutine before start(), so that the job's Started is among them). It ends after the first Finished, Failed
        or Cancelled with `until_end`, else never by itself (break out of it, or close() it)."""
        return EventStream(self, asyncio.get_running_loop(), until_end)

    def close(self) -> None:
        """Stop the running job, if any, and wait for its thread to end (a daemon thread still inside torch when
        the interpreter exits can crash it)."""
        with self._lock:
            self._stop.set()
            while not self.cancel(wait=True):
                pass

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventStream:
    """Session.events(): registered when made, so that nothing emitted after it is lost."""

    def __init__(self, session: Session, loop: asyncio.AbstractEventLoop, until_end: bool):
        self._session = session
        self._queue: asyncio.Queue = asyncio.Queue()
        self._entry = (loop, self._queue)
        self._until_end = until_end
        self._done = False
        session._queues.append(self._entry)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        ev = await self._queue.get()
        if self._until_end and isinstance(ev, (Finished, Failed, Cancelled)):
            self.close()
        return ev

    def close(self) -> None:
        """No more events: those after this are not queued."""
        self._done = True
        if self._entry in self._session._queues:
            self._session._queues.remove(self._entry)
