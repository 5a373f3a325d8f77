"""Session: events in order, callbacks and async iteration, cancel latency, replacement, failures as events."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from initlab.engine.events import (Cancelled, EpochEnd, Failed, Finished, LayerStats, LogLine, Progress,
                                   Started)
from initlab.engine.jobs import ProbeJob, TrainJob
from initlab.engine.session import Session, describe_error
from initlab.engine.spec import Config

LONG = Config(depth=4, width=32, data="poly", batch=10, epochs=1000, stats_every=5, device="cpu", lr=0.001)


def job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("initlab-")]


def test_probe_job_events_in_order_with_plain_values():
    events = []
    s = Session(events.append)
    s.start(ProbeJob(Config(depth=3, width=8, in_features=8, out_features=8, device="cpu")))
    assert s.wait(30)
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    stats = next(e for e in events if isinstance(e, LayerStats))
    assert len(stats.layers) == 3 and all(isinstance(v, (int, float, str, type(None)))
                                          for d in stats.layers for v in d.values())
    assert events[-1].result["verdict"]["kind"] in ("stable", "vanishing", "exploding", "nonfinite")


def test_train_job_emits_progress_epochs_and_finishes():
    events = []
    s = Session(events.append)
    s.start(TrainJob(LONG.replace(epochs=2, n_rows=100)))
    assert s.wait(60)
    assert isinstance(events[0], Started) and events[0].total_steps == 2 * 7
    assert any(isinstance(e, Progress) for e in events)
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert isinstance(events[-1], Finished) and events[-1].result["stopped"] == "finished"


def test_cancel_stops_within_half_a_second_and_leaves_no_thread():
    events = []
    s = Session(events.append)
    s.start(TrainJob(LONG))
    deadline = time.monotonic() + 30
    while not any(isinstance(e, Progress) for e in events) and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.perf_counter()
    assert s.cancel(wait=True)
    assert time.perf_counter() - t0 < 0.5
    assert not job_threads()
    assert isinstance(events[-1], Cancelled)
    assert events[-1].result["stopped"] == "cancelled" and events[-1].result["steps_done"] > 0


def test_a_new_job_replaces_a_running_one():
    events = []
    s = Session(events.append)
    s.start(TrainJob(LONG))
    time.sleep(0.3)
    s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
    assert s.wait(30)
    kinds = [type(e).__name__ for e in events]
    assert "Cancelled" in kinds
    second = [e for e in events if isinstance(e, Started)][1]
    assert second.replaced and second.job == "probe"
    assert kinds.index("Cancelled") < kinds.index("Started", 1)
    assert isinstance(events[-1], Finished)


def test_a_start_called_off_while_the_job_before_winds_down_starts_nothing():
    events = []
    s = Session(events.append)
    s.start(TrainJob(LONG))
    time.sleep(0.3)
    asked = []
    probe = ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu"))
    # asked after the wait: the training has ended by then, and the start is called off
    assert s.start(probe, unless=lambda: asked.append(s.running) or True) is False
    assert asked == [False] and not s.running and not job_threads()
    assert [type(e).__name__ for e in events if not isinstance(e, (Progress, LayerStats, LogLine, EpochEnd))] == \
        ["Started", "Cancelled"]
    assert s.start(probe, unless=lambda: False) is True and s.wait(30) and isinstance(events[-1], Finished)


class Boom:
    name = "boom"

    def run(self, ctx):
        raise RuntimeError("forward failed\nsecond line of detail")


def test_an_exception_becomes_a_one_line_failed_event_and_the_session_goes_on():
    events = []
    s = Session(events.append)
    s.start(Boom())
    assert s.wait(10)
    assert isinstance(events[-1], Failed) and events[-1].message == "RuntimeError: forward failed"
    s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
    assert s.wait(30) and isinstance(events[-1], Finished)


def test_bad_config_fails_with_the_field_named():
    events = []
    s = Session(events.append)
    s.start(TrainJob(LONG.replace(device="cuda:7")))
    assert s.wait(10)
    assert isinstance(events[-1], Failed) and events[-1].message.startswith("device: 'cuda:7'")


def test_out_of_memory_message_names_the_size_and_the_remedy():
    class OutOfMemoryError(RuntimeError):
        pass
    msg = describe_error(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.50 GiB (GPU 0; 79.1 GiB total)"))
    assert msg == "out of memory: tried to allocate 2.50 GiB; try a smaller batch or width"


def test_async_iterator_sees_every_event():
    async def main():
        s = Session()
        seen = []

        async def consume():
            async for ev in s.events():
                seen.append(ev)
                if isinstance(ev, (Finished, Failed)):
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
        await asyncio.wait_for(task, 30)
        return seen

    seen = asyncio.run(main())
    assert isinstance(seen[0], Started) and isinstance(seen[-1], Finished)
    assert any(isinstance(e, LogLine) for e in seen)


def test_events_are_frozen():
    ev = Progress("train", step=1)
    with pytest.raises(Exception):
        ev.step = 2  # type: ignore[misc]


def stop_at(n: int):
    """A job's check that cancels on its n-th call, and the list of its calls."""
    from initlab.engine.session import JobCancelled

    calls = []

    def check():
        calls.append(1)
        if len(calls) == n:
            raise JobCancelled()

    return calls, check


