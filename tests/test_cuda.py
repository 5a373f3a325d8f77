"""The CUDA path: device selection, figures on the GPU, no synchronisation between sampled steps, one per sample.

Skipped, with the reason, on machines without CUDA."""
from __future__ import annotations

import warnings

import pytest
import torch

from initlab.engine import device as devices
from initlab.engine.presets import PRESETS
from initlab.engine.probe import run_probe
from initlab.engine.spec import Config
from initlab.engine.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_auto_takes_cuda_and_every_gpu_is_offered():
    assert devices.resolve("auto") == torch.device("cuda:0")
    offered = [d for d, _ in devices.available_devices()]
    assert offered[:1] == ["cpu"] and [f"cuda:{i}" for i in range(torch.cuda.device_count())] == offered[1:1 + torch.cuda.device_count()]
    with pytest.raises(Exception) as e:
        devices.resolve(f"cuda:{torch.cuda.device_count()}")
    assert "device" in str(e.value)


def test_reference_figure_on_the_gpu():
    res = run_probe(PRESETS["sigmoid-vanishing"].config.replace(device="cuda"))
    assert res.device.startswith("cuda")
    assert res.layers[0]["grad_w_absmean"] == pytest.approx(1.4004e-12, rel=1e-3)
    assert res.layers[-1]["grad_w_absmean"] == pytest.approx(0.012726, rel=1e-3)


def test_probe_on_gpu_matches_cpu():
    cfg = PRESETS["tanh-xavier"].config.replace(depth=20)
    cpu = run_probe(cfg.replace(device="cpu", init="default"), distributions=False)
    gpu = run_probe(cfg.replace(device="cuda", init="default"), distributions=False)
    for a, b in zip(cpu.layers, gpu.layers):
        assert b["a_std"] == pytest.approx(a["a_std"], rel=1e-3)


def test_no_sync_between_samples_and_one_per_sample():
    tr = Trainer(Config(depth=6, width=64, data="poly", batch=32, epochs=1, stats_every=1000, device="cuda"))
    x, y = tr.data.x_train[:32], tr.data.y_train[:32]
    tr._sampled_step(x, y, 1)                    # warm-up: caches and allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            tr._plain_step(x, y)                 # raises on any synchronising call
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr._sampled_step(x, y, 1)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]


def test_training_on_the_gpu_is_reproducible():
    cfg = Config(depth=4, width=32, data="poly", batch=10, epochs=2, device="cuda")
    a, b = Trainer(cfg).run(), Trainer(cfg).run()
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_second_gpu_is_used_when_asked():
    res = run_probe(Config(depth=4, width=32, in_features=32, out_features=32, device="cuda:1"))
    assert res.device == "cuda:1"
