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
        state = (self.state, "bold reverse" if bad else "bold")
        # where the line does not fit (a narrow terminal, a training's long state), the app's name goes first, then
        # the word "device": the state, which changes, is what the line is for
        width = self.size.width or 10_000
        for lead in ([(" initlab ", "bold"), ("│ ", "dim"), f"device {self.device} "], [f" device {self.device} "],
                     [f" {self.device} "]):
            line = Text.assemble(*lead, ("│ ", "dim"), state, no_wrap=True, overflow="ellipsis")
            if line.cell_len <= width:
                break
        return line
