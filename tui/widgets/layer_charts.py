"""Per-layer log10 charts: Forward (activation std), Backward (gradients), Glorot (variance ratios)."""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from ..bridge import log10_or_none
from .plot import RGB, PlotWidget, Row, build_plot, fmt, legend, log_ticks, span, theme_rgb, titled

Layers = tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class LayerData:
    """What the per-layer charts draw: the latest statistics, the input's std and a pinned baseline's layers."""

    layers: Layers
    input_std: float | None = None
    baseline: Layers = ()
    label: str = ""                         # "probe", "train step 120", ...
    distributions: tuple[dict[str, list[float]], ...] | None = None
    baseline_label: str = ""                # which run was pinned: "probe tanh xavier_uniform"

    def baseline_name(self, stat: str) -> str:
        return f"baseline {stat}" + (f" ({self.baseline_label})" if self.baseline_label else "")

    def with_baseline(self, cols: list[str], rows: list[list[str]], key: str, head: str) -> tuple[list, list]:
        """The table with the baseline's column beside the run's own, where one is pinned."""
        if not self.baseline:
            return cols, rows
        return cols[:2] + [head] + cols[2:], [r[:2] + [fmt(b.get(key))] + r[2:]
                                                 for r, b in zip(rows, self.baseline)]


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]              # log10 units; None where not finite or not positive
    glyph: str
    color: RGB
    bars: bool = False


def layer_ticks(n: int, most: int = 8) -> list[int]:
    if n <= most:
        return list(range(n))
    step = max(1, round((n - 1) / (most - 1)))
    ticks = list(range(0, n, step))
    if ticks[-1] != n - 1:
        # the last layer always gets a tick; one too close before it would collide with its label
        if n - 1 - ticks[-1] < step / 2 and len(ticks) > 1:
            ticks.pop()
        ticks.append(n - 1)
    return ticks


def nonfinite_note(layers: Layers, key: str, name: str, backward: bool = False) -> str:
    """A title that leads with the non-finite layers, or "" when every value is finite. A value not measured (None:
    a user's module without weights, a ratio of two zero spreads) is not a non-finite one. A backward quantity
    goes non-finite from its last such layer down, as the backward pass runs: named from there, as the verdict."""
    bad = [i for i, d in enumerate(layers) if d.get(key) is not None and not math.isfinite(d[key])]
    if not bad:
        return ""
    start = f"layer {bad[-1]} down" if backward else f"layer {bad[0]}"
    return f"{name}: {key} non-finite from {start} ({len(bad)} of {len(layers)} layers)"


