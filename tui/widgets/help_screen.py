"""The help screen: every key and what each chart tab shows."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
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
    ("e", "export the visible tab's result as JSON and the screen as SVG (while a run goes on, the screen alone)"),
    ("w", "write the form's settings as TOML (initlab --config FILE opens the app with them)"),
    ("1-9, 0", "switch chart tab"),
    ("r", "run the visible view: the sweep, the Jacobian or the width check (a probe elsewhere)"),
    ("n", "show or hide the numbers behind the visible chart (shown, the cursor is in it)"),
    ("← →", "the table's other columns where they do not all fit (its last column says how many); a field or "
            "the tab bar with the cursor takes the arrows itself"),
    ("↑ ↓ PgUp PgDn Home End", "the table's rows, where they run past the pane (a deep net's layers)"),
    ("k", "Distributions: switch weights, activations, gradients"),
    ("c", "show or hide the configuration"),
    ("escape", "leave a field (keys act on the app again)"),
    ("ctrl+p", "command palette: every action, and every preset (loaded and run at once)"),
    ("?", "this help"),
    ("q", "quit (while a training or a sweep runs, q twice: the first asks; ctrl+q too)"),
)


def _grid(rows: list[tuple[str, ...]]) -> Table:
    """Rows whose last column wraps under itself, not back to the pane's edge."""
    grid = Table.grid(padding=(0, 1))
    for _ in rows[0][:-1]:
        grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))       # as written: a '[' is not markup
    return grid


def help_content() -> Group:
    keys = _grid([(" ", k, what) for k, what in KEYS])
    charts = _grid([(" ", tab_key(i), title, about) for i, (_tid, title, _cls, about) in enumerate(TABS, start=1)])
    return Group(Text("escape, q or ? closes this help\n", style="bold"), Text("Keys\n", style="bold"), keys,
                 Text("\nCharts\n", style="bold"), charts,
                 Text("\nWhile you type in a field, letters and digits go to the field; escape leaves it."))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close", show=True)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_content())
