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


def under_which(r: dict[str, Any], layers: list[int], g: int) -> int | None:
    """For a drawn layer plotext covered: the later-drawn one (drawn over it) whose line lies nearest to it, by the
    largest gap in log10 over every width and step, or None where no later line has a point."""
    line = lambda l: [log10_or_none(r["mean_abs_a"][i][t][l]) for t in range(r["steps"] + 1)
                      for i in range(len(r["widths"]))]
    mine = line(layers[g])
    gaps = {}
    for h in range(g + 1, len(layers)):
        pairs = [(u, v) for u, v in zip(mine, line(layers[h])) if u is not None and v is not None]
        if pairs:
            gaps[h] = max(abs(u - v) for u, v in pairs)
    return min(gaps, key=lambda h: (gaps[h], -h)) if gaps else None


def has_point(r: dict[str, Any], layer: int) -> bool:
    """Whether a layer has a mean |a| a log axis can draw (above 0, finite) at some width and step."""
    return any(log10_or_none(r["mean_abs_a"][i][t][layer]) is not None for t in range(r["steps"] + 1)
               for i in range(len(r["widths"])))


def plotted_glyphs(panel: Text) -> set[str]:
    """The characters inside a panel's frame: the tick labels left of it (1e+03) are not markers."""
    out: set[str] = set()
    for line in panel.plain.split("\n"):
        cuts = [k for k in (line.find("│"), line.find("┤")) if k >= 0]
        if cuts:
            out.update(line[min(cuts) + 1:])
    return out


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
        steps = r["steps"] + 1
        layers = sample(r["layers"], len(GLYPHS))
        colours = [c["primary"], c["accent"], c["success"], c["error"], c["warning"], c["secondary"]]
        label = [f"layer {l}" for l in layers]      # as every other tab and the numbers table name them

        def keyed(covered: dict[int, int | None]) -> Text:
            """The key, naming the layers no marker of which is left in any panel (plotext drew later ones over)."""
            say = lambda g: "" if g not in covered else \
                f" (under {label[covered[g]]})" if covered[g] is not None else " (under later lines)"
            return legend(*[(GLYPHS[g], label[g] + say(g), colours[g]) for g in range(len(layers))],
                          width=width, rows=max(1, height - 8))   # a panel keeps 5

        def layout(key: Text) -> tuple[list[str], int, int]:
            # the slope line wrapped, not cut: its last figure is the one the log reports; where the wrapped lines
            # would leave a panel fewer than its 5 rows, that last figure alone
            slopes = textwrap.wrap(slope_line(r), max(10, width)) or [""]
            if len(slopes) > 1 and height - (2 + len(slopes) + key.plain.count("\n")) < 5:
                slopes = [last_slope_line(r)]
            spare = 2 + len(slopes) + key.plain.count("\n")     # title, slopes, the key's lines: the panels the rest
            grid_rows = 2 if height >= 2 * PANEL_H + spare and min(steps, max_cols * 2) > max_cols else 1
            return slopes, spare, grid_rows

        max_cols = max(1, width // PANEL_W)
        # laid out first with a key naming no covered layer; where the panels then cover some and the key that says
        # so is taller, laid out again for it (covering is read from what plotext drew, so it may change again); the
        # last try is laid out for a key naming every layer as under later lines, which no key is taller than
        tries = [keyed({}), None, keyed({g: None for g in range(len(layers))})]       # the longest words
        for k, key in enumerate(tries):
            key = key or tries[k - 1]
            slopes, spare, grid_rows = layout(key)
            drawn = self._panels(r, layers, colours, width, height, slopes, spare, grid_rows, max_cols)
            if isinstance(drawn, Text):
                return drawn
            rows, seen, shown_steps = drawn
            covered = {g: under_which(r, layers, g) for g in range(len(layers))
                       if GLYPHS[g] not in seen and has_point(r, layers[g])}
            for g in covered:       # the line it lies under may itself lie under a later one: the one seen is named
                h, hops = covered[g], 0
                while h in covered and covered[h] is not None and hops < len(layers):
                    h, hops = covered[h], hops + 1
                covered[g] = None if h in covered else h        # a chain ending unseen: under later lines
            new = keyed(covered)
            if new.plain.count("\n") <= key.plain.count("\n"):
                key = new
                break
            if k == 0:
                tries[1] = new
        # panels that do not fit are left out: said, since the log counts every step (each panel names its own)
        # after the chart's name, where a narrow pane does not cut it
        shown = "" if len(shown_steps) == steps else f"{len(shown_steps)} of {steps} steps fit; n lists all"
        out = Text(titled(self.title, shown, width), style="bold", no_wrap=True, overflow="ellipsis")
        out.append("\n" + "\n".join(slopes), style="")
        out.append("\n")
        for block in rows:
            out.append_text(block)
            out.append("\n")
        out.append_text(key)
        return out

    def _panels(self, r: dict[str, Any], layers: list[int], colours: list[str], width: int, height: int,
                slopes: list[str], spare: int, grid_rows: int, max_cols: int
                ) -> Text | tuple[list[Text], set[str], list[int]]:
        """The step panels in rows of side-by-side plots, the characters plotted inside their frames and the steps
        shown; or, where a panel would have no row of data, the text that says so in their place."""
        widths, steps = r["widths"], r["steps"] + 1
        panels = min(steps, max_cols * grid_rows)
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
        drawn = [panel(t) for t in shown_steps]
        rows = [side_by_side(drawn[k:k + cols], pw) for k in range(0, len(shown_steps), cols)]
        return rows, set().union(*(plotted_glyphs(p) for p in drawn)), shown_steps

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
