"""Training: train and test loss per epoch (log10 axis), accuracy where the task has one, a pinned baseline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text

from ..bridge import log10_or_none
from .plot import PlotWidget, Row, build_plot, fmt, legend, log_ticks, span, theme_rgb

Epoch = dict[str, Any]
TRAIN_GLYPHS = ("•", "◦", "∘")
TEST_GLYPHS = ("×", "+", "*")


@dataclass(frozen=True)
class TrainingData:
    epochs: tuple[Epoch, ...]           # epoch, run, train_loss, test_loss, train_acc, test_acc
    baseline: tuple[Epoch, ...] = ()
    label: str = ""
    total_epochs: int = 0               # the run's planned epochs: the axis spans them from the start
    seeds: tuple[int, ...] = ()         # a several-run training's seeds, by run: the legend names runs by them
    baseline_label: str = ""            # which run was pinned: "train seed 0 relu xavier_uniform gain 1 sgd lr 0.1"


def epoch_row(ev: Any) -> Epoch:
    """An EpochEnd event as a plain dict (also what a training result's "epochs" list holds)."""
    return {"epoch": ev.epoch, "run": ev.run, "train_loss": ev.train_loss, "test_loss": ev.test_loss,
            "train_acc": ev.train_acc, "test_acc": ev.test_acc}


def runs_of(epochs: tuple[Epoch, ...]) -> list[int]:
    return sorted({int(e.get("run", 0)) for e in epochs})


class TrainingChart(PlotWidget):
    title = "Training: loss per epoch, log scale"
    empty = "no training yet: t trains the configured net"

    def has_data(self) -> bool:
        return isinstance(self.data, TrainingData) and bool(self.data.epochs or self.data.baseline or self.data.label)

    def draw(self, width: int, height: int) -> Text:
        c = theme_rgb(self)
        d: TrainingData = self.data
        lines: list[tuple[str, str, list[float], list[float | None], tuple[int, int, int]]] = []
        for k, run in enumerate(runs_of(d.epochs)):
            es = [e for e in d.epochs if int(e.get("run", 0)) == run]
            tag = ("" if len(runs_of(d.epochs)) == 1 else f" seed {d.seeds[run]}" if run < len(d.seeds)
                   else f" run {run}")
            xs = [e["epoch"] for e in es]
            lines.append((f"train{tag}", TRAIN_GLYPHS[k % 3], xs, [log10_or_none(e.get("train_loss")) for e in es],
                          c["primary"]))
            lines.append((f"test{tag}", TEST_GLYPHS[k % 3], xs, [log10_or_none(e.get("test_loss")) for e in es],
                          c["accent"]))
        if d.baseline:
            base = [e for e in d.baseline if int(e.get("run", 0)) == 0]
            xs = [e["epoch"] for e in base]
            named = f" ({d.baseline_label})" if d.baseline_label else ""
            lines.append((f"baseline train{named}", "-", xs, [log10_or_none(e.get("train_loss")) for e in base],
                          c["secondary"]))
            lines.append(("baseline test", "=", xs, [log10_or_none(e.get("test_loss")) for e in base],
                          c["secondary"]))
        if not lines:       # a training with no epoch done (yet): the title says why
            return Text(self.title + (f" ({d.label})" if d.label else ""), style="bold", no_wrap=True,
                        overflow="ellipsis")
        acc = [(e["epoch"], e.get("test_acc")) for e in d.epochs if e.get("test_acc") is not None
               and int(e.get("run", 0)) == 0]
        lo, hi = span([v for *_, ys, _c in lines for v in ys], pad=0.1)
        n_epochs = max([e["epoch"] for e in d.epochs + d.baseline] + [d.total_epochs, 1])

        def draw(plt: Any) -> None:
            # the baseline first, beneath: where the two runs coincide the current one is the one seen
            for _name, glyph, xs, ys, rgb in sorted(lines, key=lambda ln: not ln[0].startswith("baseline")):
                pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
                if pts:
                    plt.plot([p[0] for p in pts], [p[1] for p in pts], marker=glyph, color=rgb)
            if acc:
                plt.plot([a[0] for a in acc], [a[1] for a in acc], marker="+", color=c["success"], yside="right")
                plt.ylim(0, 1, yside="right")
            ticks, labels = log_ticks(lo, hi, most=max(2, (plot_h - 4) // 2))
            plt.yticks(ticks, labels)
            plt.ylim(lo, hi)
            plt.xlim(0.5, max(1.5, n_epochs + 0.5))
            step = max(1, round(n_epochs / max(2, width // 8)))
            plt.xticks(list(range(1, n_epochs + 1, step)))
            if height >= 12:    # below that the row is worth more to the curves than to the axis's name
                plt.xlabel("epoch")

        items = [(g, name, rgb) for name, g, _x, _y, rgb in lines]
        if acc:
            items.append(("+", "test acc (right axis)", c["success"]))
        key = legend(*items, width=width, rows=max(1, height - 8))     # the plot keeps 7 rows: 4 of them data
        plot_h = height - 2 - key.plain.count("\n")
        out = Text(self.title + (f" ({d.label})" if d.label else ""), style="bold", no_wrap=True, overflow="ellipsis")
        out.append("\n")
        out.append_text(build_plot(width, plot_h, draw))
        out.append("\n")
        out.append_text(key)
        return out

    def key_columns(self) -> int:
        return 2        # run and epoch

    def table(self) -> tuple[Row, list[Row]]:
        d: TrainingData = self.data
        cols = ["run", "epoch", "train loss", "test loss", "train acc", "test acc"]

        def run(e: Epoch) -> str:
            # counted from 1 and named by its seed, as the log names it ("seed 420, run 1 of 2")
            r = int(e.get("run", 0))
            return f"{r + 1} (seed {d.seeds[r]})" if 0 <= r < len(d.seeds) and len(d.seeds) > 1 else str(r + 1)

        rows = [[run(e), str(e["epoch"]), fmt(e.get("train_loss")), fmt(e.get("test_loss")),
                 fmt(e.get("train_acc")), fmt(e.get("test_acc"))] for e in d.epochs]
        rows += [["baseline", str(e["epoch"]), fmt(e.get("train_loss")), fmt(e.get("test_loss")),
                  fmt(e.get("train_acc")), fmt(e.get("test_acc"))] for e in d.baseline]
        return cols, rows