def test_a_probe_is_cancelled_between_its_layers():
    """A probe checks for a stop at every layer of its forward pass: a deep one stops when asked, not at its end."""
    from initlab.engine.probe import run_probe
    from initlab.engine.session import JobCancelled

    calls, check = stop_at(3)

    cfg = Config(depth=6, width=8, in_features=8, out_features=8, device="cpu")
    with pytest.raises(JobCancelled):
        run_probe(cfg, check=check)
    assert len(calls) == 3
    assert len(run_probe(cfg).layers) == 6         # the taps were taken off: a next probe runs whole
    events = []
    s = Session(events.append)
    s.start(ProbeJob(Config(depth=1500, width=256, batch=64, device="cpu")))
    time.sleep(0.3)
    assert s.cancel(wait=True)
    assert isinstance(events[-1], Cancelled) and not any(isinstance(e, Finished) for e in events)
    assert not job_threads()


def test_a_probe_is_cancelled_while_its_net_is_initialised():
    """LSUV scales each layer in turn on a batch: a deep net takes a while before its pass; it checks per layer."""
    from initlab.engine.probe import run_probe
    from initlab.engine.session import JobCancelled

    calls, check = stop_at(40)

    cfg = Config(depth=30, width=16, in_features=16, out_features=16, init="lsuv", device="cpu")
    with pytest.raises(JobCancelled):
        run_probe(cfg, check=check)
    assert len(calls) == 40         # 30 layers initialised, then stopped in LSUV's tenth layer
    assert len(run_probe(cfg).layers) == 30


def test_a_net_with_torchs_default_init_is_cancelled_while_it_is_built():
    """torch's default init draws each layer as it is built; the build checks for a stop before each layer."""
    from initlab.engine.models import build_mlp
    from initlab.engine.session import JobCancelled

    calls, check = stop_at(5)

    cfg = Config(depth=30, width=16, in_features=16, out_features=16, init="default", device="cpu")
    with pytest.raises(JobCancelled):
        build_mlp(cfg, torch.device("cpu"), check=check)
    assert len(calls) == 5          # stopped before its fifth layer was built
    assert len(build_mlp(cfg, torch.device("cpu")).blocks) == 30


def test_a_job_that_ran_to_its_end_finishes_even_if_a_stop_came_late():
    """A stop asked for after the job's last check (a new job replacing one that had just ended) is no cancel: the
    job finished, and says so; a job that stopped short at a check and returned its partial result is cancelled."""
    from initlab.engine.session import JobCancelled

    events = []
    s = Session(events.append)

    class EndsThenStopped:
        name = "probe"

        def run(self, ctx):
            ctx.check()
            s.cancel(wait=False)        # the stop lands after the job's last check
            return {"done": True}

    class StopsShort:
        name = "train"

        def run(self, ctx):
            s.cancel(wait=False)
            try:
                ctx.check()
            except JobCancelled:
                return {"stopped": "cancelled"}
            return {"stopped": "finished"}

    s.start(EndsThenStopped())
    assert s.wait(10)
    assert isinstance(events[-1], Finished) and events[-1].result == {"done": True}
    s.start(StopsShort())
    assert s.wait(10)
    assert isinstance(events[-1], Cancelled) and events[-1].result == {"stopped": "cancelled"}


# -- the engine as a library ---------------------------------------------------------------------------------------

