"""Widths: mean |a| per layer against width at each of the first training steps (muP's coordinate check).

Lines that stay flat across widths are width-stable.
"""
from __future__ import annotations

import math
import textwrap
from typing import Any

from rich.text import Text

from ..bridge import log10_or_none
from .dist_chart import sample
from .plot import PlotWidget, Row, build_plot, fmt, legend, log_ticks, span, theme_rgb, titled

GLYPHS = ("•", "×", "+", "◦", "*", "▪")
PANEL_W, PANEL_H = 30, 10           # the smallest step panel worth drawing
MIN_PANEL_H = 7                     # frame, ticks, the axis's name and at least two rows of data


def slope_line(r: dict[str, Any]) -> str:
    """Per step, the largest |log-log slope| of mean |a| against width over the layers: 0 is flat."""
    parts = []
    for row in r["slopes"]:
        vals = [abs(v) for v in row if v is not None and math.isfinite(v)]
        parts.append(fmt(max(vals), 2) if vals else "-")
    # the steps named once, the values in their order: a line that fits a pane of 120 columns for a few steps
    steps = "step 0" if len(parts) == 1 else f"steps 0 to {len(parts) - 1}"
    return f"largest |slope| (log-log; 0 is flat), {steps}: " + ", ".join(parts)


def last_slope_line(r: dict[str, Any]) -> str:
    """The last step's largest |log-log slope| alone, the figure first: for a pane too short for every step's."""
    vals = [abs(v) for v in r["slopes"][-1] if v is not None and math.isfinite(v)]
    return f"|slope| {fmt(max(vals), 2) if vals else '-'} at step {len(r['slopes']) - 1} (largest; 0 is flat; n: all)"


def hidden_under(r: dict[str, Any], layers: list[int], rows: int) -> list[int | None]:
    """Per drawn layer, the later-drawn one whose line lies on it at every width and step (within a row of a plot
    `rows` high), or None: plotext draws the later line over it, and the key says where it went."""
    lines = [[log10_or_none(r["mean_abs_a"][i][t][l]) for t in range(r["steps"] + 1) for i in range(len(r["widths"]))]
             for l in layers]
    lo, hi = span([v for line in lines for v in line], pad=0.1)
    tol = (hi - lo) / max(1, 2 * rows)

    def same(a: list[float | None], b: list[float | None]) -> bool:
        # a line with no point (a layer of zeros) is drawn nowhere: under nothing either
        return any(u is not None for u in a) and \
            all((u is None) == (v is None) and (u is None or abs(u - v) <= tol) for u, v in zip(a, b))

    return [next((h for h in range(len(layers) - 1, g, -1) if same(lines[g], lines[h])), None)
            for g in range(len(layers))]


def side_by_side(panels: list[Text], width: int) -> Text:
    """Pictures of equal height joined line by line, each padded to `width` cells."""
    split = [p.split("\n") for p in panels]
    out = Text(no_wrap=True)
    for i in range(max(len(s) for s in split)):
        if i:
            out.append("\n")
        for s in split:
            line = s[i].copy() if i < len(s) else Text()
            line.truncate(width, pad=True)
            out.append_text(line)
    return out


