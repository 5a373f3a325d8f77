"""Sweep: progress, a heatmap of the gradient ratio over two settings, and a table per point.

The heatmap draws the edge of chaos chi_1 = 1 over a sigma_w^2 x sigma_b^2 grid; the table holds each point's
verdict, gradient ratios and last-layer std.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from initlab.engine.sweep import SQUARED, value_text, verdict_cell

from .dist_chart import sample
from .heatmap import blend
from .plot import RGB, PlotWidget, Row, fmt, theme_rgb

NEUTRAL: RGB = (112, 112, 112)
LINE = "┃"
METRIC_NAMES = {"log10_gradz_ratio": "log10 of dL/dz RMS, first layer over last"}


@dataclass(frozen=True)
class SweepData:
    """A sweep's summary so far (engine.sweep.summary's dict) and how it stands: running, finished, stopped."""

    summary: dict[str, Any]
    label: str = ""
    state: str = "running"


def axis_name(name: str) -> str:
    return SQUARED.get(name, name)


def axis_value(name: str, v: Any) -> Any:
    return v * v if name in SQUARED and isinstance(v, (int, float)) else v


def label_of(v: Any) -> str:
    return fmt(v, 3) if isinstance(v, float) else str(v)


def columns(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(key in a point row, heading) for the table: the varied settings, then the figures every point has."""
    axes = [n for n in summary.get("vary", {}) if n != "seed"]
    points = summary.get("points", [])
    cols = [(a, axis_name(a)) for a in axes] + [("verdict", "verdict"), ("first_last_gradz_ratio", "dL/dz first/last"),
                                                ("log10_gradz_ratio", "log10"),
                                                ("first_last_grad_ratio", "|dW| first/last"),
                                                ("last_a_std", "last a std")]
    if any(p.get("runs", 1) > 1 for p in points):
        cols += [("log10_gradz_ratio_std", "log10 std"), ("runs", "seeds")]
    if any("chi1" in p for p in points):
        cols += [("chi1", "chi_1"), ("phase", "phase"), ("predicted_log10_gradz_ratio", "theory log10")]
    if summary.get("mode") == "train":
        cols += [("train_loss", "train loss"), ("test_loss", "test loss")]
    return cols


def cell_text(key: str, v: Any) -> str:
    if key in SQUARED:
        return label_of(axis_value(key, v))
    if key == "gain" and v is None:     # an automatic gain, not a value missing
        return value_text(key, v)
    if isinstance(v, float) or v is None:
        return fmt(v, 3 if "log10" in key else 4)
    return str(v)


def point_rows(summary: dict[str, Any]) -> tuple[Row, list[Row]]:
    cols = columns(summary)
    return [h for _k, h in cols], [[verdict_cell(p) if k == "verdict" else cell_text(k, p.get(k)) for k, _h in cols]
                                   for p in summary.get("points", [])]


def diverging(v: float, m: float, c: dict[str, RGB]) -> RGB:
    """Below 0 (gradients vanish towards the input) towards the primary colour, above 0 (they explode) towards
    the error colour, 0 grey; m is the largest |value| shown."""
    t = max(-1.0, min(1.0, v / m)) if m > 0 else 0.0
    return blend(NEUTRAL, c["primary"] if t < 0 else c["error"], abs(t))


def ink(rgb: RGB) -> str:
    """Black or white, whichever reads on this background."""
    return "black" if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 else "white"


def fit_number(v: float, w: int) -> str:
    """v in at most w characters, never rounded to a 0 it is not (a gradient ratio of 1e-5 is no 0.00)."""
    short = lambda t: t.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")
    fixed = (f"{v:.2f}", f"{v:.1f}", f"{v:.0f}") if v == 0 or abs(v) >= 0.005 else ()
    for text in (*fixed, short(f"{v:.1e}"), short(f"{v:.0e}")):
        if len(text) <= w:
            return text
    return "#" * w


def critical_positions(hm: dict[str, Any], line: list[dict[str, Any]] | None, cw: int, shown: list[int]
                       ) -> dict[int, int | None]:
    """Heatmap row -> character offset (within the cells) where chi_1 = 1 falls, None where it lies off the grid;
    only for sigma_w across and sigma_b down."""
    if not line or hm["x_field"] != "sigma_w" or hm["y_field"] != "sigma_b" or len(shown) < 1:
        return {}
    xs = [hm["x"][i] ** 2 for i in shown]
    out: dict[int, int | None] = {}
    for j, y in enumerate(hm["y"]):
        near = min(line, key=lambda d: abs(d["sigma_b2"] - y * y))
        w2 = near.get("sigma_w2")
        if w2 is None or abs(near["sigma_b2"] - y * y) > 1e-9 * max(1.0, y * y) or not xs[0] <= w2 <= xs[-1]:
            out[j] = None
            continue
        if len(xs) == 1:
            pos = 0.0
        else:
            i = max(k for k in range(len(xs) - 1) if xs[k] <= w2) if w2 < xs[-1] else len(xs) - 2
            pos = i + (w2 - xs[i]) / (xs[i + 1] - xs[i])
        out[j] = min(len(xs) * cw - 1, int(round(pos * cw + cw / 2)))
    return out


