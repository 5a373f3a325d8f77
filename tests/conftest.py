"""Fixtures shared by the test files."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

SYNCS = ("tolist", "item", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


@pytest.fixture
def sync_counter(monkeypatch):
    """Counts, while a test runs, every call that brings a tensor's values to the host; each calls through."""
    counts: Counter = Counter()
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts
