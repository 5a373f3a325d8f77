"""A Select that survives the app closing while it mounts."""
from __future__ import annotations

from textual.css.query import NoMatches
from textual.widgets import Select


class SteadySelect(Select):
    """Textual's Select, except when it is closed before its children are mounted.

    A Select fills its option list and shows its value from its Mount handler. When the app quits just then (a
    quick q while the form's groups are still mounting), the Select can be mounted without its children, and
    Textual's own handler raises NoMatches on the way out. Here the missing children mean there is nothing to
    show; the value is still kept."""

    def _setup_options_renderables(self) -> None:
        try:
            super()._setup_options_renderables()
        except NoMatches:
            pass

    def _watch_value(self, value) -> None:
        try:
            super()._watch_value(value)
        except NoMatches:
            pass
