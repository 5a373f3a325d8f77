"""Heatmap: layer x step of log10 mean |dL/dW| over the run, one shaded cell per layer and step."""
from __future__ import annotations

from rich.text import Text

from .dist_chart import LABEL_W, sample
from .plot import PlotWidget, Row, finite, fmt, theme_rgb

SHADES = "·░▒▓█"
MISSING = "×"
Column = tuple[int, tuple[float | None, ...]]


def blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def level(v: float, lo: float, hi: float, n: int = len(SHADES)) -> int:
    """Which of n shades a value falls in, lo..hi split evenly."""
    if hi - lo < 1e-12:
        return n - 1
    return min(n - 1, max(0, int((v - lo) / (hi - lo) * n)))


def thinned_note(kept: int, seen: int) -> str:
    """'N of M sampled steps kept' where a long run's history was thinned (every other step dropped as it filled),
    else ''."""
    return f"{kept} of {seen} sampled steps kept" if seen > kept else ""


class HeatmapChart(PlotWidget):
    """Data: a tuple of (step, log10 values per layer) columns, oldest first."""

    title = "Heatmap: log10 mean |dL/dW|, layer x step"
    # a probe is one step, which the Backward tab shows: only a training fills this one
    empty = "no training yet: t trains the configured net (a probe's one step is in the Backward tab)"
    label = ""          # which run the steps are of, where a training runs several seeds
    seen = 0            # sampled steps the run gave, of which the data keeps a thinned part on a long run

    def has_data(self) -> bool:
        return bool(self.data)

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        cols: tuple[Column, ...] = self.data
        n_layers = max(len(col[1]) for col in cols)
        values = finite(v for _, col in cols for v in col)
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        ramp = [blend(c["primary"], c["warning"], t / 2) for t in range(3)] + [blend(c["warning"], c["error"], 0.5),
                                                                             c["error"]]
        key = Text(no_wrap=True, overflow="ellipsis")
        for i, g in enumerate(SHADES):      # each shade from the value beside it to the next one's (the last: to hi)
            rgb = ramp[i]
            key.append(f" {g}", style=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})")
            key.append(f" {fmt(lo + (hi - lo) * i / len(SHADES), 3)}" + (f"..{fmt(hi, 3)}" if i == len(SHADES) - 1
                                                                          else ""))
        missing = f"{MISSING} zero or non-finite"
        # on a line of its own where it would be cut beside the shades
        key.append(("  " if key.cell_len + 2 + len(missing) <= width else "\n ") + missing, style="dim")
        avail = max(1, height - 3 - (key.plain.count("\n") if values else 0))      # no key without a value
        rows = sample(n_layers, avail)
        rh = max(1, min(3, avail // max(1, len(rows))))     # a few layers get taller rows
        plot_w = max(4, width - LABEL_W - 1)
        shown = sample(len(cols), plot_w)
        cw = max(1, min(4, plot_w // max(1, len(shown))))
        notes = [n for n in (self.label, thinned_note(len(cols), self.seen)) if n]
        out = Text(self.title + (f" ({'; '.join(notes)})" if notes else ""), style="bold", no_wrap=True,
                   overflow="ellipsis")
        label_every = max(1, len(rows) // 6)
        for k, layer in enumerate(rows):
            for sub in range(rh):
                out.append("\n")
                name = f"layer {layer}" if k % label_every == 0 and sub == 0 else ""
                out.append(name.rjust(LABEL_W - 1) + "│", style="dim")
                for j in shown:
                    col = cols[j][1]
                    v = col[layer] if layer < len(col) else None
                    if v is None:
                        out.append(MISSING * cw, style="dim")
                        continue
                    i = level(v, lo, hi)
                    rgb = ramp[i]
                    out.append(SHADES[i] * cw, style=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})")
        first, last = cols[shown[0]][0], cols[shown[-1]][0]
        axis = f"step {first}"
        if last != first:
            right = f"step {last}"
            axis += " " * max(2, cw * len(shown) - len(axis) - len(right)) + right
        # the steps are sampled during training, each on its own batch; Backward's end state is another pass
        note = "  (sampled steps; the end state is in Backward)"
        if last != first and LABEL_W + len(axis) + len(note) <= width:
            axis += note
        out.append("\n" + " " * LABEL_W + axis, style="dim")
        out.append("\n")
        if not values:
            out.append(f" {MISSING} every value is zero or non-finite", style="dim")
            return out
        out.append_text(key)
        return out

    def table(self) -> tuple[Row, list[Row]]:
        cols: tuple[Column, ...] = self.data
        n_layers = max(len(col[1]) for col in cols)
        out = []
        if len(cols) == 1:      # one step (a probe): its values alone
            return ["layer", f"step {cols[0][0]}"], [[str(layer), fmt(cols[0][1][layer] if layer < len(cols[0][1])
                                                                     else None, 3)] for layer in range(n_layers)]
        for layer in range(n_layers):
            series = [col[1][layer] if layer < len(col[1]) else None for col in cols]
            vals = finite(series)
            out.append([str(layer), fmt(series[0], 3), fmt(series[-1], 3), fmt(min(vals) if vals else None, 3),
                        fmt(max(vals) if vals else None, 3)])
        # of a long run's steps only some are kept: their extremes, not the run's (a spike between them is gone)
        of = " of kept" if thinned_note(len(cols), self.seen) else ""
        return ["layer", f"step {cols[0][0]}", f"step {cols[-1][0]}", f"min{of}", f"max{of}"], out
