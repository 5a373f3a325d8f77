"""The top line: the app's name, the device, and the run state (idle, probing, training epoch e/E step s, ...)."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusBar(Widget):
    """One line that repaints in place: a change of state never reflows the screen (Textual's Header does, and
    at four updates a second that alone costs a training run a good share of its steps)."""

    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
    }
    """

    device: reactive[str] = reactive("auto")
    """The device a run is on (or the configured one before the first run)."""
    state: reactive[str] = reactive("idle")
    """idle, probing, training epoch e/E step s/S, stopped, failed."""

    def render(self) -> Text:
        bad = self.state.startswith(("failed", "stopped: non-finite"))
        return Text.assemble((" initlab ", "bold"), ("│ ", "dim"), f"device {self.device} ", ("│ ", "dim"),
                             (self.state, "bold reverse" if bad else "bold"), no_wrap=True, overflow="ellipsis")
