"""Distributions: per-layer quantile boxes of weights, activations or gradients: the terminal's violin plot.

Each box shows min, 5%, 25%, median, 75%, 95% and max, drawn cell by cell.
"""
from __future__ import annotations

import math

from rich.text import Text

from .layer_charts import LayerChart, layer_ticks
from .plot import Row, fmt, legend, theme_rgb

KINDS = ("weight", "activation", "gradient")
QUANTILE_NAMES = ("min", "5%", "25%", "median", "75%", "95%", "max")
LABEL_W = 10
OVERFLOW = 1e38         # quantiles this large come of a layer at float32's edge: no box is drawn of them
LINEAR_SPREAD = 100.0   # boxes whose widths differ by more than this get a symmetric log axis


def usable(q: list[float]) -> bool:
    return all(math.isfinite(v) and abs(v) < OVERFLOW for v in q)


def linthresh(qs: list[list[float]]) -> float | None:
    """None for a linear axis; else the narrowest box width, the scale below which the symmetric log axis is
    linear, so that boxes of very different widths (a vanishing or exploding net) all stay visible."""
    widths = [q[4] - q[2] for q in qs if usable(q) and q[4] - q[2] > 0]
    if not widths or max(widths) / min(widths) < LINEAR_SPREAD:
        return None
    return min(widths)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def symlog(v: float, t: float | None) -> float:
    return v if t is None else math.copysign(math.log10(1 + abs(v) / t), v)


def unsymlog(y: float, t: float | None) -> float:
    return y if t is None else math.copysign(t * (10 ** abs(y) - 1), y)


def _rgb(c: tuple[int, int, int]) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def sample(n: int, slots: int) -> list[int]:
    """Which of n items to show in `slots` places: all when they fit, else evenly spaced, first and last kept."""
    if n <= slots:
        return list(range(n))
    if slots <= 1:
        return [0] if n else []
    return sorted({round(k * (n - 1) / (slots - 1)) for k in range(slots)})