def test_an_event_stream_made_before_start_sees_the_started_and_ends_with_the_job():
    async def main():
        s = Session()
        stream = s.events(until_end=True)       # registered when made: nothing after it is lost
        s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
        return [ev async for ev in stream], s

    seen, s = asyncio.run(main())
    assert isinstance(seen[0], Started) and isinstance(seen[-1], Finished)
    assert not s._queues        # the stream that ended is no longer fed


def test_a_callback_that_raises_breaks_neither_the_job_nor_the_other_subscribers(caplog):
    seen = []

    def buggy(ev):
        if isinstance(ev, (Started, LayerStats)):
            raise ValueError("my bug")

    s = Session(buggy)
    s.subscribe(seen.append)
    s.start(TrainJob(LONG.replace(epochs=1, n_rows=100)))
    assert s.wait(60)
    assert isinstance(seen[0], Started) and isinstance(seen[-1], Finished)
    assert seen[-1].result["stopped"] == "finished"
    assert "a Session callback raised on Started" in caplog.text


class Stubborn:
    """A job that does not check for a stop for a while (a user's job, a long step): longer than cancel's wait."""

    name = "stubborn"

    def __init__(self, seconds: float, log: list):
        self.seconds, self.log = seconds, log

    def run(self, ctx):
        self.log.append(("in", threading.get_ident()))
        time.sleep(self.seconds)
        self.log.append(("out", threading.get_ident()))
        ctx.check()
        return {}


def test_a_new_job_never_runs_beside_one_that_takes_long_to_stop():
    log: list = []
    s = Session()
    s.start(Stubborn(5.5, log))
    time.sleep(0.2)
    s.start(Stubborn(0.0, log))         # waits for the first to end, past cancel's 5 s, rather than overlap it
    assert s.wait(30)
    assert [k for k, _ in log] == ["in", "out", "in", "out"]
    s.close()
    assert not job_threads()


def test_close_stops_the_job_and_joins_its_thread():
    with Session() as s:
        s.start(TrainJob(LONG))
        time.sleep(0.3)
    assert not s.running and not job_threads()


@pytest.mark.parametrize("which", ["jacobian", "sweep_train"])
def test_a_jacobian_of_many_inputs_and_a_training_sweep_stop_within_half_a_second(which):
    from initlab.engine.jobs import JacobianJob
    from initlab.engine.sweep import SweepJob

    events = []
    s = Session(events.append)
    if which == "jacobian":
        job = JacobianJob(Config(depth=12, width=128, in_features=128, out_features=128, device="cpu"), inputs=256)
    else:
        job = SweepJob(LONG, {"depth": [2, 3]}, train=True)
    s.start(job)
    time.sleep(0.5)
    t0 = time.perf_counter()
    assert s.cancel(wait=True)
    assert time.perf_counter() - t0 < 0.5 and isinstance(events[-1], Cancelled)
    assert not job_threads()


