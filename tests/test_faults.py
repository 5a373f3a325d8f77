"""Injected faults: each ends in one clear event (or an intact file), and the next run works.

A job or a model that raises, memory refused or exhausted, non-finite values at any step, an export killed
mid-write; the next run is in the same session.
"""
from __future__ import annotations

import glob
import json
import math
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initlab.engine import device as devices
from initlab.engine.events import Cancelled, Event, Failed, Finished, LayerStats, NonFinite, Progress, Started
from initlab.engine.jobs import ProbeJob, TrainJob
from initlab.engine.session import Context, Session
from initlab.engine.spec import Config
from initlab.engine.train import Trainer

FAULTS: Counter = Counter()        # faults injected and survived (the next run finished), by kind

TINY_PROBE = Config(depth=3, width=8, in_features=6, out_features=2, batch=16, device="cpu")
TINY_TRAIN = Config(depth=3, width=8, data="poly", n_rows=100, batch=10, epochs=2, stats_every=5, device="cpu",
                    lr=0.01)


class Recorder:
    """A Session with every event it emits, and the events of the latest job alone."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.session = Session(self.events.append)

    def run(self, job, timeout: float = 60) -> list[Event]:
        start = len(self.events)
        self.session.start(job)
        assert self.session.wait(timeout), f"{job.name} did not end within {timeout} s"
        evs = self.events[start:]
        assert isinstance(evs[0], Started)
        assert isinstance(evs[-1], (Finished, Failed, Cancelled))
        assert sum(isinstance(e, (Finished, Failed, Cancelled)) for e in evs) == 1, "one ending per job"
        return evs

    def next_run_works(self, kind: str) -> None:
        """After a fault: a probe and a training in the same session both finish with real numbers."""
        probe = self.run(ProbeJob(TINY_PROBE))[-1]
        assert isinstance(probe, Finished), probe
        assert len(probe.result["layers"]) == 3 and all(math.isfinite(d["a_std"]) for d in probe.result["layers"])
        train = self.run(TrainJob(TINY_TRAIN))[-1]
        assert isinstance(train, Finished), train
        assert train.result["stopped"] == "finished" and train.result["steps_done"] == 14
        FAULTS[kind] += 1


@pytest.fixture
def rec():
    r = Recorder()
    yield r
    r.session.cancel(wait=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


# -- a job that raises ---------------------------------------------------------------------------------------------

class RaisingJob:
    """A job that reports a few steps, then fails the way a bug in a job would."""

    name = "raising"

    def __init__(self, after: int, exc: BaseException):
        self.after, self.exc = after, exc

    def run(self, ctx: Context) -> dict:
        for step in range(self.after):
            ctx.check()
            ctx.partial["steps"] = step + 1
            ctx.emit(Progress(self.name, step=step + 1, total_steps=10))
        raise self.exc


@pytest.mark.parametrize("exc, message", [
    (RuntimeError("boom at step 3"), "RuntimeError: boom at step 3"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    (KeyError("layer"), "KeyError: 'layer'"),
    (RuntimeError("line one\nline two"), "RuntimeError: line one"),
    (RuntimeError(""), "RuntimeError: RuntimeError"),
])
def test_a_job_that_raises_is_one_failed_event(rec, exc, message):
    evs = rec.run(RaisingJob(3, exc))
    assert [e.step for e in evs if isinstance(e, Progress)] == [1, 2, 3]
    assert isinstance(evs[-1], Failed) and evs[-1].message == message and evs[-1].job == "raising"
    assert "\n" not in evs[-1].message
    rec.next_run_works("job raises")


class FaultyModelJob:
    """Real training whose model raises in its forward pass at one training step (a user's layer that breaks
    mid-training): a forward hook on one block stands in for the user's code."""

    name = "train"

    def __init__(self, cfg: Config, at_step: int, exc: BaseException, block: int = 1):
        self.config, self.at_step, self.exc, self.block = cfg, at_step, exc, block
        self.calls = 0

    def run(self, ctx: Context) -> dict:
        trainer = Trainer(self.config, ctx.emit, ctx.check)

        def hook(mod, inp, out):
            if mod.training:
                self.calls += 1
                if self.calls == self.at_step + 1:
                    raise self.exc
            return out

        trainer.model.blocks[self.block].register_forward_hook(hook)
        return trainer.run()


