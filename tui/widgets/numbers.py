"""The numbers behind the visible chart in a table: a row per layer, epoch, sweep point or width-check step."""
from __future__ import annotations

import os

from rich.cells import cell_len
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable


class NumbersTable(DataTable):
    """Shows whatever (columns, rows) the visible chart hands over; redrawn only while it is shown. Where the
    columns do not fit even closed up, it shows the key columns (those that tell the rows apart: the layer, a
    sweep's settings) and a page of whole columns, and left and right turn the pages: a column cut at the pane's
    edge read as another number (1.018e-10 as 1)."""

    DEFAULT_CSS = """
    NumbersTable { height: 1fr; }
    """
    BINDINGS = [Binding("right", "page(1)", "next columns", show=False),
                Binding("left", "page(-1)", "earlier columns", show=False),
                # its columns are paged: home and end go to the first and last rows
                Binding("home", "scroll_top", "first row", show=False),
                Binding("end", "scroll_bottom", "last row", show=False)]

    def __init__(self, **kwargs):
        super().__init__(zebra_stripes=True, cursor_type="row", fixed_columns=1, **kwargs)
        self.shown: tuple[list[str], list[list[str]]] = ([], [])
        self.columns_shown: list[str] = []  # the columns on screen: all of them, or the key columns and a page
        self.keys = 1                       # the leading columns every page keeps
        self.page_start = 1                 # the page's first column, when the columns are paged
        self._end: int | None = None        # the end (exclusive) of the page shown; None: every column is shown
        self._version = 0                   # counts the data handed over, so that a layout is redone only for news
        self._laid: tuple | None = None

    def show(self, columns: list[str], rows: list[list[str]], keys: int = 1) -> None:
        keys = max(1, min(keys, len(columns) - 1))
        if (columns, rows) == self.shown and keys == self.keys:
            return
        if list(columns) != self.shown[0] or keys != self.keys:
            self.page_start = keys
        self.keys = keys
        self.fixed_columns = keys
        self.shown = (list(columns), [list(r) for r in rows])
        self._version += 1
        self._lay_out()

    def on_resize(self, event: Resize) -> None:
        self._lay_out()

    def _widths(self) -> list[int]:
        columns, rows = self.shown
        # widths set from the cells: auto widths are measured only when the table next goes idle, after a frame
        # may have been drawn and cached at the headers' widths (then a number shows cut until the mouse moves)
        return [max([cell_len(str(label))] + [cell_len(str(r[i])) for r in rows if i < len(r)])
                for i, label in enumerate(columns)]

    def _room(self, width: int) -> int:
        """The cells a page's columns may take: the pane less the scrollbar and the marker column at its widest."""
        n = len(self.shown[0])
        return width - 1 - (cell_len(page_marker(n, n)) + 1)

    def _page_end(self, widths: list[int], start: int, room: int) -> int:
        """The end (exclusive) of the page of whole columns from `start` that fits beside the key columns."""
        used, end = sum(widths[:self.keys]) + self.keys, start
        while end < len(widths) and used + widths[end] + 1 <= room:
            used += widths[end] + 1
            end += 1
        return max(end, start + 1)          # one column at least, however narrow the pane

    def _lay_out(self) -> None:
        columns, rows = self.shown
        width = self.size.width
        key = (self._version, width, self.page_start)
        if key == self._laid:
            return
        self._laid = key
        widths = self._widths()
        # clear() puts the cursor and the view back at the first row: a page of columns, or the next statistics of
        # a training, would lose the reader's place in a deep net's rows
        row, top = self.cursor_row, self.scroll_y
        self.clear(columns=True)
        # a space either side of each column where they fit so; else one space between them
        padded = not width or sum(widths) + 2 * len(widths) <= width - 1
        tight = not padded and sum(widths) + len(widths) <= width - 1
        if not (padded or tight):
            widths = self._keys_cut(widths, width)
            tight = sum(widths) + len(widths) <= width - 1
        self._end = None
        if padded or tight or len(columns) < self.keys + 2:
            self.cell_padding = 1 if padded else 0
            shown = list(range(len(columns)))
            marker = None
        else:
            self.cell_padding = 0
            self.page_start = min(max(self.keys, self.page_start), len(columns) - 1)
            self._end = end = self._page_end(widths, self.page_start, self._room(width))
            shown = list(range(self.keys)) + list(range(self.page_start, end))
            marker = page_marker(self.page_start - self.keys, len(columns) - end)
        self.columns_shown = [columns[i] for i in shown]
        extra = 0 if padded else 1
        for i in shown:
            self.add_column(cut_column([columns[i]], widths[i])[0], width=widths[i] + extra)
        if marker is not None:
            self.add_column(marker, width=cell_len(marker) + 1)
        cells = {i: cut_column([r[i] if i < len(r) else "" for r in rows], widths[i]) for i in shown}
        self.add_rows([[cells[i][k] for i in shown] + ([""] if marker is not None else []) for k in range(len(rows))])
        if rows and (row or top):
            self.move_cursor(row=min(row, len(rows) - 1), scroll=False)
            self.scroll_to(y=top, animate=False, immediate=True)

    def _keys_cut(self, widths: list[int], width: int) -> list[int]:
        """The key columns narrowed, the widest first, to half the pane at most: wider (a user's module paths), they
        left no room for a page beside them and ran past the pane's edge."""
        widths = list(widths)
        cap = max(2 * self.keys, self._room(width) // 2 - self.keys)
        while sum(widths[:self.keys]) > cap:
            i = max(range(self.keys), key=lambda k: widths[k])
            if widths[i] <= 2:
                break
            widths[i] -= 1
        return widths

    def action_page(self, step: int) -> None:
        """Right: the columns after the page; left: those before it. Scrolls as a table does when all fit."""
        if self._end is None:
            (self.action_scroll_right if step > 0 else self.action_scroll_left)()
            return
        first, end = self.page_start, self._end
        if step > 0 and end < len(self.shown[0]):
            self.page_start = end
        elif step < 0 and first > self.keys:
            widths, room = self._keys_cut(self._widths(), self.size.width), self._room(self.size.width)
            start = first - 1
            while start > self.keys and self._page_end(widths, start - 1, room) >= first:
                start -= 1
            self.page_start = start
        else:
            return
        self._lay_out()


def page_marker(before: int, after: int) -> str:
    """The paged table's last column: how many columns lie either way, with the arrow that turns to them."""
    if before and after:
        return f"← {before}  {after} →"
    return f"{after} more →" if after else f"← {before} more"


SEPARATORS = "._-/: ,="      # where a shared start or end may give way, but inside a number (see _parts_end)


def _boundary(text: str, k: int) -> bool:
    """Whether text[k] ends a part: a separator, but not a decimal point or an exponent's sign (0.25, 1e-05)."""
    c = text[k]
    if c not in SEPARATORS:
        return False
    before = text[k - 1] if k > 0 else ""
    after = text[k + 1] if k + 1 < len(text) else ""
    if c == "." and before.isdigit() and after.isdigit():
        return False
    return not (c == "-" and before in "eE" and after.isdigit())


def cut_column(values: list[str], width: int) -> list[str]:
    """A column's cells in `width` cells each. Where they share a start and an end made of whole parts (a user's
    module paths), those give way to an ellipsis and what tells the cells apart stays; otherwise each keeps its start
    and its end."""
    values = [str(v) for v in values]
    if all(cell_len(v) <= width for v in values):
        return values
    if len(values) > 1:
        head = os.path.commonprefix(values)
        # the boundaries are read in a whole value: whether a '.' is a decimal point depends on what follows it
        v0 = values[0]
        head = head[:max((k + 1 for k in range(len(head)) if _boundary(v0, k)), default=0)]
        rest = [v[len(head):] for v in values]
        tail = os.path.commonprefix([r[::-1] for r in rest])[::-1]
        start = len(v0) - len(tail)
        tail = tail[min((k for k in range(len(tail)) if _boundary(v0, start + k)), default=len(tail)):]
        middles = [r[:len(r) - len(tail)] for r in rest]
        cells = [("…" if head else "") + m + ("…" if tail else "") for m in middles]
        if (head or tail) and all(middles) and len(set(middles)) == len(set(values)) \
                and all(cell_len(c) <= width for c in cells):
            return cells
    return [v if cell_len(v) <= width else _middle_cut(v, width) for v in values]


def _middle_cut(text: str, width: int) -> str:
    """The text's start and end around an ellipsis, in `width` cells (a wide character counts two)."""
    room = max(0, width - 1)
    front, back = "", ""
    i, j = 0, len(text)
    while i < j:
        take_front = cell_len(front) <= cell_len(back)
        ch = text[i] if take_front else text[j - 1]
        if cell_len(front) + cell_len(back) + cell_len(ch) > room:
            break
        if take_front:
            front, i = front + ch, i + 1
        else:
            back, j = ch + back, j - 1
    return front + "…" + back
