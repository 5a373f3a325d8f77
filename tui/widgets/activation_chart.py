"""Activation: f and f' of the configured activation, its largest slope, torch's gain beside the empirical one."""
from __future__ import annotations

import math

from typing import Any

from rich.text import Text

from initlab.engine.textplot import fmt_near_one

from ..messages import CurveReady, TheoryReady
from .plot import linear_ticks, PlotWidget, Row, build_plot, fmt, legend, packed, theme_rgb


THEORY_ROWS = (("q*", "q_star"), ("chi_1", "chi1"), ("phase", "phase"), ("c*", "c_star"),
               ("depth scale forward", "depth_scale_forward"), ("depth scale backward", "depth_scale_backward"))


def theory_line(m: TheoryReady, width: int = 1000, refused: str = "") -> str:
    """Mean-field numbers for the scaled-normal init at the form's sigma_w and sigma_b, wrapped at `width` between
    its figures (a figure is never cut). With `refused` (a field the form refuses) they are said to be of the last
    values it accepted."""
    t = m.theory
    back = t["depth_scale_backward"]
    grows = " (negative: growth)" if back is not None and back < 0 else ""
    # the form's sigma_w and sigma_b whatever its init: the readout is of a scaled_normal net, said so
    of = "" if m.init == "scaled_normal" else f", not the form's {m.init}"
    # refused, the readout is of the last accepted values, the activation among them (the curve is the form's)
    fields = f"the last accepted {t['activation']}, sigma_w {fmt(t['sigma_w'])}, sigma_b {fmt(t['sigma_b'])} " \
             f"({refused} refused)" if refused else f"the sigma_w {fmt(t['sigma_w'])}, sigma_b {fmt(t['sigma_b'])} fields"
    parts = [f"mean field of {fields}",
             f"(a scaled_normal init{of}):", f"q* {fmt(t['q_star'])}", f"chi_1 {fmt_near_one(t['chi1'])} ({t['phase']})",
             f"depth scales {fmt(t['depth_scale_forward'], 3)} forward, {fmt(back, 3)} backward{grows}"]
    from initlab.engine.theory import FINITE_Q, PAIR_MAX_Q

    unbounded = t["q_star"] is not None and math.isinf(t["q_star"])
    if unbounded and t.get("chi1_finite_q") is not None:
        parts.append(f"(q* inf: chi_1 and phase are limits; chi_1 {fmt(t['chi1_finite_q'])} at q {FINITE_Q:g})")
    for o in t.get("other_starts") or []:
        parts.append(f"(from q0 {fmt(o['q0'])}: q* {fmt(o['q_star'])}, chi_1 {fmt(o['chi1'])}, {o['phase']})")
    if t.get("c_star") is None and not unbounded:
        parts.append(f"(the forward scale is not computed past q* = {fmt(PAIR_MAX_Q)})")
    return packed(parts, width)


def zero_on_a_row(lo: float, hi: float, rows: int) -> tuple[float, float]:
    """A y range holding [lo, hi] in which 0 falls on a row of its own (where 0 fell half-way between two rows,
    the zero line and an f' of 0.0002 were drawn a row apart): the top raised or the bottom lowered, whichever
    adds less."""
    if rows < 3 or not lo < 0 < hi:
        return lo, hi
    at = -lo / (hi - lo) * (rows - 1)       # 0's row, counted from the bottom
    options = []
    if math.floor(at) >= 1:                 # 0 down onto a row below it: the top goes up
        options.append((lo, lo - lo * (rows - 1) / math.floor(at)))
    if math.ceil(at) <= rows - 2:           # 0 up onto a row above it: the bottom goes down
        k = math.ceil(at)
        options.append((-k * hi / (rows - 1 - k), hi))
    options = [(a, b) for a, b in options if a <= lo and b >= hi]
    return min(options, key=lambda o: o[1] - o[0]) if options else (lo, hi)


