"""The numbers behind the visible chart, one row per layer (or epoch), in a table."""
from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import DataTable


class NumbersTable(DataTable):
    """Shows whatever (columns, rows) the visible chart hands over; redrawn only while it is shown."""

    DEFAULT_CSS = """
    NumbersTable { height: 1fr; }
    """

    def __init__(self, **kwargs):
        super().__init__(zebra_stripes=True, cursor_type="row", fixed_columns=1, **kwargs)
        self.shown: tuple[list[str], list[list[str]]] = ([], [])

    def show(self, columns: list[str], rows: list[list[str]]) -> None:
        if (columns, rows) == self.shown:
            return
        self.shown = (list(columns), [list(r) for r in rows])
        self.clear(columns=True)
        # widths set from the cells: auto widths are measured only when the table next goes idle, after a frame
        # may have been drawn and cached at the headers' widths (then a number shows cut until the mouse moves)
        widths = [max([cell_len(str(label))] + [cell_len(str(r[i])) for r in rows if i < len(r)])
                  for i, label in enumerate(columns)]
        # where the columns do not fit with a space either side, one space between them: a column cut at the
        # pane's edge read as another number (a max of 0.03 as 0); the first column stays when scrolled sideways
        tight = bool(self.size.width) and sum(widths) + 2 * len(widths) > self.size.width - 1
        self.cell_padding = 0 if tight else 1
        for label, w in zip(columns, widths):
            self.add_column(label, width=w + 1 if tight else w)
        self.add_rows(rows)
