"""The numbers behind the visible chart, one row per layer (or epoch), in a table."""
from __future__ import annotations

from textual.widgets import DataTable


class NumbersTable(DataTable):
    """Shows whatever (columns, rows) the visible chart hands over; redrawn only while it is shown."""

    DEFAULT_CSS = """
    NumbersTable { height: 1fr; }
    """

    def __init__(self, **kwargs):
        super().__init__(zebra_stripes=True, cursor_type="row", **kwargs)
        self.shown: tuple[list[str], list[list[str]]] = ([], [])

    def show(self, columns: list[str], rows: list[list[str]]) -> None:
        if (columns, rows) == self.shown:
            return
        self.shown = (list(columns), [list(r) for r in rows])
        self.clear(columns=True)
        self.add_columns(*columns)
        self.add_rows(rows)
