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


@pytest.fixture(autouse=True)
def terminal(monkeypatch):
    """In-process commands write as to a terminal (tables, a progress bar) unless a test asks for `piped`; run as a
    subprocess, a command sees its real stdout."""
    from initlab.tui.commands import common

    monkeypatch.setattr(common, "stdout_is_terminal", lambda: True)


@pytest.fixture
def piped(monkeypatch):
    """stdout is not a terminal: every command writes one JSON object."""
    from initlab.tui.commands import common

    monkeypatch.setattr(common, "stdout_is_terminal", lambda: False)