@pytest.mark.parametrize("at_step", [0, 5, 11])
def test_a_model_that_raises_mid_training(rec, at_step):
    cfg = TINY_TRAIN.replace(stats_every=5)
    evs = rec.run(FaultyModelJob(cfg, at_step, ValueError("shapes (10, 8) and (7, 8) do not match")))
    assert isinstance(evs[-1], Failed)
    assert evs[-1].message == "ValueError: shapes (10, 8) and (7, 8) do not match"
    # the steps before the fault ran and reported: sampled steps 0, 5, 10 below at_step
    assert [e.step for e in evs if isinstance(e, LayerStats)] == [s for s in (0, 5, 10) if s < at_step]
    rec.next_run_works("model raises")


# -- training data that cannot be read -----------------------------------------------------------------------------

def test_a_corrupt_data_file_fails_in_one_line(rec, tmp_path):
    good = tmp_path / "good.npz"
    g = np.random.default_rng(0)
    np.savez(good, X=g.normal(size=(40, 3)), y=g.normal(size=40))
    cases = []
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])        # a copy cut off half-way
    cases.append((corrupt, "a readable .npz or .pt file (BadZipFile)"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(g.integers(0, 256, size=300, dtype=np.uint8)))
    cases.append((garbage, "a readable .npz or .pt file"))
    nan = tmp_path / "nan.npz"
    x = g.normal(size=(40, 3))
    x[7, 2] = np.inf
    np.savez(nan, X=x, y=g.normal(size=40))
    cases.append((nan, "finite values in X"))
    # common ways to save data that a safe load refuses, each said as what to do
    arrays = tmp_path / "arrays.pt"
    torch.save({"X": g.normal(size=(40, 3)), "y": g.normal(size=40)}, arrays)
    cases.append((arrays, "holds numpy arrays, which a safe load refuses: save torch.from_numpy(X)"))
    objects = tmp_path / "objects.npz"
    np.savez(objects, X=np.array([[1], [2]], dtype=object), y=g.normal(size=2))
    cases.append((objects, "X of a numeric dtype, not object"))
    labels = tmp_path / "labels.npz"
    np.savez(labels, X=g.normal(size=(4, 2)), y=np.array(["a", 1, None, 2.0], dtype=object))
    cases.append((labels, "y of a numeric dtype, not object"))
    lone = tmp_path / "lone.npz"
    with open(lone, "wb") as fh:
        np.save(fh, x)
    cases.append((lone, "this is a single array: save it with np.savez(path, X=X, y=y)"))
    gone = tmp_path / "gone.npz"
    np.savez(gone, X=x, y=g.normal(size=40))
    cases.append((gone, "no such file"))
    for path, why in cases:
        cfg = TINY_TRAIN.replace(data=str(path))     # validated while the file is there
        if path == gone:
            path.unlink()                            # then it goes before the run reads it
        evs = rec.run(TrainJob(cfg))
        assert isinstance(evs[-1], Failed), evs[-1]
        msg = evs[-1].message
        assert msg.startswith(f"data: {str(path)!r} is not allowed; ") and why in msg and "\n" not in msg
        rec.next_run_works("corrupt data file")
    evs = rec.run(TrainJob(TINY_TRAIN.replace(data=str(good))))
    assert isinstance(evs[-1], Finished) and evs[-1].result["config"]["in_features"] == 3


# -- memory ----------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read resident memory")
@pytest.mark.parametrize("job", ["probe", "train"])
def test_a_width_too_large_is_refused_before_allocating(rec, job):
    cfg = Config(depth=3, width=300_000, in_features=4, out_features=2, data="poly", batch=8, device="cpu")
    need = devices.estimate_bytes(cfg, training=job == "train")
    assert need > devices.free_bytes(torch.device("cpu")), "this machine could hold the net: the test needs a bigger one"
    before = rss_mb()
    evs = rec.run(ProbeJob(cfg) if job == "probe" else TrainJob(cfg))
    assert rss_mb() - before < 50, "memory was allocated before the refusal"
    assert isinstance(evs[-1], Failed)
    assert evs[-1].message.startswith(
        "width: 300000 is not allowed; a network that fits in memory (depth 3 x width 300000")
    assert "lower width (or depth, batch" in evs[-1].message
    rec.next_run_works("width refused")


@pytest.fixture
def address_space_ceiling():
    """An address-space limit a few GiB above what the process maps now, so that an allocation past the memory
    estimate fails at once on any machine, whatever its overcommit policy, instead of exhausting it."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc to read the mapped size")
    if torch.cuda.is_available():
        pytest.skip("CUDA maps huge address ranges; the limit would break it")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    ceiling = mapped + 4 * 2 ** 30
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("job", ["probe", "train"])
def test_an_allocation_that_fails_at_run_time_is_a_failed_event(rec, job, monkeypatch, address_space_ceiling):
    # the free-memory figure lies (as it may on a shared machine), so the estimate lets a 4 TiB net through
    monkeypatch.setattr(devices, "free_bytes", lambda device: 1 << 62)
    cfg = Config(depth=3, width=1 << 20, in_features=4, out_features=2, data="poly", batch=8, device="cpu")
    evs = rec.run(ProbeJob(cfg) if job == "probe" else TrainJob(cfg))
    assert isinstance(evs[-1], Failed)
    assert evs[-1].message == "out of memory: tried to allocate 4.00 TiB; try a smaller batch or width"
    monkeypatch.undo()
    rec.next_run_works("allocation failed")


def test_out_of_memory_mid_training_names_the_request(rec):
    # what CUDA raises when a step's allocation fails, raised from inside the model at step 7
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total "
                                 "capacity; 77.02 GiB already allocated)")
    evs = rec.run(FaultyModelJob(TINY_TRAIN, 7, oom))
    assert isinstance(evs[-1], Failed)
    assert evs[-1].message == "out of memory: tried to allocate 2.00 GiB; try a smaller batch or width"
    rec.next_run_works("out of memory")


# -- non-finite values -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lr", [3.0, 30.0, 1e3, 1e6, 1e9])
def test_a_diverging_learning_rate_ends_in_a_nonfinite_event(rec, lr):
    # every step sampled, so the history holds every step and the reported one can be checked against it
    cfg = TINY_TRAIN.replace(lr=lr, epochs=40, stats_every=1, depth=4, width=16)
    evs = rec.run(TrainJob(cfg))
    nf = [e for e in evs if isinstance(e, NonFinite)]
    res = evs[-1].result
    assert isinstance(evs[-1], Finished) and res["stopped"] == "nonfinite" and len(nf) == 1
    step = nf[0].step
    assert res["nonfinite"] == {"step": step, "layer": nf[0].layer, "tensor": nf[0].tensor}
    by_step = {s["step"]: s for s in res["steps"]}

    def finite(s) -> bool:
        vals = [s["loss"]] + [d[k] for d in s["layers"] for k in ("a_std", "grad_z_std", "grad_w_norm")]
        return all(v is not None and math.isfinite(v) for v in vals)

    # the first step with a non-finite value is the one reported; every step before it is finite throughout
    assert not finite(by_step[step])
    assert all(finite(by_step[s]) for s in by_step if s < step)
    assert res["steps_done"] == step + 1
    rec.next_run_works("diverging lr")


class NaNAtStep:
    """Real training with a NaN put into one block's output at one training step."""

    name = "train"

    def __init__(self, cfg: Config, at_step: int, block: int):
        self.config, self.at_step, self.block = cfg, at_step, block
        self.calls = 0

    def run(self, ctx: Context) -> dict:
        trainer = Trainer(self.config, ctx.emit, ctx.check)

        def hook(mod, inp, out):
            if not mod.training:
                return out
            self.calls += 1
            return out * float("nan") if self.calls == self.at_step + 1 else out

        trainer.model.blocks[self.block].linear.register_forward_hook(hook)
        return trainer.run()


def test_a_nonfinite_value_at_any_step_is_reported_at_that_step(rec):
    cfg = TINY_TRAIN.replace(epochs=6, depth=4)     # 7 steps an epoch, 42 in all

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.integers(0, 41), st.integers(0, 3), st.sampled_from([1, 3, 50]))
    def case(at_step, block, every):
        evs = rec.run(NaNAtStep(cfg.replace(stats_every=every), at_step, block))
        nf = [e for e in evs if isinstance(e, NonFinite)]
        assert len(nf) == 1 and nf[0].step == at_step, (at_step, every, nf)
        assert isinstance(evs[-1], Finished) and evs[-1].result["stopped"] == "nonfinite"
        if at_step % every == 0:
            # a sampled step sees the NaN where it was put: the activation of that block
            assert (nf[0].layer, nf[0].tensor) == (block, "activation")
        FAULTS["NaN injected"] += 1
        # the next run in the same session trains to the end
        after = rec.run(TrainJob(TINY_TRAIN))[-1]
        assert isinstance(after, Finished) and after.result["stopped"] == "finished"

    case()


# -- an export killed while writing ------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from initlab.engine.export import write_json
    payload = {"run": "new", "blob": "0123456789" * int(sys.argv[2])}
    print("ready", flush=True)
    write_json(sys.argv[1], payload)
""")


def temp_files(path: str) -> list[str]:
    folder, name = os.path.split(path)
    return glob.glob(os.path.join(folder, f".{name}.*.tmp"))


def test_an_export_killed_mid_write_leaves_the_previous_file_whole(tmp_path):
    from initlab.engine.export import write_json

    target = str(tmp_path / "result.json")
    previous = {"run": "previous", "rows": [[i, i * 0.25] for i in range(1000)]}
    write_json(target, previous)
    before = open(target, "rb").read()
    tens = 3_000_000           # 30 MB of JSON: tens of milliseconds to write and sync
    caught, partial, attempts = 0, 0, 0
    while caught < 3 and attempts < 20:
        attempts += 1
        proc = subprocess.Popen([sys.executable, "-c", WRITER, target, str(tens)], stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline() == b"ready\n"
            tmp = None
            deadline = time.monotonic() + 60
            # wait until the temporary file holds some of the text, then kill at once
            while proc.poll() is None and time.monotonic() < deadline:
                found = temp_files(target)
                if found and os.path.getsize(found[0]) > 0:
                    tmp = found[0]
                    break
                time.sleep(0.0005)
            if tmp is not None:
                os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None and tmp is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        killed_mid_write = proc.returncode == -signal.SIGKILL and tmp is not None and os.path.exists(tmp)
        after = open(target, "rb").read()
        if killed_mid_write:
            assert after == before, "the final name changed though the writer died before its rename"
            assert json.loads(after) == previous
            partial += os.path.getsize(tmp) < 10 * tens     # killed in the write itself, not in the sync after it
            caught += 1
            FAULTS["export killed"] += 1
        else:
            # the writer finished before the kill: the final name holds the whole new file, never a part
            doc = json.loads(after)
            assert doc["run"] == "new" and len(doc["blob"]) == 10 * tens
            write_json(target, previous)
            before = open(target, "rb").read()
        assert os.path.basename(target) in os.listdir(tmp_path)
        for t in temp_files(target):
            os.unlink(t)
        tens = tens if killed_mid_write else tens * 2
    assert caught >= 3, f"caught the writer mid-write {caught} times in {attempts} attempts"
    print(f"\nexport killed before its rename {caught} times in {attempts} attempts, {partial} of them inside the write")
    # and the next export writes a whole file
    write_json(target, {"run": "next"})
    assert json.loads(open(target).read()) == {"run": "next"} and not temp_files(target)


# -- the count ---------------------------------------------------------------------------------------------------

def test_zz_faults_were_survived():
    """Runs last in this file: how many faults were injected and survived."""
    total = sum(FAULTS.values())
    print(f"\nfaults injected and survived: {total} ({', '.join(f'{k} {v}' for k, v in sorted(FAULTS.items()))})")
    if len(FAULTS) < 5:
        pytest.skip("run with the rest of this file to count the faults")
    assert total >= 40, FAULTS
