"""The centre pane: ten chart tabs (keys 1-9 and 0) and, one key away, the numbers behind the visible chart."""
from __future__ import annotations

import textwrap
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TabbedContent, TabPane

from .activation_chart import ActivationChart
from .dist_chart import KINDS, DistributionChart
from .heatmap import HeatmapChart
from .jacobian_chart import JacobianChart
from .layer_charts import BackwardChart, ForwardChart, GlorotChart
from .numbers import NumbersTable
from .plot import PlotWidget
from .sweep_chart import SweepChart
from .training_chart import TrainingChart
from .widths_chart import WidthsChart

TABS: tuple[tuple[str, str, type[PlotWidget], str], ...] = (
    ("forward", "Forward", ForwardChart, "activation std per layer on a log scale, with level 1 and the input's std"),
    ("backward", "Backward", BackwardChart, "mean |dL/dW| and std of dL/dz per layer on a log scale"),
    ("glorot", "Glorot", GlorotChart, "forward and backward variance ratios per layer around 1"),
    ("distributions", "Distributions", DistributionChart, "quantile boxes of weights, activations or gradients"),
    ("training", "Training", TrainingChart, "train and test loss per epoch, a pinned baseline overlaid"),
    ("heatmap", "Heatmap", HeatmapChart, "layer x step of log10 mean |dL/dW|"),
    ("activation", "Activation", ActivationChart, "f and f', max f', gains, and mean-field q*, chi_1, phase"),
    ("sweep", "Sweep", SweepChart, "probes (or trainings: sweep_runs) over a grid: verdict and gradient ratio per point, a heatmap for two"),
    ("jacobian", "Jacobian", JacobianChart, "singular values of d output / d input at init, log10 histogram"),
    ("widths", "Widths", WidthsChart, "mean |a| per layer against width over the first steps (coordinate check)"),
)


def tab_key(i: int) -> str:
    """The key of the i-th tab (from 1): 1 to 9, then 0."""
    return str(i % 10)


# the tab bar's names where the whole names do not fit (a tab past the pane's edge is not seen at all), shortest last
SHORT = ("Fwd", "Back", "Glorot", "Dist", "Train", "Heat", "Act", "Sweep", "Jacob", "Width")
TINY = ("Fw", "Bk", "Gl", "Ds", "Tr", "Ht", "Ac", "Sw", "Jc", "Wd")


def tab_labels(width: int) -> list[str]:
    """The longest tab names whose bar fits in `width` columns (each tab pads its label by one a side)."""
    for names in ([title for _tid, title, _cls, _about in TABS], SHORT, TINY):
        labels = [f"{tab_key(i)} {n}" for i, n in enumerate(names, start=1)]
        if sum(len(label) + 2 for label in labels) <= width:
            break
    return labels


class ChartsPane(Vertical):
    """Holds the charts; each chart keeps its data and draws only while its tab is the visible one."""

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs", initial="forward"):
            for i, (tid, title, cls, _about) in enumerate(TABS, start=1):
                with TabPane(f"{tab_key(i)} {title}", id=tid):
                    yield cls(id=f"chart-{tid}")
        table = NumbersTable(id="numbers")
        table.display = False
        yield table

    # -- access ------------------------------------------------------------------------------------------------
    def chart(self, tid: str) -> Any:
        return self.query_one(f"#chart-{tid}")

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active or "forward"

    def visible_chart(self) -> PlotWidget:
        return self.chart(self.active)

    def show_tab(self, tid: str) -> None:
        self.query_one(TabbedContent).active = tid

    # -- data --------------------------------------------------------------------------------------------------
    def set_data(self, tid: str, data: Any) -> None:
        self.chart(tid).set_data(data)
        if tid == self.active:
            self.refresh_numbers()

    def cycle_kind(self) -> str:
        chart: DistributionChart = self.chart("distributions")
        kind = KINDS[(KINDS.index(chart.kind) + 1) % len(KINDS)]
        chart.set_kind(kind)
        self.refresh_numbers()
        return kind

    # -- numbers -----------------------------------------------------------------------------------------------
    def toggle_numbers(self) -> bool:
        table = self.query_one(NumbersTable)
        table.display = not table.display
        self.refresh_numbers()
        # the whole pane is repainted: a terminal kept rows of the taller chart where the table had just appeared
        self.refresh(layout=True, repaint=True)
        if table.display:
            # the cursor in it: the arrows and page keys move through its rows, not through a field of the form (a
            # select's menu opened on the down key); the app's letters and digits still act
            table.focus()
        elif table.has_focus:
            self.app.set_focus(None)
        return table.display

    def page_numbers(self, step: int) -> None:
        """The table's next (step 1) or earlier (-1) page of columns, while it is shown."""
        table = self.query_one(NumbersTable)
        if table.display:
            table.action_page(step)

    def move_in_numbers(self, how: str) -> None:
        """The table's row cursor down or up a row or a page, or to its first or last row, while it is shown."""
        table = self.query_one(NumbersTable)
        if table.display:
            getattr(table, f"action_{how}")()

    def refresh_numbers(self) -> None:
        table = self.query_one(NumbersTable)
        if not table.display:
            return
        chart = self.visible_chart()
        if chart.has_data():
            table.show(*chart.table(), keys=chart.key_columns())
        else:
            # a cell does not wrap: the hint goes a line to a row, wrapped at the pane's width
            width = max(20, (table.size.width or self.size.width or 80) - 4)
            table.show(["-"], [[line] for line in textwrap.wrap(chart.empty, width)])

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_numbers()

    def on_resize(self, event: Any) -> None:
        tabs = self.query_one(TabbedContent)
        for (tid, *_rest), label in zip(TABS, tab_labels(event.size.width)):
            tab = tabs.get_tab(tid)
            if tab.label.plain != label:
                tab.label = label