def with_mark(cells: Text, pos: int) -> Text:
    """The cells with the critical line's mark at the blank nearest `pos`, so that it never hides a digit."""
    plain = cells.plain
    blanks = [k for k, ch in enumerate(plain) if ch == " "]
    if not blanks:
        return cells
    k = min(blanks, key=lambda b: (abs(b - pos), b))
    mark = cells[k:k + 1]
    mark.plain = LINE           # keeps the cell's background
    mark.stylize("bold")
    return cells[:k] + mark + cells[k + 1:]


def legend_words(metric: str, m: float) -> tuple[str, str]:
    """What the colour scale's ends mean: vanishing and exploding only where they reach the verdict's three decades
    (a stable grid's ends are mere leanings), and nothing read into a metric that is not a log ratio."""
    from initlab.engine.verdict import LIMIT

    if metric != "log10_gradz_ratio" or m == 0:      # an empty scale: no leaning to name
        return "", ""
    if m >= LIMIT:
        return " vanishing", " exploding"
    return " first layer smaller", " first layer larger"


def heatmap_lines(hm: dict[str, Any], line: list[dict[str, Any]] | None, width: int, c: dict[str, RGB]
                  ) -> list[Text]:
    """The heatmap as lines of text: a header of x values, one row of coloured cells (the value written in each)
    per y value, and a legend."""
    xs = [label_of(axis_value(hm["x_field"], v)) for v in hm["x"]]
    ys = [label_of(axis_value(hm["y_field"], v)) for v in hm["y"]]
    yname, xname = axis_name(hm["y_field"]), axis_name(hm["x_field"])
    yw = max(len(s) for s in ys + [yname]) + 1
    values = [v for row in hm["values"] for v in row if v is not None and math.isfinite(v)]
    m = max((abs(v) for v in values), default=0.0)
    nw = max([5] + [len(s) for s in xs])           # a number's room; a space either side of it
    cw = nw + 2
    slots = max(1, (width - yw - 1) // cw)
    shown = sample(len(xs), slots) if slots > 1 else [0]
    crit = critical_positions(hm, line, cw, shown)
    head = Text(f"{METRIC_NAMES.get(hm['metric'], hm['metric'])}: {yname} down, {xname} across", style="bold",
                no_wrap=True, overflow="ellipsis")
    mark = f"{LINE} chi_1 = 1 (edge of chaos)"
    # the mark's key beside the title where it fits, else on a line of its own under the legend: cut, the mark
    # in the grid would say nothing
    key_apart = bool(crit) and head.cell_len + 3 + len(mark) > width
    if crit and not key_apart:
        head.append(f"   {mark}", style="bold")
    out = [head]
    if head.cell_len > width:       # which axis is which is the line's point: on a line of its own, not cut off
        name, _, axes = head.plain.partition(": ")
        out = [Text(name + ":", style="bold", no_wrap=True, overflow="ellipsis"),
               Text(" " + axes, style="bold", no_wrap=True, overflow="ellipsis")]
    out.append(Text((yname.rjust(yw) + " " + "".join(xs[i].rjust(cw) for i in shown)), style="dim",
                    no_wrap=True, overflow="ellipsis"))
    for j, label in enumerate(ys):
        row = Text(no_wrap=True, overflow="ellipsis")
        row.append(label.rjust(yw) + " ", style="dim")
        cells = Text(no_wrap=True)
        for i in shown:
            v = hm["values"][j][i]
            if v is None or not math.isfinite(v):
                cells.append(" " + "·".rjust(nw) + " ", style="dim")
                continue
            rgb = diverging(v, m, c)
            cells.append(" " + fit_number(v, nw).rjust(nw) + " ", style=f"{ink(rgb)} on rgb({rgb[0]},{rgb[1]},{rgb[2]})")
        pos = crit.get(j)
        if pos is not None:
            cells = with_mark(cells, pos)
        elif j in crit:
            cells.append(" chi_1 = 1 off the grid", style="dim")
        row.append_text(cells)
        out.append(row)
    lo = c["primary"]
    hi = c["error"]
    legend = Text(" " * yw + " ", no_wrap=True, overflow="ellipsis")
    low, high = legend_words(hm["metric"], m)
    legend.append(f" {fmt(-m, 3) if m else '0'}{low} ", style=f"{ink(lo)} on rgb({lo[0]},{lo[1]},{lo[2]})")
    legend.append(" 0 ", style=f"{ink(NEUTRAL)} on rgb({NEUTRAL[0]},{NEUTRAL[1]},{NEUTRAL[2]})")
    legend.append(f" {fmt(m, 3)}{high} ", style=f"{ink(hi)} on rgb({hi[0]},{hi[1]},{hi[2]})")
    pending = "  · pending, 0 or not finite"       # a ratio of 0 has no log: finished, yet no colour
    if legend.cell_len + len(pending) <= width:
        legend.append(pending, style="dim")
        out.append(legend)
    else:
        out += [legend, Text(indented(pending.lstrip(), yw + 2, width), style="dim", no_wrap=True,
                             overflow="ellipsis")]
    if key_apart:
        out.append(Text(indented(mark, yw + 2, width), style="bold", no_wrap=True, overflow="ellipsis"))
    if len(shown) < len(xs):        # said: the header would read as the whole grid
        left = f"{len(xs) - len(shown)} of {len(xs)} {xname} columns left out for room; n lists every point"
        lines = [indented(left, yw + 2, width)] if yw + 2 + len(left) <= width else textwrap.wrap(left, max(10, width))
        out += [Text(ln, style="dim", no_wrap=True, overflow="ellipsis") for ln in lines]
    return out


def indented(text: str, by: int, width: int) -> str:
    """text under the grid's columns where it fits there, else from the pane's edge."""
    return " " * by + text if by + len(text) <= width else text


SPARE_COLUMNS = ("log10", "|dW| first/last", "seeds")     # the log of the column before it; a second ratio; runs


def table_lines(head: Row, rows: list[Row], width: int, room: int) -> list[Text]:
    """The points as aligned text rows, the latest ones when not all fit in `room` lines."""
    if room < 2 or not rows:
        return []
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(head)]
    every = len(head)
    # where the columns do not all fit, those the others imply go first (n's table keeps every column)
    for name in SPARE_COLUMNS:
        if sum(widths) + 2 * (len(widths) - 1) <= width:
            break
        if name in head:
            k = head.index(name)
            head, widths = head[:k] + head[k + 1:], widths[:k] + widths[k + 1:]
            rows = [r[:k] + r[k + 1:] for r in rows]
    # then whole columns from the right: a cell cut at the edge read as another value (0.254 as 0.)
    while len(widths) > 1 and sum(widths) + 2 * (len(widths) - 1) > width:
        head, widths, rows = head[:-1], widths[:-1], [r[:-1] for r in rows]
    hidden = every - len(head)
    line = lambda cells: "  ".join(s.rjust(w) for s, w in zip(cells, widths))
    out = [Text(line(head), style="bold", no_wrap=True, overflow="ellipsis")]
    # one line says what is left out, points and columns alike, so that a short pane still shows a point
    noted = hidden > 0 or len(rows) > room - 1
    left = room - 1 - noted
    if left < 1:        # a heading and a note with no point under them say nothing the heatmap does not
        return []
    shown = rows[-left:]
    if noted:
        parts = ([f"{len(rows) - len(shown)} earlier points"] if len(shown) < len(rows) else []) + \
                ([f"{hidden} more column{'s' if hidden > 1 else ''}"] if hidden else [])
        said = f"... {', '.join(parts)}"
        # the keys' hint shortened to fit rather than cut mid-word ("← → b…")
        hint = next((h for h in (" (n lists them, ← → by page)", " (n lists them)") if len(said + h) <= width), "")
        out.append(Text(said + hint, style="dim", no_wrap=True, overflow="ellipsis"))
    for r in shown:
        out.append(Text(line(r), no_wrap=True, overflow="ellipsis"))
    return out


