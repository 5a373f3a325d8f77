"""Activation: f and f' of the configured activation, its largest slope, torch's gain beside the empirical one."""
from __future__ import annotations

from typing import Any

from rich.text import Text

from ..messages import CurveReady
from .plot import PlotWidget, Row, build_plot, fmt, legend, theme_rgb


class ActivationChart(PlotWidget):
    """Data: a CurveReady message (computed on a worker, since the curve needs torch)."""

    title = "Activation"
    empty = "computing the activation's curve..."

    def has_data(self) -> bool:
        return isinstance(self.data, CurveReady)

    def summary(self) -> str:
        d: CurveReady = self.data
        tg = fmt(d.torch_gain) if d.torch_gain is not None else "none"
        return f"max f' {fmt(d.max_derivative)}   torch gain {tg}   empirical gain std(x)/std(f(x)) {fmt(d.empirical_gain)}"

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: CurveReady = self.data

        def draw(plt: Any) -> None:
            plt.plot(d.x, d.f, marker="braille", color=c["primary"])
            plt.plot(d.x, d.df, marker="·", color=c["accent"])
            plt.plot([d.x[0], d.x[-1]], [0, 0], marker="┈", color=c["foreground"])
            plt.xlabel("x")

        out = Text(f"{self.title}: {d.name}" + (f" (slope {d.slope:g})" if d.name == "leaky_relu" else ""),
                   style="bold", no_wrap=True, overflow="ellipsis")
        out.append("\n")
        out.append(self.summary(), style="", )
        out.append("\n")
        out.append_text(build_plot(width, height - 3, draw))
        out.append("\n")
        out.append_text(legend(("⠒", "f(x)", c["primary"]), ("·", "f'(x)", c["accent"])))
        return out

    def table(self) -> tuple[Row, list[Row]]:
        d: CurveReady = self.data
        step = max(1, (len(d.x) - 1) // 20)
        rows = [[fmt(d.x[i], 3), fmt(d.f[i]), fmt(d.df[i])] for i in range(0, len(d.x), step)]
        rows.append(["max f'", fmt(d.max_derivative), ""])
        rows.append(["torch gain", fmt(d.torch_gain), ""])
        rows.append(["empirical gain", fmt(d.empirical_gain), ""])
        return ["x", "f(x)", "f'(x)"], rows
