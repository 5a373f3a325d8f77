"""Plain-text figures for reports: horizontal bar charts on a linear or log10 scale, numbers formatted alike."""
from __future__ import annotations

import math
from typing import Any, Sequence

BAR = "#"


def fmt(v: Any) -> str:
    """A number in a few characters: '-' for missing, scientific notation outside [1e-3, 1e4)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v != v:
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0:
            return "0"
        if abs(v) >= 1e4 or abs(v) < 1e-3:
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def fmt_near_one(v: Any) -> str:
    """fmt(v), with the digits it takes to tell v from 1 where fmt rounds it to 1 (a chi_1 of 0.99998 is ordered,
    and printed as 1 it read as critical); within 1e-12 of 1, rounding's noise, it stays 1."""
    text = fmt(v)
    if isinstance(v, float) and v != 1.0 and text == "1":
        for digits in range(5, 13):
            if float(f"{v:.{digits}g}") != 1.0:
                return f"{v:.{digits}g}"
    return text


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def bar_chart(labels: Sequence[Any], values: Sequence[Any], width: int = 40, log: bool = False) -> str:
    """One line per value: label, bar, value. On a log scale only positive values get a bar (the shortest is
    one character, the scale spans at least a decade); on a linear one bars grow from zero, to the left for
    negative values."""
    labels = [" ".join(str(x).split()) for x in labels]      # a name with a newline (a user's module) stays one row
    lw = max([len(x) for x in labels] + [1])
    if log:
        pos = [math.log10(v) for v in values if _finite(v) and v > 0]
        lo, hi = (min(pos), max(pos)) if pos else (0.0, 0.0)
        lo = min(lo, hi - 1.0)      # at least a decade, so that a 2x spread does not look like a thousandfold one
    else:
        fin = [float(v) for v in values if _finite(v)]
        lo, hi = (min(fin + [0.0]), max(fin + [0.0])) if fin else (0.0, 0.0)
    lines = []
    for lab, v in zip(labels, values):
        cells = [" "] * width
        if log and _finite(v) and v > 0:
            n = 1 + round((width - 1) * (math.log10(v) - lo) / (hi - lo))
            cells[:n] = BAR * n
        elif not log and _finite(v) and hi > lo:
            zero = round(width * (0.0 - lo) / (hi - lo))
            at = round(width * (float(v) - lo) / (hi - lo))
            a, b = min(zero, at), max(zero, at)
            cells[a:b] = BAR * (b - a)
        lines.append(f"{lab.rjust(lw)} |{''.join(cells)}| {fmt(v)}")
    if log and pos:
        lines.append(f"{''.rjust(lw)}  log10 scale, {fmt(10 ** lo)} to {fmt(10 ** hi)}")
    elif not log and lo < 0 and hi > lo:
        # where zero lies is not drawn: without this, bars of negative values alone read as positive ones
        lines.append(f"{''.rjust(lw)}  linear scale, {fmt(lo)} to {fmt(hi)}: bars grow from 0, "
                     f"{'to the left for negative values' if hi > 0 else 'to the left (every value is negative)'}")
    return "\n".join(lines)
