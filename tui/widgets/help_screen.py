"""The help screen: every key and what each chart tab shows."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .charts_pane import TABS, tab_key

KEYS = (
    ("p", "probe the configured net: one forward and one backward pass"),
    ("t", "train the configured net"),
    ("s", "stop the running job"),
    ("b", "pin the current run as the baseline (overlaid on Forward, Backward, Training)"),
    ("e", "export the last result as JSON and the screen as SVG (while a run goes on, the screen alone)"),
    ("1-9, 0", "switch chart tab"),
    ("r", "run the visible view: the sweep, the Jacobian or the width check (a probe elsewhere)"),
    ("n", "show or hide the numbers behind the visible chart"),
    ("← →", "the table's other columns where they do not all fit (its last column says how many); a field or "
            "the tab bar with the cursor takes the arrows itself"),
    ("k", "Distributions: switch weights, activations, gradients"),
    ("c", "show or hide the configuration"),
    ("escape", "leave a field (keys act on the app again)"),
    ("ctrl+p", "command palette: every action and every preset"),
    ("?", "this help"),
    ("q", "quit (while a run goes on, q twice: the first asks; ctrl+q too)"),
)


def help_text() -> str:
    lines = ["Keys", ""]
    lines += [f"  {k:<8} {what}" for k, what in KEYS]
    lines += ["", "Charts", ""]
    lines += [f"  {tab_key(i)} {title:<14} {about}" for i, (_tid, title, _cls, about) in enumerate(TABS, start=1)]
    lines += ["", "While you type in a field, letters and digits go to the field; escape leaves it."]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close", show=True)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text(), markup=False)
