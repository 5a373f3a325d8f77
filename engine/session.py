"""Session: runs one job at a time on a background thread; events go to a callback and to async iterators."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
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
    if any(c.__name__ == "SpecError" for c in type(exc).__mro__) or getattr(exc, "plain_message", False):
        return text     # a refusal (MissingSetting too), or an engine error worded for the user, says it all
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
        self._ending = threading.local()    # on a job's thread: its end event is being handed out
        self._on_job = threading.local()    # set on every job thread of this session, the latest or an older one
        self._closed_from_job = False       # close() was called by a callback, on the job's thread

    def _on_job_thread(self) -> bool:
        """Whether the calling thread is one of this session's jobs' (a callback runs there)."""
        return getattr(self._on_job, "value", False)

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._callbacks.append(callback)

    def _emit(self, ev: Event) -> None:
        self.last_event = ev
        if isinstance(ev, (Finished, Failed, Cancelled)):
            self._ending.value = True
        for cb in list(self._callbacks):
            try:
                cb(ev)
            except Exception:       # a subscriber's bug is its own: the job, the others and the queues go on
                _log.exception("initlab: a Session callback raised on %s; the job goes on", type(ev).__name__)
        for loop, q in list(self._queues):
            try:
                loop.call_soon_threadsafe(q.put_nowait, ev)
            except RuntimeError:        # that loop is closed
                _unregister(self._queues, (loop, q))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: Job, unless: Callable[[], bool] | None = None) -> bool:
        """Start `job` once the running one has stopped (however long its last step takes: two jobs never run at
        once); False, and nothing started, where `unless` (asked after that wait) says the start was called off
        meanwhile (a stop asked for while the old job wound down). Called on the job's own thread (by a callback,
        or by the job), it returns at once and the new job's thread waits for this one's end instead (so does a
        second start from the same callback: the job the first one queued is stopped and waited for in turn)."""
        if self._on_job_thread():
            with self._lock:
                # from a callback of the job's own end event nothing is replaced: that job has done its work. A job
                # queued behind this thread by an earlier call is: joining it here would wait on this very thread
                ending = getattr(self._ending, "value", False) and self._thread is threading.current_thread()
                self._stop.set()
                self._launch(job, replaced=not ending, after=self._thread)
            return True
        replaced = False
        while True:
            with self._lock:
                t = self._thread
                if t is None or not t.is_alive():
                    if unless is not None and unless():
                        return False
                    self._launch(job, replaced)
                    return True
                replaced = True
                self._stop.set()
            t.join()        # outside the lock: a callback on that thread may start or close meanwhile

    def _launch(self, job: Job, replaced: bool, after: threading.Thread | None = None) -> None:
        self._stop = threading.Event()
        stop = self._stop

        def body() -> None:
            self._on_job.value = True
            if after is not None:
                after.join()
            self._run(job, stop, replaced)
            if self._closed_from_job and self._thread is threading.current_thread():
                # close() was called on this thread (a callback): with no job left to emit, the streams end now
                self._end_streams()

        self._thread = threading.Thread(target=body, daemon=True, name=f"initlab-{job.name}")
        self._thread.start()

    def _run(self, job: Job, stop: threading.Event, replaced: bool) -> None:
        ctx = Context(self._emit, stop)
        t0 = time.perf_counter()
        try:
            # what Started says is read from the job, which may refuse its own settings: a Failed still follows
            cfg = getattr(job, "config", None)
            started = Started(job.name, config=cfg.to_dict() if hasattr(cfg, "to_dict") else {},
                              device=getattr(cfg, "device", "cpu"), total_steps=getattr(job, "total_steps", None),
                              replaced=replaced)
        except BaseException as exc:
            self._emit(Started(job.name, replaced=replaced))
            self._emit(Failed(job.name, message=describe_error(exc)))
            return
        self._emit(started)
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
        """Ask the running job to stop; with wait, join its thread. True when no job thread is left. From a callback
        (on a job's thread) it asks and returns at once: the job it would wait for may be queued behind that thread."""
        self._stop.set()
        t = self._thread
        if t is not None and wait and not self._on_job_thread():
            t.join(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> bool:
        """Join the job's thread; True when no job thread is left. From a callback it cannot wait (see cancel)."""
        t = self._thread
        if t is not None and not self._on_job_thread():
            t.join(timeout)
        return not self.running

    def events(self, until_end: bool = False) -> "EventStream":
        """An async iterator of every event from this call on, in order, on the calling event loop (call it in a
        coroutine before start(), so that the job's Started is among them). With `until_end` it ends after the
        first Finished, Failed or Cancelled; else when it or the session is close()d (or it is dropped): events are
        queued for it until then. A stream hands each event out once: every task that wants them all takes its own."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("Session.events() is called in a coroutine: it needs the running event loop its "
                               "events go to") from None
        return EventStream(self, loop, until_end)

    def close(self) -> None:
        """Stop the running job, if any, and wait for its thread to end (a daemon thread still inside torch when
        the interpreter exits can crash it); then the open event streams end. On the job's own thread (a callback)
        it asks the job to stop, and the streams end as the last job's thread ends (a job a callback queued first
        starts, sees the stop and ends at once)."""
        on_job = self._on_job_thread()
        while True:
            with self._lock:
                t = self._thread
                self._stop.set()
                if on_job and t is not None and t.is_alive():
                    # the latest job's thread may be waiting for this one: it ends the streams as it ends
                    self._closed_from_job = True
                    return
            if t is not None and t.is_alive() and t is not threading.current_thread():
                t.join()
                continue
            self._end_streams()
            return

    def _end_streams(self) -> None:
        # no job is left to emit: open streams end, rather than wait for ever. Taken off first: a stream opened
        # as soon as these end (on the event loop's thread, while this runs on a job's) is not among them
        ended, self._queues = self._queues, []
        self._closed_from_job = False       # done: a session used again ends its new streams at its own close
        for loop, q in ended:
            _end(loop, q)

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
        # a stream dropped without close() stops being fed: else the session would queue for it for ever
        weakref.finalize(self, _unregister, session._queues, self._entry)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        if self._done:      # closed (until_end: after the first end): what was queued behind is not handed out
            raise StopAsyncIteration
        ev = await self._queue.get()
        if ev is _END:
            self._done = True
            self._queue.put_nowait(_END)    # for any other task waiting on this stream
            raise StopAsyncIteration
        if self._until_end and isinstance(ev, (Finished, Failed, Cancelled)):
            self.close()
        return ev

    def close(self) -> None:
        """No more events: those after this are not queued, and a task waiting on the stream is woken (it ends)."""
        if not self._done:
            self._done = True
            _unregister(self._session._queues, self._entry)
            _end(*self._entry)


_END = object()     # put on a stream's queue when it ends: a task awaiting the next event stops waiting


def _end(loop: asyncio.AbstractEventLoop, q: asyncio.Queue) -> None:
    try:
        loop.call_soon_threadsafe(q.put_nowait, _END)
    except RuntimeError:        # that loop is closed: nobody waits on it
        pass


def _unregister(queues: list, entry: tuple) -> None:
    if entry in queues:
        queues.remove(entry)
