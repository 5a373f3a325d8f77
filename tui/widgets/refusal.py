"""A refused form field: marked, with the reason in a row under it, until its value is accepted."""
from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Label, Static


def show_refusal(boxes: dict[str, tuple[Label, Static]], widget: Widget, name: str, error: str | None) -> None:
    """Show or clear a field's refusal in the row under it: a mark in the name column, the reason beside it.
    `boxes` holds the rows mounted so far, by field name (mounted only while a field is refused)."""
    widget.set_class(bool(error), "-refused")
    row = boxes.get(name)
    if error:
        # the field's name is in the row above; another name (a setting in the vary field's grid) stays
        head, sep, rest = error.partition(": ")
        reason = rest if sep and head == name else error
        if row is None:
            # a class, not an id: a row just cleared may still be in the DOM, its removal pending, when fast typing
            # makes the field refused again within the same tick
            row = boxes[name] = (Label("  refused", classes="field-error"),
                                 Static(reason, classes=f"field-error error-{name}", markup=False))
            widget.parent.mount(*row, after=widget)
        else:
            row[1].update(reason)
        if widget.has_focus:
            # a field near the form's foot would have its reason wrapped below the pane, out of sight; scrolled to
            # once laid out, at its new height
            widget.call_after_refresh(row[1].scroll_visible, animate=False)
    elif row is not None:
        for b in row:
            b.remove()
        del boxes[name]