def draw_log_bars(width: int, height: int, title: str, series: list[Series],
                  refs: list[tuple[str, float | None, str, RGB]], note: str = "", xlabel: str = "layer") -> Text:
    """Title, a plotext chart of log10 values per layer (bars and lines) with horizontal reference lines, legend."""
    n = max((len(s.values) for s in series), default=0)
    lo, hi = span([v for s in series for v in s.values], *[r[1] for r in refs if r[1] is not None])
    key = legend(*[(s.glyph, s.name, s.color) for s in series],
                 *[(g, name, rgb) for name, y, g, rgb in refs if y is not None], width=width,
                 rows=max(1, height - 8))       # the plot keeps 7 rows: 4 of them data
    # layers the bars skip (a value of zero, non-finite or not measured has no log): said, where the others have one
    bars = next((s for s in series if s.bars), None)
    gaps = [i for i, v in enumerate(bars.values) if v is None] if bars is not None else []
    gap_note = ""
    if gaps and height >= 12 and not note:     # a non-finite title says its own
        listed = ", ".join(map(str, gaps[:6])) + (f" and {len(gaps) - 6} more" if len(gaps) > 6 else "")
        # every bar gone with a baseline or a second series still drawn: the chart is not empty, so say it too
        where = f"any {xlabel.split(',')[0]}" if len(gaps) == len(bars.values) else f"{xlabel.split(',')[0]} {listed}"
        gap_note = f"no {bars.name} bar at {where}: zero, not finite or not measured"
    plot_h = height - 2 - key.plain.count("\n") - (1 if gap_note else 0)
    # a row's worth more below, so that the lowest value stands a row above the floor: on an axis of many decades
    # a bar shorter than a row (or a baseline mark on the floor) would not show at all. A row of the data's rows,
    # the plot's less its frame, tick labels and axis name (of the whole height, a short chart's floor sank by
    # the whole span and its bars all looked alike)
    rows = plot_h - 3 - (height >= 12)
    lo -= (hi - lo) / max(1, rows - 1)

    def points(s: Series) -> tuple[list[int], list[float]]:
        pts = [(i, v) for i, v in enumerate(s.values) if v is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    def draw(plt: Any) -> None:
        # the reference lines, then the bars, then the marked series (a baseline, a second statistic): a bar
        # that reaches past a line shows its whole length (on a short chart a ratio of 3.5 and one of 0.05 looked
        # alike, cut at the line), and a mark on a line's row stays visible
        for _name, y, glyph, rgb in refs:
            if y is not None:
                plt.plot([-0.5, n - 0.5], [y, y], marker=glyph, color=rgb)
        for s in series:
            xs, ys = points(s)
            if s.bars and xs:
                # from the axis floor, so that a bar's length grows with its value (a log axis has no zero)
                plt.bar(xs, ys, marker=s.glyph, color=s.color, width=0.8, minimum=lo)
        for s in series:
            xs, ys = points(s)
            if not s.bars and xs:
                # marks alone: a line joining two layers' values means nothing, and it covered rows of the bars
                plt.scatter(xs, ys, marker=s.glyph, color=s.color)
        # a label every other data row at most: the widget's height less the key's lines overstated them
        ticks, labels = log_ticks(lo, hi, most=max(2, (rows + 1) // 2))
        plt.yticks(ticks, labels)
        plt.ylim(lo, hi)
        plt.xlim(-0.5, n - 0.5)
        plt.xticks(layer_ticks(n, max(2, width // 8)))
        if height >= 12:        # below that the row is worth more to the bars than to the axis's name (rows above)
            plt.xlabel(xlabel)

    out = Text(note or title, style="bold", no_wrap=True, overflow="ellipsis")
    out.append("\n")
    if not any(v is not None for s in series for v in s.values):
        # an empty frame with no ticks would say nothing: say why there is nothing to draw
        # wrapped here: the picture is not wrapped, and the reason would be cut at the pane's edge
        why = (f"nothing to draw: {', '.join(s.name for s in series)} are not measured, non-finite or zero in "
               f"every layer (n shows the numbers)")
        out.append(textwrap.fill(why, max(20, width)), style="dim")
        return out
    out.append_text(build_plot(width, plot_h, draw))
    out.append("\n")
    out.append_text(key)
    if gap_note:
        out.append("\n")
        out.append(Text(gap_note, style="dim", no_wrap=True, overflow="ellipsis"))
    return out


def logs(layers: Layers, key: str) -> list[float | None]:
    return [log10_or_none(d.get(key)) for d in layers]


class LayerChart(PlotWidget):
    """A chart drawn from LayerData."""

    def has_data(self) -> bool:
        return isinstance(self.data, LayerData) and len(self.data.layers) > 0

    def label(self) -> str:
        return f" ({self.data.label})" if self.data.label else ""

    def headed(self, title: str) -> str:
        """The title naming whose statistics these are (a probe, a training's step or end state)."""
        return titled(title, self.data.label)

    def user_rows(self) -> bool:
        """Rows of a user's model (a module each, of any kind), not of the built-in MLP's layers."""
        return any("kind" in r for r in self.data.layers)

    def xlabel(self) -> str:
        # a user's rows are modules of every kind, numbered in execution order: the table names them
        return "module, in execution order (n names them)" if self.user_rows() else "layer"

    def key_columns(self) -> int:
        return 2 if self.user_rows() else 1

    def named(self, cols: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
        """For a user's model, the module's name and kind beside its row number (kept in sight when paged)."""
        if not self.user_rows():
            return cols, rows
        names = [f"{r.get('name', '')} ({r['kind']})" if r.get("kind") else str(r.get("name", ""))
                 for r in self.data.layers]
        return cols[:1] + ["module"] + cols[1:], [row[:1] + [n] + row[1:] for row, n in zip(rows, names)]


class ForwardChart(LayerChart):
    title = "Forward: activation std per layer, log scale"

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: LayerData = self.data
        series = [Series("a_std", logs(d.layers, "a_std"), "▆", c["primary"], bars=True)]
        if d.baseline:
            series.append(Series(d.baseline_name("a_std"), logs(d.baseline, "a_std"), "×", c["secondary"]))
        in_std = log10_or_none(d.input_std)
        # the level-1 line last, so that it is the one seen when the input's std falls on the same row
        refs = [(f"input std {fmt(d.input_std, 3)}", in_std, "┈", c["success"])] if in_std is not None else []
        refs.append(("level 1", 0.0, "─", c["accent"]))
        return draw_log_bars(width, height, self.headed(self.title), series, refs,
                             nonfinite_note(d.layers, "a_std", "Forward" + self.label()), self.xlabel())

    def table(self) -> tuple[Row, list[Row]]:
        # a_min and a_max of the whole tensor: the Distributions tab's boxes are of a sample of it
        cols = ["layer", "a_std", "log10", "a_mean", "z_std", "saturated", "dead", "a_min", "a_max"]
        # a layer whose outputs are all NaN or inf has no saturated or dead units to count: blank, not 0
        gone = lambda r: (r.get("nonfinite_frac") or 0) >= 1
        rows = [[str(i), fmt(r.get("a_std")), fmt(log10_or_none(r.get("a_std")), 3), fmt(r.get("a_mean")),
                 fmt(r.get("z_std")), fmt(None if gone(r) else r.get("saturated_frac"), 3),
                 fmt(None if gone(r) else r.get("dead_frac"), 3), fmt(r.get("a_min")), fmt(r.get("a_max"))]
                for i, r in enumerate(self.data.layers)]
        return self.named(*self.data.with_baseline(cols, rows, "a_std", "baseline"))


class BackwardChart(LayerChart):
    title = "Backward: mean |dL/dW| and std dL/dz per layer, log scale"

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: LayerData = self.data
        series = [Series("mean |dL/dW|", logs(d.layers, "grad_w_absmean"), "▆", c["primary"], bars=True),
                  Series("std dL/dz", logs(d.layers, "grad_z_std"), "•", c["accent"])]
        if d.baseline:
            series.append(Series(d.baseline_name("mean |dL/dW|"), logs(d.baseline, "grad_w_absmean"), "×",
                                 c["secondary"]))
        return draw_log_bars(width, height, self.headed(self.title), series, [],
                             nonfinite_note(d.layers, "grad_w_absmean", "Backward" + self.label(), backward=True),
                             self.xlabel())

    def table(self) -> tuple[Row, list[Row]]:
        cols = ["layer", "mean|dL/dW|", "std dL/dz", "std dL/dW", "grad/weight"]
        rows = [[str(i), fmt(r.get("grad_w_absmean")), fmt(r.get("grad_z_std")), fmt(r.get("grad_w_std")),
                 fmt(r.get("grad_to_weight"))] for i, r in enumerate(self.data.layers)]
        if any("update_to_weight_log10" in r for r in self.data.layers):
            cols.append("log10 update/w")
            for row, r in zip(rows, self.data.layers):
                row.append(fmt(r.get("update_to_weight_log10"), 3))
        return self.named(*self.data.with_baseline(cols, rows, "grad_w_absmean", "baseline"))


class GlorotChart(LayerChart):
    title = "Glorot: variance ratios per layer, log scale"

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: LayerData = self.data
        series = [Series("forward Var(z)/Var(x)", logs(d.layers, "fwd_var_ratio"), "▆", c["primary"], bars=True),
                  Series("backward Var(dL/dx)/Var(dL/dz)", logs(d.layers, "bwd_var_ratio"), "•", c["accent"])]
        # a ReLU's good init reads about 2.9 forward (Kaiming): the key says why, or it looks broken
        refs = [("ratio 1: the variance kept, for zero-mean inputs (after a ReLU the forward reads about "
                 "1.47 n Var(W))", 0.0, "─", c["success"])]
        return draw_log_bars(width, height, self.headed(self.title), series, refs,
                             nonfinite_note(d.layers, "fwd_var_ratio", "Glorot" + self.label()), self.xlabel())

    def table(self) -> tuple[Row, list[Row]]:
        cols = ["layer", "fan_in", "fan_out", "distinct units", "fwd_var_ratio", "bwd_var_ratio"]
        # a user's module without a weight has no fans: None, shown as every missing value is; distinct units (rows
        # of W that differ) beside fan_out, so that a net whose units never separated shows it; a training's
        # sampled steps do not count them (a sort per layer): "-" there
        rows = [[str(i), fmt(r.get("fan_in")), fmt(r.get("fan_out")), fmt(r.get("distinct_units")),
                 fmt(r.get("fwd_var_ratio")), fmt(r.get("bwd_var_ratio"))] for i, r in enumerate(self.data.layers)]
        return self.named(cols, rows)