class SweepChart(PlotWidget):
    """Data: a SweepData; redrawn as points arrive."""

    title = "Sweep"
    empty = ("no sweep yet: r runs the grid in the configuration's vary field; ctrl+p offers 'Sweep: depth x init' "
             "and 'Sweep: edge-of-chaos-tanh'")

    def has_data(self) -> bool:
        return isinstance(self.data, SweepData)

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: SweepData = self.data
        s = d.summary
        done, total = s.get("done", 0), s.get("total", 0)
        lines = [Text(f"{self.title} {d.label}: {done}/{total} points ({s.get('mode', 'probe')}), {d.state}",
                      style="bold", no_wrap=True, overflow="ellipsis")]
        bar_w = max(0, min(40, width - 2))
        filled = int(bar_w * done / total) if total else 0
        lines.append(Text("█" * filled + "░" * (bar_w - filled), style="dim", no_wrap=True))
        hm = s.get("heatmap")
        grid = heatmap_lines(hm, s.get("critical_line"), width, c) if hm is not None else []
        if grid and height - len(lines) >= len(grid) + 1:
            lines += grid
            lines.append(Text(""))
        head, rows = point_rows(s)
        lines += table_lines(head, rows, width, height - len(lines))
        return Text("\n").join(lines[:height])

    def table(self) -> tuple[Row, list[Row]]:
        return point_rows(self.data.summary)

    def key_columns(self) -> int:
        return max(1, len([n for n in self.data.summary.get("vary", {}) if n != "seed"]))