def test_the_readmes_library_example_runs(capsys):
    import os
    import re

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## The engine from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)          # as printed: it runs its main() itself
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Started" and "Finished" in out and out[-2].startswith("{'epoch': 3, 'train_loss': ")
    assert out[-1].startswith("[") and len(eval(out[-1])) == 10       # the probe's a_std per layer
    deadline = time.monotonic() + 5         # the stream ends with Finished; the thread that sent it, just after
    while job_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not job_threads()


def test_a_callback_may_start_the_next_job_or_close_without_a_deadlock():
    log: list = []
    s = Session()
    chained = []

    def on_event(ev):
        if isinstance(ev, Finished) and not chained:        # the next job, from the job's own thread
            chained.append(s.start(Stubborn(0.0, log)))
        if isinstance(ev, LayerStats) and len(chained) == 1:    # mid-job: replaces it, never beside it
            chained.append(s.start(Stubborn(0.0, log)))

    s.subscribe(on_event)
    s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
    deadline = time.monotonic() + 30
    while len(log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.wait(30) and chained == [True] and [k for k, _ in log] == ["in", "out"]
    closer = Session()
    closer.subscribe(lambda ev: isinstance(ev, Started) and closer.close())     # asks its own job to stop
    closer.start(TrainJob(LONG))
    assert closer.wait(30)
    assert isinstance(closer.last_event, Cancelled)


def test_a_callback_may_start_two_jobs_or_start_one_and_close_from_one_end_event():
    # each waited for ever: the second call joined the job the first had queued, which waited for this thread
    log: list = []
    s = Session()
    names: list = []
    s.subscribe(lambda ev: names.append((type(ev).__name__, ev.job)))
    replaced: list = []
    s.subscribe(lambda ev: isinstance(ev, Started) and replaced.append(ev.replaced))

    def on_end(ev):
        if isinstance(ev, Finished) and ev.job == "probe":
            s.start(Stubborn(0.0, log))
            s.start(TrainJob(Config(depth=2, width=4, epochs=1, data="poly", device="cpu")))

    s.subscribe(on_end)
    s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
    deadline = time.monotonic() + 30
    while not (names and names[-1][0] in ("Finished", "Cancelled", "Failed") and names[-1][1] == "train") \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.wait(30)
    # the stubborn job queued first is replaced by the training before it checks: it ends cancelled, in turn
    ends = [n for n in names if n[0] in ("Started", "Finished", "Cancelled", "Failed")]
    assert ends == [("Started", "probe"), ("Finished", "probe"), ("Started", "stubborn"), ("Cancelled", "stubborn"),
                    ("Started", "train"), ("Finished", "train")], ends
    assert [k for k, _ in log] == ["in", "out"] and replaced == [False, False, True]
    s.close()

    async def closing():
        c = Session()
        stream = c.events()

        def on_probe_end(ev):
            if isinstance(ev, Finished) and ev.job == "probe":
                c.start(TrainJob(LONG))
                c.close()           # the training it queued starts, sees the stop, ends; then the stream ends

        c.subscribe(on_probe_end)
        c.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
        seen = [type(ev).__name__ async for ev in stream]
        return c, seen

    c, seen = asyncio.run(asyncio.wait_for(closing(), 60))
    assert c.wait(30) and seen[-2:] == ["Started", "Cancelled"] and not job_threads()
    # cancel() and wait() from such a callback ask and return: joining the job queued behind its thread waited
    w = Session()
    answers: list = []

    def start_then_cancel(ev):
        if isinstance(ev, Finished) and ev.job == "probe":
            w.start(TrainJob(LONG))
            t0 = time.perf_counter()
            answers.append((w.cancel(), w.wait(), time.perf_counter() - t0))

    w.subscribe(start_then_cancel)
    w.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
    deadline = time.monotonic() + 30     # wait() joins the thread of its call: the queued job's comes after it
    while not (w.wait(1) and answers and isinstance(w.last_event, Cancelled)) and time.monotonic() < deadline:
        pass
    assert isinstance(w.last_event, Cancelled) and not w.running
    assert answers[0][:2] == (False, False) and answers[0][2] < 1.0


def test_a_dropped_or_closed_stream_is_no_longer_fed():
    import gc

    async def main():
        s = Session()
        s.events()                      # made and dropped
        gc.collect()
        kept = s.events()
        kept.close()
        s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
        s.wait(30)
        return s

    assert asyncio.run(main())._queues == []
    with pytest.raises(RuntimeError, match="Session.events\\(\\) is called in a coroutine"):
        Session().events()


def test_typed_settings_for_library_users():
    import numpy as np

    from initlab.engine.spec import SpecError
    from initlab.engine.sweep import checked_vary, point_configs

    for kw, words in [({"depth": "5"}, "depth: '5' is not allowed; an integer in [1, 10000], as a Python int"),
                      ({"bias": "false"}, "bias: 'false' is not allowed"),       # read as true, a net with bias
                      ({"width": 2.5}, "width: 2.5 is not allowed"),
                      ({"depth": np.int64(3)}, "as a Python int (given int64")]:
        with pytest.raises(SpecError) as e:
            Config(**kw)                # as it is made, before any job runs it
        assert str(e.value).startswith(words) or words in str(e.value)
    base = Config(width=4, in_features=4, out_features=4, device="cpu")
    assert [c.depth for _, c in point_configs(base, {"depth": np.arange(2, 4)})] == [2, 3]    # numpy's, as Python's
    assert [c.depth for _, c in point_configs(base, {"depth": ["2", "3"]})] == [2, 3]         # text, as typed
    with pytest.raises(SpecError, match="dpth: .* is not allowed; a known setting"):
        point_configs(base, {"dpth": [2, 3]})
    with pytest.raises(SpecError, match="sigma_w: 1.5 is not allowed; a list of values"):
        checked_vary({"sigma_w": 1.5})


def test_a_job_that_refuses_its_settings_before_it_starts_still_fails_with_an_event():
    events = []
    s = Session(events.append)
    s.start(TrainJob(Config(batch=0, data="poly", device="cpu")))      # its step count divides by the batch
    assert s.wait(30)
    assert [type(e) for e in events] == [Started, Failed]
    assert events[-1].message.startswith("batch: 0 is not allowed")


def test_closing_a_stream_or_the_session_wakes_the_tasks_waiting_on_it():
    async def main():
        s = Session()
        mine, shared = s.events(), s.events()
        got: dict[str, list] = {}

        async def drain(name, stream):
            got[name] = [type(ev) async for ev in stream]

        tasks = [asyncio.create_task(drain("mine", mine)), asyncio.create_task(drain("a", shared)),
                 asyncio.create_task(drain("b", shared))]        # two tasks on one stream: both end with it
        await asyncio.sleep(0.05)
        mine.close()
        await asyncio.wait_for(tasks[0], 5)
        s.start(ProbeJob(Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")))
        await asyncio.to_thread(s.wait, 30)
        await asyncio.to_thread(s.close)
        await asyncio.wait_for(asyncio.gather(*tasks[1:]), 5)
        return got

    got = asyncio.run(main())
    assert got["mine"] == []
    both = got["a"] + got["b"]      # a stream hands each event out once, to one of its tasks
    assert Started in both and Finished in both


def test_a_stop_during_the_evaluation_or_the_end_state_cancels_and_keeps_the_steps():
    from initlab.engine.session import JobCancelled
    from initlab.engine.train import Trainer

    cfg = LONG.replace(epochs=2, n_rows=100)
    # in the first epoch's evaluation; in the end state, once the last epoch's evaluation is done
    for stop_at, epochs_kept in ((7, 0), (14, 2)):
        tr = None

        def check():
            if tr is not None and tr.step >= stop_at and len(tr.epochs.values()) >= epochs_kept:
                raise JobCancelled()

        tr = Trainer(cfg, check=check)
        r = tr.run()
        assert r["stopped"] == "cancelled" and r["steps_done"] == stop_at
        assert len(r["epochs"]) == epochs_kept and len(r["steps"]) >= 1
        assert tr.model.training        # the evaluation's switch to eval mode is undone


def test_a_jacobian_is_cancelled_while_its_net_is_built():
    from initlab.engine.jacobian import jacobian_spectrum
    from initlab.engine.session import JobCancelled

    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        jacobian_spectrum(Config(depth=6, width=8, in_features=8, out_features=8, init="orthogonal",
                                 device="cpu"), check=check)


def test_an_until_end_stream_stops_at_the_first_end_though_a_next_job_queued_more():
    async def main():
        s = Session()
        stream = s.events(until_end=True)
        for depth in (2, 3):        # the second job's events queue behind the first's Finished
            s.start(ProbeJob(Config(depth=depth, width=4, in_features=4, out_features=4, device="cpu")))
            await asyncio.to_thread(s.wait, 30)
        return [ev async for ev in stream]

    seen = asyncio.run(main())
    assert isinstance(seen[-1], Finished) and sum(isinstance(e, Started) for e in seen) == 1


def test_warnings_are_typed_apart_and_are_log_lines_still():
    from initlab.engine.events import WarningLine

    events = []
    s = Session(events.append)
    s.start(ProbeJob(Config(depth=3, width=4, in_features=4, out_features=4, init="zeros", device="cpu")))
    assert s.wait(30)
    warned = [e for e in events if isinstance(e, WarningLine)]
    assert warned and all(isinstance(e, LogLine) and e.level == "warning" for e in warned)
    assert not [e for e in events if isinstance(e, LogLine) and e.level == "warning" and not isinstance(e, WarningLine)]


def test_a_job_whose_config_cannot_be_read_fails_with_an_event():
    class Unreadable:
        name = "unreadable"

        @property
        def config(self):
            raise ValueError("boom")

        def run(self, ctx):
            return {}

    events = []
    s = Session(events.append)
    s.start(Unreadable())
    assert s.wait(30)
    assert [type(e) for e in events] == [Started, Failed] and events[-1].message == "ValueError: boom"


def test_a_probe_is_cancelled_in_its_backward_and_its_reduction_too():
    """Past its forward, a probe checks for a stop as each layer's gradient arrives and between its reduction's
    groups: a deep net's backward and statistics stop part-way, not only between the passes."""
    from initlab.engine.probe import run_probe
    from initlab.engine.session import JobCancelled

    depth = 6
    cfg = Config(depth=depth, width=8, in_features=8, out_features=8, device="cpu")
    where = []
    run_probe(cfg, check=lambda: where.append(torch.is_grad_enabled()))
    seen = len(where)
    # the build's checks, one a forward tap, one a gradient, the passes' own, and the reduction's groups
    assert seen >= 3 * depth + 3
    for n in (2 * depth + 3, seen - 1):         # a stop within the backward's layers, and within the reduction
        calls, check = stop_at(n)
        with pytest.raises(JobCancelled):
            run_probe(cfg, check=check)
        assert len(calls) == n


def test_a_probe_of_your_own_model_is_cancelled_between_its_modules(tmp_path):
    from initlab.engine.anyprobe import run_user_probe
    from initlab.engine.jobs import UserProbeJob
    from initlab.engine.session import JobCancelled
    from initlab.engine.usermodel import make_spec

    path = tmp_path / "deep_initlab.py"
    path.write_text("import torch\nfrom torch import nn\n\ndef make():\n"
                    "    layers = [m for _ in range(40) for m in (nn.Linear(16, 16), nn.Tanh())]\n"
                    "    return nn.Sequential(*layers), torch.randn(8, 16)\n")
    spec = make_spec(f"{path}:make", device="cpu")
    calls, check = stop_at(100)         # past the forward's 81 module calls: within the backward
    with pytest.raises(JobCancelled):
        run_user_probe(spec, check)
    assert len(calls) == 100
    events = []
    s = Session(events.append)
    path.write_text(path.read_text().replace("range(40)", "range(3000)").replace("16", "256"))
    s.start(UserProbeJob(f"{path}:make", device="cpu"))
    time.sleep(1.0)
    assert s.cancel(wait=True)
    assert isinstance(events[-1], Cancelled) and not any(isinstance(e, Finished) for e in events)
    assert not job_threads()


def test_a_job_started_from_the_last_ones_end_replaced_nothing():
    small = Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")
    events = []
    s = Session(events.append)
    s.subscribe(lambda e: s.start(TrainJob(small.replace(epochs=1, n_rows=40)))
                if isinstance(e, Finished) and e.job == "probe" else None)
    s.start(ProbeJob(small))
    deadline = time.monotonic() + 30
    while not (isinstance(s.last_event, Finished) and s.last_event.job == "train") and time.monotonic() < deadline:
        time.sleep(0.02)
    s.close()
    started = [e for e in events if isinstance(e, Started)]
    assert [(e.job, e.replaced) for e in started] == [("probe", False), ("train", False)]


def test_a_session_closed_from_a_callback_ends_its_streams():
    async def main():
        s = Session()
        s.subscribe(lambda ev: s.close() if isinstance(ev, Progress) else None)
        stream = s.events()
        s.start(TrainJob(Config(depth=3, width=8, epochs=50, n_rows=200, device="cpu")))
        seen = [ev async for ev in stream]          # ends: it had waited for ever
        s._callbacks.clear()
        stream = s.events()
        small = Config(depth=2, width=4, in_features=4, out_features=4, device="cpu")
        for seed in (0, 1):
            s.start(ProbeJob(small.replace(seed=seed)))
            while s.running:
                await asyncio.sleep(0.01)
        s.close()
        again = [ev async for ev in stream]
        return seen, again

    seen, again = asyncio.run(asyncio.wait_for(main(), 30))
    assert isinstance(seen[-1], (Cancelled, Finished))
    assert [type(e).__name__ for e in again].count("Finished") == 2      # used again: its streams carry every job
    deadline = time.monotonic() + 5         # the streams end as the job's thread ends: it is gone just after
    while job_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not job_threads()


def test_a_probes_net_is_freed_once_its_job_ends():
    # a backward hook reaching the Capture (which holds the layers' tensors) made a cycle through autograd that the
    # collector cannot see: every probe's net stayed in memory, some 0.6 GB a probe of 10,000 layers in the app
    import gc

    from initlab.engine.models import Block

    def blocks() -> int:
        gc.collect()
        return sum(type(o) is Block for o in gc.get_objects())

    before = blocks()
    s = Session()
    for _ in range(3):
        s.start(ProbeJob(Config(depth=20, width=8, in_features=8, out_features=8, device="cpu")))
        assert s.wait(60) and isinstance(s.last_event, Finished)
    assert blocks() == before
