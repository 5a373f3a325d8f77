"""A thin chart widget over plotext: keeps its data, builds the plot only when shown, caches it per size and theme."""
from __future__ import annotations

import math
import textwrap
import time
from typing import Any, Callable, Iterable

import plotext as plt
from rich.text import Text
from textual.color import Color, ColorParseError
from textual.widget import Widget

Row = list[str]
RGB = tuple[int, int, int]
_FALLBACK = {"primary": (1, 120, 212), "secondary": (0, 69, 120), "accent": (255, 166, 43),
             "warning": (255, 166, 43), "error": (186, 60, 91), "success": (78, 191, 113),
             "foreground": (224, 224, 224)}


def fmt(v: Any, digits: int = 4) -> str:
    """A number for a table cell: 4 significant digits, 'nan'/'inf' spelled out, None as a dash."""
    if v is None:
        return "-"
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}g}"


def titled(title: str, note: str, width: int | None = None) -> str:
    """'Name (note): about' from 'Name: about': the note after the chart's name, not at the end, where a narrow
    pane cuts it (which run a chart shows, which steps fit). Given a width it would not fit, 'Name (note)' alone."""
    if not note:
        return title
    head, sep, tail = title.partition(": ")
    full = f"{head} ({note}){sep}{tail}" if sep else f"{title} ({note})"
    return f"{head} ({note})" if width is not None and len(full) > width else full


def log_label(p: int, m: int = 1) -> str:
    """Tick label for m * 10**p: plain numbers near 1 (0.02, 5, 100), m e p further out."""
    if -3 <= p <= 3:
        return f"{m * 10.0 ** p:g}"
    return f"{m}e{p}"


def log_ticks(lo: float, hi: float, most: int = 6) -> tuple[list[float], list[str]]:
    """Ticks for a log10 axis from lo to hi: whole powers of ten, thinned to at most `most`; where fewer than two
    powers fall inside, the 1-2-5 steps (1-5, or the outer two, past `most`); where even those are too few, three
    evenly spaced values."""
    powers = list(range(math.ceil(lo), math.floor(hi) + 1))
    if len(powers) >= 2:
        need = math.ceil(len(powers) / max(1, most))
        step = next(n for n in (1, 2, 3, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10**9) if n >= need)
        ps = [p for p in powers if p % step == 0] or powers[:1]
        return [float(p) for p in ps], [log_label(p) for p in ps]
    def marks(steps: tuple[int, ...]) -> list[tuple[float, str]]:
        return [(p + math.log10(m), log_label(p, m)) for p in range(math.floor(lo) - 1, math.ceil(hi) + 1)
                for m in steps if lo <= p + math.log10(m) <= hi]

    # 1-2-5 where the rows allow, else 1-5, else the outermost two: more labels than rows put two on one row, and
    # plotext then shows one of them on the other's value (0.5 missing, 0.2 where the values near 0.5 lie)
    for steps in ((1, 2, 5), (1, 5)):
        ms = marks(steps)
        if 2 <= len(ms) <= max(2, most):
            return [v for v, _ in ms], [t for _, t in ms]
    if len(ms) >= 2:        # the 1-5 marks, too many: their outer two
        ms = [ms[0], ms[-1]]
        return [v for v, _ in ms], [t for _, t in ms]
    vs = [lo + (hi - lo) * k / 4 for k in (1, 2, 3)]
    return vs, [f"{10.0 ** v:.3g}" for v in vs]


def linear_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """About `most` ticks from lo to hi on a 1-2-5 step, 0 among them where it lies inside, and at least two where
    the range has two (lo and hi themselves where no step fits): on a short chart plotext's own spread four labels
    over five rows unevenly (1, 0.67, 0, -0.33, -1)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [v for v in (lo, hi) if math.isfinite(v)][:1]
    if hi <= lo:
        return [lo]
    try:
        raw = (hi - lo) / max(1, most - 1)
        base = 10.0 ** math.floor(math.log10(raw))
    except (OverflowError, ValueError):     # a range past float's, or below its smallest step
        return [lo, hi]
    if not (math.isfinite(raw) and base > 0):
        return [lo, hi]
    steps = [m * base for m in (0.1, 0.2, 0.5, 1, 2, 5, 10)]

    def on(step: float) -> list[float]:
        first = math.ceil(lo / step - 1e-9)
        return [0.0 if abs(k * step) < step * 1e-9 else k * step
                for k in range(first, math.floor(hi / step + 1e-9) + 1)]

    at = next((i for i, st in enumerate(steps) if st >= raw), len(steps) - 1)
    for step in reversed(steps[:at + 1]):   # the widest step within about `most`; finer where it gives one tick
        ticks = on(step)
        if len(ticks) >= 2:
            return ticks
    return [lo, hi]


def finite(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def span(values: Iterable[float | None], *extra: float, pad: float = 0.3) -> tuple[float, float]:
    """A y range that holds every finite value and the extra marks, with a little room, never empty."""
    vs = finite(values) + [e for e in extra if e is not None and math.isfinite(e)]
    if not vs:
        return -1.0, 1.0
    lo, hi = min(vs), max(vs)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    return lo - pad, hi + pad


def packed(parts: list[str], width: int, gap: str = "  ") -> str:
    """The parts on as few lines as fit in `width`, never splitting a part (a part wider than that has a line)."""
    lines: list[str] = []
    for p in parts:
        if lines and len(lines[-1]) + len(gap) + len(p) <= width:
            lines[-1] += gap + p
        else:
            lines.append(p)
    return "\n".join(lines)


def fit_height(picture: Text, height: int) -> Text:
    """The picture cut at `height` lines: a chart whose wrapped header leaves too little room in a small pane is cut
    at the pane's edge, not drawn past it."""
    lines = picture.split("\n", allow_blank=True)
    return Text("\n").join(lines[:height]) if len(lines) > height else picture


