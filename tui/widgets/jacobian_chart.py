"""Jacobian: the histogram of log10 singular values of the input-output Jacobian at init.

With max, min and the condition number (every value near 1 is dynamical isometry).
"""
from __future__ import annotations

from typing import Any

from rich.text import Text

from .plot import PlotWidget, Row, fmt, packed, theme_rgb

LABEL_W = 21


def merged(counts: list[int], edges: list[float], rows: int) -> tuple[list[int], list[float]]:
    """Adjacent bins added up until at most `rows` remain (the edges follow)."""
    k = 1
    while -(-len(counts) // k) > max(1, rows):
        k += 1
    if k == 1:
        return counts, edges
    out = [sum(counts[i:i + k]) for i in range(0, len(counts), k)]
    return out, [edges[i] for i in range(0, len(counts), k)] + [edges[-1]]


def extreme_parts(r: dict[str, Any]) -> list[str]:
    """max, min and condition number; a min below the SVD's resolution is given as that bound, not as its noise."""
    from initlab.engine.jacobian import shortfall

    # over several inputs the extremes are of the mean spectrum (k values), the histogram of every input's values
    k = len(r["singular_values"]) if r.get("inputs", 1) == 1 else f"the {len(r['singular_values'])} mean values"
    zeros, below = shortfall(r)
    if r["max"] == 0:
        return ["max 0", f"min 0 (all {k} exactly zero)", "condition number undefined (zero Jacobian)"]
    if zeros:
        more = f", {below - zeros} more below the resolution" if below > zeros else ""
        return [f"max {fmt(r['max'])}", f"min 0 ({zeros} of {k} exactly zero{more})", "condition number inf (singular)"]
    if below:
        # the count its own part: the line wraps between parts, and as one it ran past a narrow pane's edge
        return [f"max {fmt(r['max'])}", f"min < {fmt(r['resolution'])}", f"({below} of {k} below the resolution)",
                f"condition number > {fmt(r['condition_at_least'])}"]
    return [f"max {fmt(r['max'])}", f"min {fmt(r['min'])}", f"condition number {fmt(r['condition_number'])}"]


def extremes(r: dict[str, Any]) -> str:
    return "   ".join(extreme_parts(r)).replace("   (", " (")       # a count stays beside its figure


def bin_labels(log_edges: list[float], width: int) -> list[str]:
    """'a .. b' per bin of log10 edges, in as many digits as it takes for neighbouring edges to differ (a spread of
    1e-6 around 1 read '1 .. 1' in every bin); where that is wider than `width`, the lower edge alone."""
    values = [10 ** e for e in log_edges]
    digits = next((d for d in range(3, 13) if len({fmt(v, d) for v in values}) == len(set(values))), 12)
    edge = [fmt(v, digits) for v in values]
    both = [f"{a} .. {b}" for a, b in zip(edge, edge[1:])]
    if all(len(s) <= width for s in both):
        return both
    # the lower edge alone, in as many of those digits as fit (bins it no longer tells apart are then merged)
    fit = next((d for d in range(digits, 0, -1) if all(len(f"from {fmt(v, d)}") <= width for v in values)), 1)
    return [f"from {fmt(v, fit)}" for v in values[:-1]]


def same_label_merged(labels: list[str], counts: list[int]) -> tuple[list[str], list[int]]:
    out_l: list[str] = []
    out_c: list[int] = []
    for label, n in zip(labels, counts):
        if out_l and out_l[-1] == label:
            out_c[-1] += n
        else:
            out_l.append(label)
            out_c.append(n)
    return out_l, out_c


def summary_line(r: dict[str, Any], width: int = 1000) -> str:
    """The extremes, the spread and what they were measured on, wrapped between figures at `width`."""
    inputs = r.get("inputs", 1)
    return packed(extreme_parts(r) + [f"log10 spread {fmt(r.get('log10_spread'), 3)}",
                                      f"mean s^2 {fmt(r.get('mean_squared'))}",
                                      # the extremes are the mean spectrum's, the bins every input's values
                                      f"({'mean spectrum of ' if inputs != 1 else ''}{inputs} "
                                      f"input{'s' if inputs != 1 else ''}, {r.get('dtype', '')})"],
                  width, gap="   ")


def footnote(r: dict[str, Any], width: int) -> str:
    """What the bins count: every value of every input, the exact zeros and the unresolved ones apart."""
    h, inputs = r["histogram"], r.get("inputs", 1)
    parts = ["singular values per bin (log10)"]
    if inputs > 1:
        parts.append(f"all {inputs * len(r['singular_values'])} values of {inputs} inputs")
    if h.get("zeros"):
        parts.append(f"{h['zeros']} exactly zero, not in the bars")
    if h.get("unresolved"):
        parts.append(f"{h['unresolved']} below their input's resolution, not in the bars")
    if len(parts) == 1:
        parts.append("all 1 is dynamical isometry")
    return packed([p + ";" for p in parts[:-1]] + parts[-1:], width, gap=" ")


class JacobianChart(PlotWidget):
    """Data: engine.jacobian.jacobian_spectrum's dict."""

    title = "Jacobian: singular values of d output/d input, log10"
    empty = "no spectrum yet: r takes the Jacobian of the configured net at init (also in ctrl+p)"

    def has_data(self) -> bool:
        return isinstance(self.data, dict) and "singular_values" in self.data

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        r = self.data
        cfg = r.get("config", {})
        head = packed([self.title, f"({cfg.get('depth', '?')} x {cfg.get('width', '?')} {cfg.get('activation', '')}, "
                                   f"init {cfg.get('init', '')})"], width, gap=" ")
        summary = summary_line(r, width)
        note = footnote(r, width - LABEL_W)
        out = Text(head, style="bold", no_wrap=True, overflow="ellipsis")
        out.append("\n" + summary)
        h = r["histogram"]
        used = head.count("\n") + summary.count("\n") + note.count("\n") + 3
        counts, edges = merged(h["counts"], h["edges"], height - used)
        if not sum(counts):     # empty bins over a made-up range say nothing: the footnote counts the zeros
            counts = []
            out.append("\nno singular value above zero or the resolution to bin", style="dim")
        top = max(counts, default=0) or 1
        bar_w = max(1, width - LABEL_W - 8)
        rgb = c["primary"]
        labels = bin_labels(edges, LABEL_W - 1)
        if counts:      # bins no printed digit tells apart (rounding noise around one value) are one bin
            labels, counts = same_label_merged(labels, counts)
        for k, n in enumerate(counts):
            label = labels[k]
            out.append("\n" + label.rjust(LABEL_W - 1) + "│", style="dim")
            out.append("█" * round(bar_w * n / top), style=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})")
            out.append(f" {n}")
        for line in note.splitlines():
            out.append("\n" + " " * LABEL_W + line, style="dim")
        return out

    def table(self) -> tuple[Row, list[Row]]:
        r = self.data
        h = r["histogram"]
        # a spectrum with nothing to bin has no bins to list (their edges are made up around 1)
        rows = [[label, str(n)] for label, n in zip(bin_labels(h["edges"], 1000), h["counts"])] \
            if any(h["counts"]) else []
        rows += [["max", fmt(r["max"])], ["min", fmt(r["min"])], ["condition number", fmt(r["condition_number"])],
                 ["resolution", fmt(r.get("resolution"))], ["numerical rank", str(r.get("numerical_rank", ""))],
                 ["zeros", str(h.get("zeros", 0))], ["below the resolution", str(h.get("unresolved", 0))]]
        return ["singular value", "count"], rows