class WidthsChart(PlotWidget):
    """Data: engine.widths.width_check's dict."""

    title = "Widths: mean |a| per layer against width, log scale"
    empty = ("no width check yet: r trains the configured net at each width of the widths field (also in ctrl+p); "
             "while one runs, the header counts its widths and the chart comes at the end")

    def has_data(self) -> bool:
        return isinstance(self.data, dict) and "mean_abs_a" in self.data

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        r = self.data
        widths, steps = r["widths"], r["steps"] + 1
        layers = sample(r["layers"], len(GLYPHS))
        colours = [c["primary"], c["accent"], c["success"], c["error"], c["warning"], c["secondary"]]
        label = [f"layer {l}" for l in layers]      # as every other tab and the numbers table name them
        under = hidden_under(r, layers, rows=max(1, height - 8))
        key = legend(*[(GLYPHS[g], label[g] + (f" (under {label[h]})" if h is not None else ""), colours[g])
                       for g, h in enumerate(under)], width=width, rows=max(1, height - 8))   # a panel keeps 5 rows
        # the slope line wrapped, not cut: its last figure is the one the log reports; where the wrapped lines would
        # leave a panel fewer than its 5 rows, that last figure alone
        slopes = textwrap.wrap(slope_line(r), max(10, width)) or [""]
        if len(slopes) > 1 and height - (2 + len(slopes) + key.plain.count("\n")) < 5:
            slopes = [last_slope_line(r)]
        spare = 2 + len(slopes) + key.plain.count("\n")     # title, slopes, the key's lines: the panels get the rest
        max_cols = max(1, width // PANEL_W)
        grid_rows = 2 if height >= 2 * PANEL_H + spare else 1
        panels = min(steps, max_cols * grid_rows)
        if panels <= max_cols:
            grid_rows = 1
        shown_steps = sample(steps, panels) if panels > 1 else [steps - 1]
        xs = [math.log2(w) for w in widths]
        ys_all = [log10_or_none(r["mean_abs_a"][i][t][l]) for t in shown_steps for l in layers
                  for i in range(len(widths))]
        lo, hi = span(ys_all, pad=0.1)
        cols = -(-len(shown_steps) // grid_rows)
        pw = width // cols
        ph = (height - spare) // grid_rows
        if ph < MIN_PANEL_H:    # a frame with no row of data between its edges: the figures, and where to see more
            why = "too short for the step panels: n lists every value, and a taller pane draws them"
            lines = [self.title] + slopes + textwrap.wrap(why, max(10, width))
            out = Text(lines[0], style="bold", no_wrap=True, overflow="ellipsis")
            out.append("".join("\n" + ln for ln in lines[1:height]), style="dim")
            return out

        def panel(t: int) -> Text:
            def draw(plt: Any) -> None:
                drawn = 0
                for g, l in enumerate(layers):
                    pts = [(x, log10_or_none(r["mean_abs_a"][i][t][l])) for i, x in enumerate(xs)]
                    pts = [p for p in pts if p[1] is not None]
                    drawn += len(pts)
                    if pts:
                        plt.plot([p[0] for p in pts], [p[1] for p in pts], marker=GLYPHS[g], color=colours[g])
                ticks, labels = log_ticks(lo, hi, most=max(2, (ph - 4) // 2))
                plt.yticks(ticks, labels)
                plt.ylim(lo, hi)
                idx = sample(len(widths), max(2, (pw - 8) // 6))
                plt.xticks([xs[i] for i in idx], [str(widths[i]) for i in idx])
                # no point to draw (every mean |a| is 0 or not finite on a log axis): an empty frame says so
                plt.title(f"step {t}" if drawn else f"step {t}: no mean |a| above 0")
                plt.xlabel("width")

            return build_plot(pw, ph, draw)

        # one plot per step, laid side by side here: plotext's own subplots outlive clf() and would leak into
        # the other charts, which share its one global figure
        rows = [side_by_side([panel(t) for t in shown_steps[k:k + cols]], pw)
                for k in range(0, len(shown_steps), cols)]
        # panels that do not fit are left out: said, since the log counts every step (each panel names its own)
        # after the chart's name, where a narrow pane does not cut it
        shown = "" if len(shown_steps) == steps else f"{len(shown_steps)} of {steps} steps fit; n lists all"
        out = Text(titled(self.title, shown), style="bold", no_wrap=True, overflow="ellipsis")
        out.append("\n" + "\n".join(slopes), style="")
        out.append("\n")
        for block in rows:
            out.append_text(block)
            out.append("\n")
        out.append_text(key)
        return out

    def key_columns(self) -> int:
        return 2        # step and layer

    def table(self) -> tuple[Row, list[Row]]:
        r = self.data
        cols = ["step", "layer"] + [f"w {w}" for w in r["widths"]] + ["slope"]
        rows = []
        for t in range(r["steps"] + 1):
            for l in range(r["layers"]):
                rows.append([str(t), str(l)] + [fmt(r["mean_abs_a"][i][t][l]) for i in range(len(r["widths"]))]
                            + [fmt(r["slopes"][t][l], 3)])
        return cols, rows