def theme_rgb(widget: Widget) -> dict[str, RGB]:
    """The current theme's main colours as RGB tuples, for plotext."""
    out = dict(_FALLBACK)
    try:
        variables = widget.app.theme_variables
    except Exception:           # no app yet (a widget drawn on its own)
        return out
    for name in out:
        try:
            out[name] = Color.parse(variables[name]).rgb
        except (KeyError, ColorParseError):     # a theme without this colour, or one Color cannot read: the fallback
            pass
    return out


def build_plot(width: int, height: int, draw: Callable[[Any], None]) -> Text:
    """Run draw(plt) on a cleared plotext figure of the given size and return the result as Rich Text."""
    plt.clf()
    plt.plotsize(max(width, 10), max(height, 5))
    plt.theme("clear")
    draw(plt)
    return Text.from_ansi(plt.build().rstrip("\n"), no_wrap=True)


def legend(*items: tuple[str, str, RGB | None], width: int = 0, rows: int = 0) -> Text:
    """Glyph, then name, per series (glyphs differ so the line reads without colour); with a width, on as many
    lines as it takes (at most `rows`, if given: then the last line runs on and is cut), never splitting an item."""
    out = Text(no_wrap=True, overflow="ellipsis")
    used, lines = 0, 1
    for glyph, name, rgb in items:
        size = len(glyph) + len(name) + 3
        if width and used and used + size > width and (not rows or lines < rows):
            out.append("\n")
            used, lines = 0, lines + 1
        style = f"rgb({rgb[0]},{rgb[1]},{rgb[2]})" if rgb else ""
        out.append(f" {glyph} ", style=style)
        out.append(name + " ")
        used += size
    return out


# below this a chart has no room for a scale: a title, a legend and two or three rows whose bars all look alike
MIN_WIDTH, MIN_HEIGHT = 10, 9


class PlotWidget(Widget):
    """Base of every chart: set_data() stores the data and asks for a repaint; render() builds the picture only
    when the widget is on screen (a hidden tab is never rendered) and only when data, size or theme changed."""

    DEFAULT_CSS = """
    PlotWidget { width: 1fr; height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    title = "chart"
    empty = "no data yet: p probes, t trains"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.data: Any = None
        self.version = 0
        self.builds = 0             # how many times the picture was built (tests: only the visible chart)
        self.last_build_ms = 0.0
        self._key: tuple | None = None
        self._picture: Text | None = None

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _: self.refresh(), init=False)

    def set_data(self, data: Any) -> None:
        self.data = data
        self.version += 1
        self.refresh()

    def has_data(self) -> bool:
        return self.data is not None

    def key_columns(self) -> int:
        """How many leading columns of table() tell its rows apart (kept in sight when the columns are paged)."""
        return 1

    def render(self) -> Text:
        w, h = self.size
        key = (self.version, w, h, self.app.theme)
        if key != self._key or self._picture is None:
            t0 = time.perf_counter()
            if self.has_data() and w >= MIN_WIDTH and h >= MIN_HEIGHT:
                self._picture = fit_height(self.draw(w, h), h)
            else:
                # the empty state's hint wraps: the chart's own no-wrap style would cut its key names off
                words = self.empty if not self.has_data() else \
                    f"too small to draw here: a chart needs {MIN_HEIGHT} rows (n shows or hides the table of numbers)"
                self._picture = Text("\n".join(textwrap.wrap(words, max(10, w))), style="dim")
            self.last_build_ms = (time.perf_counter() - t0) * 1000
            self.builds += 1
            self._key = key
        return self._picture

    def draw(self, width: int, height: int) -> Text:
        """The picture for the current data; subclasses draw their chart."""
        return Text(str(self.data))

    def table(self) -> tuple[Row, list[Row]]:
        """The numbers behind the chart: column names and one row per layer (or epoch)."""
        return ["value"], [[str(self.data)]]
