"""A Select that survives the app closing while it mounts."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.widgets import Select
from textual.widgets._select import NoSelection, NonSelectableStatic, SelectCurrent, SelectOverlay


class _Current(SelectCurrent):
    """Textual's current-value line, which shows its label when its own children come after the Select's Mount.

    A Select sets its value in its Mount handler; when the app quits just then (a quick q while the form's groups
    are still mounting), the line's children are never composed and Textual's own line raises NoMatches on the way
    out. This one keeps the label and shows it whenever its children exist."""

    def update(self, label) -> None:
        try:
            super().update(label)
        except NoMatches:
            pass        # label and has_value are already set; compose shows the label if it ever runs

    def compose(self) -> ComposeResult:
        shown = self.placeholder if isinstance(self.label, NoSelection) else self.label
        yield NonSelectableStatic(shown, id="label")
        yield NonSelectableStatic("▼", classes="arrow down-arrow")
        yield NonSelectableStatic("▲", classes="arrow up-arrow")


class SteadySelect(Select):
    """Select with the steadier current-value line; everything else as Textual's."""

    def compose(self) -> ComposeResult:
        yield _Current(self.prompt)
        yield SelectOverlay(type_to_search=self._type_to_search).data_bind(compact=Select.compact)