def y_range(qs: list[list[float]]) -> tuple[float, float]:
    """From the lowest 5% to the highest 95% quantile over the layers; min and max past that are clipped."""
    lo = min((q[1] for q in qs if math.isfinite(q[1])), default=-1.0)
    hi = max((q[5] for q in qs if math.isfinite(q[5])), default=1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad


def cell(q: list[float], top: float, bottom: float) -> str | None:
    """The glyph for a layer's column in the row covering (bottom, top], or None for blank."""
    def meets(a: float, b: float) -> bool:
        return a <= top and b > bottom

    if bottom < q[3] <= top:
        return "━"
    if meets(q[2], q[4]):
        return "█"
    if meets(q[1], q[5]):
        return "│"
    if bottom < q[0] <= top or bottom < q[6] <= top:
        return "·"
    return None


class DistributionChart(LayerChart):
    title = "Distributions"
    kind = "activation"

    @property
    def empty(self) -> str:
        if self.data is not None and self.data.layers and not self.data.distributions \
                and self.data.label.startswith("probe"):
            return ("no quantile boxes for a probe of your own model: its tensors differ in shape from module to "
                    "module; Forward and Backward show its statistics (n: the numbers)")
        if self.data is not None and self.data.layers and not self.data.distributions:
            # a training's sampled steps carry no boxes: the boxes of an earlier run (another net, maybe) are not
            # shown as if they were this one's
            return (f"no quantile boxes for this training ({self.data.label}): they come with its end state when "
                    f"it finishes (a training stopped early has none); p probes the configured net")
        return "no distributions yet: a probe records them (p)"

    def has_data(self) -> bool:
        return super().has_data() and bool(self.data.distributions)

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.version += 1
        self.refresh()

    def quantiles(self) -> list[list[float]]:
        return [list(d.get(self.kind) or [math.nan] * 7) for d in self.data.distributions]

    def overflowed(self) -> list[bool]:
        """Per layer: did this kind of tensor hold inf or NaN? (The quantiles alone cannot say: they are of a sample,
        which may have missed them.)"""
        out = []
        for d, q in zip(self.data.layers, self.quantiles()):
            if self.kind == "activation":
                bad = bool(d.get("nonfinite_frac")) or not _finite(d.get("a_std"))
            elif self.kind == "gradient":
                bad = not _finite(d.get("grad_w_std"))
            else:
                bad = not _finite(d.get("w_std", 0.0))
            out.append(bad or not usable(q))
        return out

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        bad = self.overflowed()
        raw = [q if not b else [math.nan] * 7 for q, b in zip(self.quantiles(), bad)]
        t = linthresh(raw)
        qs = [[symlog(v, t) for v in q] if usable(q) else [math.nan] * 7 for q in raw]
        lo, hi = y_range(qs)
        head = self.headed(f"{self.title}: {self.kind} quantiles per layer")
        axis = f"symmetric log axis, linear within {fmt(t, 2)}" if t is not None else ""
        # the key's hint ends the title where it fits, else leads the next line (cut off the end, it was lost)
        hint = "k: weights, activations, gradients"
        if len(head) + 2 + len(hint) <= width:
            head += "; " + hint
        else:
            hint = hint if len(hint) + 2 + len(axis) <= width else "k switches"
            axis = hint + ("; " + axis if axis else "")
        # the axis note goes on a line of its own where the title would be cut
        two = bool(axis) and len(head) + 2 + len(axis) > width
        key = legend(("█", "25-75%", c["primary"]), ("━", "median", c["accent"]), ("│", "5-95%", None),
                     ("·", "min/max (of ≤1,024 values)", None), ("▲▼", "beyond the axis", c["warning"]), ("×", "non-finite", None),
                     width=width)
        rows = max(2, height - 3 - two - key.plain.count("\n"))
        plot_w = max(4, width - LABEL_W - 1)
        shown = sample(len(qs), plot_w)
        cw = max(1, plot_w // max(1, len(shown)))
        box_w = cw - 1 if cw >= 3 else cw
        out = Text(head + ("\n" + axis if two else "; " + axis if axis else ""), style="bold", no_wrap=True,
                   overflow="ellipsis")
        styles = {"━": f"bold {_rgb(c['accent'])}", "█": _rgb(c["primary"]), "│": _rgb(c["foreground"]),
                  "·": _rgb(c["foreground"]), "▲": _rgb(c["warning"]), "▼": _rgb(c["warning"]), "×": "dim"}
        step = (hi - lo) / rows
        label_every = max(1, rows // 5)
        # labels keep their spacing from the row that holds 0, so that 0 is always labelled where the axis has it
        zero_row = int((hi - 0.0) / step) if lo < 0.0 <= hi else 0
        for r in range(rows):
            top, bottom = hi - r * step, hi - (r + 1) * step
            out.append("\n")
            mid = 0.0 if bottom < 0.0 <= top else unsymlog((top + bottom) / 2, t)
            label = fmt(mid, 3) if (r - zero_row) % label_every == 0 else ""
            out.append(label.rjust(LABEL_W - 1) + ("┤" if label else "│"), style="dim")
            for i in shown:
                q = qs[i]
                g = cell(q, top, bottom) if all(math.isfinite(v) for v in q) else "×"
                # an edge row says a value lies past the axis, unless the box or the median is drawn there
                if g in (None, "│", "·") and r == 0 and q[6] > hi:
                    g = "▲"
                if g in (None, "│", "·") and r == rows - 1 and q[0] < lo:
                    g = "▼"
                glyph = g or " "
                out.append(glyph * box_w, style=styles.get(glyph, ""))
                out.append(" " * (cw - box_w))
        # "layer" under the value labels: after the axis it ran past the pane's edge when the boxes filled it
        out.append("\n" + "layer".rjust(LABEL_W - 1) + " ", style="dim")
        axis = [" "] * (cw * len(shown))
        # the last layer's label first, ending at the last box: a label that would touch one placed goes
        for t in reversed(layer_ticks(len(shown), max(2, plot_w // 6))):
            s = str(shown[t])
            at = max(0, min(t * cw, len(axis) - len(s)))
            if "".join(axis[max(0, at - 1):at + len(s) + 1]).strip() == "":
                axis[at:at + len(s)] = list(s)
        out.append("".join(axis), style="dim")
        out.append("\n")
        out.append_text(key)
        return out

    def table(self) -> tuple[Row, list[Row]]:
        cols, rows = ["layer", *QUANTILE_NAMES], [[str(i), *(fmt(v) for v in q)] for i, q in enumerate(self.quantiles())]
        return self.named(cols, rows) if len(rows) == len(self.data.layers) else (cols, rows)

    def key_columns(self) -> int:
        return 2 if self.user_rows() and len(self.quantiles()) == len(self.data.layers) else 1