class ActivationChart(PlotWidget):
    """Data: a CurveReady message (computed on a worker, since the curve needs torch)."""

    title = "Activation"
    empty = "computing the activation's curve..."
    theory: TheoryReady | None = None
    refused = ""        # a field the theory reads that the form refuses: the readout is of the values before

    def set_theory(self, theory: TheoryReady) -> None:
        self.theory = theory
        self.refused = ""
        self.version += 1
        self.refresh()

    def theory_refused(self, name: str) -> None:
        self.refused = name
        self.version += 1
        self.refresh()

    def has_data(self) -> bool:
        return isinstance(self.data, CurveReady)

    def readout(self) -> dict[str, Any] | None:
        """What the tab shows beside its curve, for an export: the gains, and the mean-field figures with the
        settings they are of (None before the curve is computed)."""
        if not self.has_data():
            return None
        d: CurveReady = self.data
        out: dict[str, Any] = {"activation": d.name, "max_derivative": d.max_derivative, "torch_gain": d.torch_gain,
                               "empirical_gain": d.empirical_gain, "rms_gain": d.rms_gain}
        if d.name == "leaky_relu":
            out["slope"] = d.slope
        if self.theory is not None:
            out["mean_field"] = {**self.theory.theory, "of_init": "scaled_normal", "form_init": self.theory.init,
                                 "of_refused_field": self.refused or None}
        return out

    def summary(self, width: int = 1000) -> str:
        d: CurveReady = self.data
        tg = fmt(d.torch_gain) if d.torch_gain is not None else "none"
        parts = [f"max f' {fmt(d.max_derivative)}", f"torch gain {tg}",
                 f"empirical gain std(x)/std(f(x)) {fmt(d.empirical_gain)}"]
        if d.rms_gain is not None:      # Kaiming's gain for the ReLU family, apart from the std ratio where f has a mean
            parts.append(f"rms gain sqrt(E[x^2]/E[f^2]) {fmt(d.rms_gain)}")
        return packed(parts, width, gap="   ")

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: CurveReady = self.data

        def draw(plt: Any) -> None:
            # the zero line first, beneath: f' of 0.2 (leaky_relu) or f's tails share its row on a short chart
            plt.plot([d.x[0], d.x[-1]], [0, 0], marker="┈", color=c["foreground"])
            plt.plot(d.x, d.f, marker="braille", color=c["primary"])
            plt.plot(d.x, d.df, marker="·", color=c["accent"])
            lo, hi = min(min(d.f), min(d.df), 0.0), max(max(d.f), max(d.df), 0.0)
            data_rows = rows - (4 if rows >= 10 else 3)
            lo, hi = zero_on_a_row(lo, hi, data_rows)
            # on a few rows a 1-2-5 tick would fall between two and label the wrong one: the ends and 0 instead
            ticks = linear_ticks(lo, hi, most=max(3, (rows - 3) // 2)) if data_rows > 5 else \
                sorted({lo, hi} | ({0.0} if lo < 0 < hi else set()))
            plt.yticks(ticks, [f"{t:.2g}" for t in ticks])
            plt.ylim(lo, hi)
            if rows >= 10:      # below that the row is worth more to the curve than to the axis's name
                plt.xlabel("x")

        head = f"{self.title}: {d.name}" + (f" (slope {d.slope:g})" if d.name == "leaky_relu" else "")
        summary = self.summary(width)
        theory = theory_line(self.theory, width, self.refused) if self.theory is not None else ""
        # a short pane keeps the curve (7 rows: three of them data) and its key: the theory line goes, its
        # headline (q*, chi_1 and the phase) beside the title (n's table has it all), then the figures run on one
        # line, cut at the edge
        if height - 3 - summary.count("\n") - (theory.count("\n") + 1 if theory else 0) < 7:
            if theory:
                t = self.theory.theory
                head += f"   mean field: q* {fmt(t['q_star'])}, chi_1 {fmt_near_one(t['chi1'])} ({t['phase']})" \
                    + (f", {self.refused} refused: of the last accepted" if self.refused else "")
            theory = ""
        out = Text(head, style="bold", no_wrap=True, overflow="ellipsis")
        out.append("\n")
        if height - 3 - summary.count("\n") < 7:
            summary = self.summary()
        out.append(summary + "\n")
        if theory:
            out.append(theory + "\n")
        extra = summary.count("\n") + (theory.count("\n") + 1 if theory else 0)
        rows = max(5, height - 3 - extra)
        out.append_text(build_plot(width, rows, draw))
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
        rows.append(["rms gain", fmt(d.rms_gain), ""])
        if self.theory is not None:
            t = self.theory.theory
            rows += [[name, fmt(t[key]) if key != "phase" else t[key], ""] for name, key in THEORY_ROWS]
        return ["x", "f(x)", "f'(x)"], rows
