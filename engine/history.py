"""Bounded history: a series that halves its resolution when full, always keeping the first and latest entries."""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class Bounded(Generic[T]):
    """Keeps at most `capacity` items of an unbounded stream. When full, every other kept item is dropped (the
    first stays) and from then on only every stride-th new item is kept; the latest item is always kept too."""

    def __init__(self, capacity: int = 512):
        if capacity < 4:
            raise ValueError("capacity must be at least 4")
        self.capacity = capacity
        self.stride = 1
        self.items: list[T] = []
        self.latest: T | None = None
        self.seen = 0

    def append(self, item: T) -> None:
        index = self.seen
        self.seen += 1
        self.latest = item
        if index % self.stride:
            return
        self.items.append(item)
        if len(self.items) >= self.capacity:
            self.items = self.items[::2]
            self.stride *= 2

    def values(self) -> list[T]:
        """The kept items, plus the latest one when thinning dropped it."""
        out = list(self.items)
        if self.latest is not None and (not out or out[-1] is not self.latest):
            out.append(self.latest)
        return out

    def __len__(self) -> int:
        return len(self.values())

    def __iter__(self) -> Iterator[T]:
        return iter(self.values())
