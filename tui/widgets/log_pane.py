"""The log pane: time, level, message; warnings and errors stand out; bounded length."""
from __future__ import annotations

import time
from collections import deque
from typing import Callable

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from .plot import theme_rgb

MAX_LINES = 500
LEVEL_WORD = {"info": "info ", "warning": "WARN ", "error": "ERROR"}


def wall_clock() -> str:
    return time.strftime("%H:%M:%S")


class LogPane(RichLog):
    """A RichLog that keeps its last MAX_LINES entries as (time, level, message), to wrap them again when the pane
    is resized (and for tests to read)."""

    DEFAULT_CSS = """
    LogPane { height: 8; }
    """

    def __init__(self, clock: Callable[[], str] = wall_clock, **kwargs):
        # min_width: RichLog renders a line at least this wide (78 by default), which cut lines off in a pane
        # narrower than that instead of wrapping them
        super().__init__(max_lines=MAX_LINES, wrap=True, markup=False, highlight=False, min_width=20, **kwargs)
        self.clock = clock
        self.entries: deque[tuple[str, str, str]] = deque(maxlen=MAX_LINES)
        self._wrapped_at = 0        # the width the lines were last wrapped at
        self._height = 0            # the pane's height before the latest resize

    def _line(self, stamp: str, level: str, message: str) -> Text:
        c = theme_rgb(self)
        colour = {"warning": c["warning"], "error": c["error"]}.get(level)
        style = f"bold rgb({colour[0]},{colour[1]},{colour[2]})" if colour else "dim"
        return Text.assemble((stamp + " ", "dim"), (LEVEL_WORD.get(level, level[:5].ljust(5)), style), " ",
                             (message, "bold" if colour else ""))

    def add(self, level: str, message: str) -> None:
        stamp = self.clock()
        self.entries.append((stamp, level, message))
        self._wrapped_at = self.scrollable_content_region.width
        self.write(self._line(stamp, level, message), expand=True)     # wrap at the pane's width, not the console's

    def on_resize(self, event: Resize) -> None:
        # RichLog wraps a line once, when written: after the terminal is resized, wrap them all again at the new width
        # (before the first size is known, RichLog itself holds the lines back and writes them at that size)
        width, height = self.scrollable_content_region.width, self.scrollable_content_region.height
        # whether the log was at its end before the pane changed: its lines are still as they were, so the end it
        # scrolled to was max_scroll_y at the old height (a shorter pane has a later end, and the newest lines
        # would fall below it); within a row: the old lines, wider than the new pane, can lend it a scrollbar row
        before = self.max_scroll_y + height - self._height if self._height else 0
        at_end = self.scroll_y >= before - 1
        self._height = height
        if self._size_known and self.entries and width and width != self._wrapped_at:
            self._wrapped_at = width
            # a log scrolled back stays where it was read (as a share of its length), not at its end
            share = self.scroll_y / self.max_scroll_y if self.max_scroll_y else 1.0
            follow, self.auto_scroll = self.auto_scroll, at_end
            self.clear()
            for entry in self.entries:
                self.write(self._line(*entry), expand=True)
            self.auto_scroll = follow
            if at_end:
                self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
            else:
                self.scroll_to(y=round(share * self.max_scroll_y), animate=False)
        elif at_end and self.entries:       # the height alone changed: the newest line stays in sight
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)

    def messages(self) -> list[str]:
        return [m for _t, _l, m in self.entries]
