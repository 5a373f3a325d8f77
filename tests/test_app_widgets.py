"""The app's parts without an App: the engine bridge's merging, axis ticks, chart cells, form value round trips."""
from __future__ import annotations

import math
from dataclasses import replace
import re

import pytest
from rich.text import Text

from initlab.engine.events import EpochEnd, Finished, LayerStats, LogLine, Progress, Started
from initlab.engine.jobs import TrainJob
from initlab.engine.presets import PRESETS
from initlab.engine.spec import FIELDS, Config, parse_value
from initlab.tui.bridge import HEAT_COLUMNS, EngineBridge, log10_or_none
from initlab.tui.messages import CurveReady
from initlab.tui.widgets.activation_chart import ActivationChart
from initlab.tui.widgets.config_form import raw_of
from initlab.tui.widgets.dist_chart import LABEL_W, DistributionChart, cell, sample, y_range
from initlab.tui.widgets.heatmap import SHADES, HeatmapChart, level
from initlab.tui.widgets.layer_charts import ForwardChart, GlorotChart, LayerData
from initlab.tui.widgets.plot import fmt, log_ticks
from initlab.tui.widgets.training_chart import TrainingChart, TrainingData


def test_bridge_merges_statistics_and_passes_discrete_events_in_order():
    posted = []
    bridge = EngineBridge(posted.append)
    cfg = Config(depth=3, width=8, data="poly", n_rows=200, batch=10, epochs=3, stats_every=1, loss="mse",
                 device="cpu", seed=2)
    bridge.start(TrainJob(cfg))
    assert bridge.session.wait(60)
    assert [type(e) for e in posted][0] is Started and type(posted[-1]) is Finished
    assert not any(isinstance(e, (LayerStats, Progress, EpochEnd)) for e in posted)
    assert any(isinstance(e, LogLine) for e in posted)
    result = posted[-1].result
    snap = bridge.take()
    assert bridge.take() is None                  # nothing new since
    # the latest statistics, not a backlog: a finished run ends on its end state, the result's final layers
    assert snap.stats.final and snap.stats.step == result["steps_done"] == 42
    assert [d["a_std"] for d in snap.stats.layers] == [d["a_std"] for d in result["final"]["layers"]]
    assert [d["distinct_units"] for d in snap.stats.layers] == [d["distinct_units"] for d in result["final"]["layers"]]
    assert snap.progress.step == result["steps_done"]
    assert [e.train_loss for e in snap.epochs] == [e["train_loss"] for e in result["epochs"]]
    # the heatmap keeps at most HEAT_COLUMNS steps of the 42 sampled here (not the end state, which is no step),
    # each log10 mean |dL/dW| per layer
    assert len(snap.heat) == min(HEAT_COLUMNS, result["steps_done"])
    step, column = snap.heat[-1]
    assert step == result["steps"][-1]["step"] == 41
    assert column == pytest.approx([math.log10(d["grad_w_absmean"]) for d in result["steps"][-1]["layers"]])


def test_bridge_thins_a_long_heat_history_and_restarts_with_each_job():
    posted = []
    bridge = EngineBridge(posted.append)
    layers = ({"grad_w_absmean": 1e-3},)
    for s in range(5000):
        bridge._on_event(LayerStats("train", step=s, layers=layers))
    snap = bridge.take()
    assert len(snap.heat) <= HEAT_COLUMNS + 1
    assert snap.heat[0][0] == 0 and snap.heat[-1][0] == 4999
    assert snap.heat[-1][1] == (pytest.approx(-3.0),)
    bridge._on_event(Started("probe"))
    assert posted == [Started("probe")]
    assert bridge.take() is None and bridge._heat.values() == []


@pytest.mark.parametrize("v, out", [(100.0, 2.0), (0.0, None), (-1.0, None), (float("inf"), None),
                                    (float("nan"), None), (None, None)])
def test_log10_or_none(v, out):
    assert log10_or_none(v) == out


def test_log_ticks_whole_powers_then_1_2_5_then_plain():
    assert log_ticks(-3.2, 2.1) == ([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0], ["0.001", "0.01", "0.1", "1", "10", "100"])
    ticks, labels = log_ticks(-40, 40, most=5)
    assert len(ticks) <= 5 and all(10 ** t > 0 for t in ticks) and labels == ["1e-40", "1e-20", "1", "1e20", "1e40"]
    ticks, labels = log_ticks(-0.5, 0.35)
    assert labels == ["0.5", "1", "2"] and ticks == pytest.approx([math.log10(0.5), 0.0, math.log10(2)])
    ticks, labels = log_ticks(0.1, 0.2)
    assert len(ticks) == 3 and labels[1] == f"{10 ** 0.15:.3g}"
    # more 1-2-5 marks than the rows hold: 1-5, then the outer two (on a short Glorot chart 0.2 and 0.5 shared a
    # row, and 0.2 was printed where the values near 0.5 lay)
    assert log_ticks(-0.75, 0.8, most=6)[1] == ["0.2", "0.5", "1", "2", "5"]
    assert log_ticks(-0.75, 0.8, most=3)[1] == ["0.5", "1", "5"]
    assert log_ticks(-0.75, 0.8, most=2)[1] == ["0.5", "5"]


def test_fmt():
    assert fmt(None) == "-" and fmt(float("nan")) == "nan" and fmt(float("-inf")) == "-inf"
    assert fmt(3) == "3" and fmt(0.000123456) == "0.0001235"


def test_distribution_cells_mark_box_median_whiskers_and_extremes():
    q = [-3.0, -2.0, -1.0, 0.05, 1.0, 2.0, 3.0]
    assert cell(q, 0.1, 0.0) == "━"             # the row holding the median
    assert cell(q, 0.9, 0.5) == "█"             # inside 25-75%
    assert cell(q, 1.6, 1.2) == "│"             # between 75% and 95%
    assert cell(q, 3.05, 2.95) == "·"           # the max
    assert cell(q, 5.0, 4.0) is None
    lo, hi = y_range([q, [0, 0, 0, 0, 0, 0, 0]])
    assert lo < -2.0 and hi > 2.0 and hi - lo < 5.0
    assert sample(5, 10) == [0, 1, 2, 3, 4]
    s = sample(100, 10)
    assert s[0] == 0 and s[-1] == 99 and len(s) == 10


def test_distribution_edges_mark_values_beyond_the_axis_and_a_symlog_axis_labels_zero():
    layers = tuple({"a_std": 1.0, "nonfinite_frac": 0.0} for _ in range(3))
    # layer 0's 5-95% whisker sets the axis top, its max lies far above; layer 2's min far below the axis bottom
    qs = ({"activation": [-1.0, -0.9, -0.5, 0.0, 0.5, 4.0, 50.0]},
          {"activation": [-1.0, -0.9, -0.5, 0.0, 0.5, 0.9, 1.0]},
          {"activation": [-60.0, -3.0, -0.5, 0.0, 0.5, 0.9, 1.0]})
    dist = DistributionChart()
    dist.data = LayerData(layers, distributions=qs)
    grid = [line[LABEL_W:] for line in dist.draw(40, 20).plain.splitlines()
            if len(line) > LABEL_W and line[LABEL_W - 1] in "┤│"]          # the plot's rows, by their axis
    assert grid[0][0] == "▲" and grid[-1][-2] == "▼"
    # a vanishing net: boxes a thousand times apart get the symmetric log axis, and its 0 is a labelled tick
    qs = tuple({"activation": [s * v for v in (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)]} for s in (1e3, 1.0, 1e-3))
    dist.data = LayerData(layers, distributions=qs)
    lines = dist.draw(40, 20).plain.splitlines()
    # too long for one line beside the title at 40: the key's hint and the axis lead the next line, whole
    assert lines[1] == "k switches; symmetric log axis, linear within 0.002"
    labels = [line[:LABEL_W - 1].strip() for line in lines[2:18]]
    assert "0" in labels
    assert dist.draw(200, 20).plain.splitlines()[0].endswith(
        "; k: weights, activations, gradients; symmetric log axis, linear within 0.002")
    at_80 = dist.draw(52, 20).plain.splitlines()       # the chart pane of an 80-column terminal
    assert at_80[0] == "Distributions: activation quantiles per layer"
    assert at_80[1] == "k switches; symmetric log axis, linear within 0.002"


def test_small_panes_cut_a_chart_at_their_height_and_never_divide_by_zero():
    from initlab.tui.widgets.plot import fit_height

    pic = Text("a\nb\nc\nd")
    assert fit_height(pic, 2).plain == "a\nb" and fit_height(pic, 4) is pic
    assert sample(5, 1) == [0] and sample(0, 1) == []
    heat = HeatmapChart()
    heat.data = ((0, (-1.0, -2.0)),)
    assert heat.draw(40, 4).plain.startswith("Heatmap")      # one row for two layers: the first is shown


def test_a_thinned_heatmap_says_its_extremes_are_of_the_steps_kept():
    """A long run's history keeps every other step as it fills: a spike between two kept steps is gone, so the
    numbers' min and max are of the steps kept, and the title says how many of how many."""
    heat = HeatmapChart()
    heat.data = tuple((s, (-1.0 - s / 100, -2.0)) for s in range(0, 400, 40))
    assert heat.table()[0][-2:] == ["min", "max"] and "kept" not in heat.draw(80, 12).plain.splitlines()[0]
    heat.seen = 80
    assert heat.table()[0][-2:] == ["min of kept", "max of kept"]
    # each layer's row: its latest value, then the extremes over the steps kept (layer 0 falls from -1 to -4.6)
    rows = heat.table()[1]
    assert rows[0][-2:] == [fmt(-1.0 - 360 / 100), fmt(-1.0)] and rows[1][-2:] == [fmt(-2.0), fmt(-2.0)]
    assert heat.draw(120, 12).plain.splitlines()[0].endswith("(10 of 80 sampled steps kept)")


def test_heatmap_levels_span_the_range():
    assert level(-6.0, -6.0, -1.0) == 0 and level(-1.0, -6.0, -1.0) == len(SHADES) - 1
    assert level(-3.6, -6.0, -1.0) == 2


def test_charts_draw_and_tabulate_without_an_app():
    layers = tuple({"a_std": 10.0 ** -i, "a_mean": 0.0, "z_std": 1.0, "saturated_frac": 0.0, "dead_frac": 0.0,
                    "fwd_var_ratio": 0.5, "bwd_var_ratio": 2.0, "fan_in": 4, "fan_out": 4} for i in range(5))
    fwd = ForwardChart()
    fwd.data = LayerData(layers, input_std=1.0)
    pic = fwd.draw(80, 20).plain
    assert "a_std" in pic and "level 1" in pic and "1e-4" in pic and "no a_std bar" not in pic
    # some layers of zero std (dead ReLU layers): their missing bars are said, where others have one
    fwd.data = LayerData(tuple({**d, "a_std": 0.0} if i in (1, 3) else d for i, d in enumerate(layers)), input_std=1.0)
    assert fwd.draw(80, 20).plain.splitlines()[-1] == "no a_std bar at layer 1, 3: zero, not finite or not measured"
    # every bar gone while a baseline is still drawn (a training that killed its ReLUs): said all the same
    fwd.data = LayerData(tuple({**d, "a_std": 0.0} for d in layers), input_std=1.0, baseline=layers,
                         baseline_label="probe")
    assert fwd.draw(80, 20).plain.splitlines()[-1] == "no a_std bar at any layer: zero, not finite or not measured"
    fwd.data = LayerData(layers, input_std=1.0)
    cols, rows = fwd.table()
    assert cols[1] == "a_std" and [r[1] for r in rows] == [fmt(10.0 ** -i) for i in range(5)]
    glo = GlorotChart()
    glo.data = LayerData(layers)
    cols, rows = glo.table()
    assert cols[2:5] == ["fan_out", "distinct units", "fwd_var_ratio"] and [r[4] for r in rows] == ["0.5"] * 5
    assert [r[3] for r in rows] == ["-"] * 5             # not counted (a training's sampled step)
    glo.data = LayerData(tuple({**d, "distinct_units": 1} for d in layers))
    assert [r[2:4] for r in glo.table()[1]] == [["4", "1"]] * 5        # a zero init's units, beside their number
    # the key says a ReLU's forward ratio reads above 1 under a good init, which would otherwise look broken
    assert "after a ReLU the forward reads about 1.47 n Var(W)" in " ".join(glo.draw(120, 30).plain.split())
    dist = DistributionChart()
    dist.data = LayerData(layers, distributions=tuple({"weight": [-1, -.5, -.2, 0, .2, .5, 1],
                                                       "activation": [0] * 7, "gradient": [0] * 7}
                                                      for _ in range(5)))
    dist.kind = "weight"
    assert "━" in dist.draw(60, 20).plain and dist.table()[1][0][1:] == [fmt(v) for v in (-1, -.5, -.2, 0, .2,
                                                                                           .5, 1)]
    # a layer whose outputs are all non-finite: its saturated and dead counts are blank, and a chart with no
    # finite value says so instead of drawing an empty frame
    bad = ({**layers[0], "a_std": math.nan, "nonfinite_frac": 1.0, "saturated_frac": 0.0, "dead_frac": 0.0},)
    # the whole tensor's extremes, beside the sampled boxes of Distributions
    fwd.data = LayerData(tuple({**d, "a_min": -0.5 - i, "a_max": 0.25 * i} for i, d in enumerate(layers)))
    cols, rows = fwd.table()
    assert cols[-2:] == ["a_min", "a_max"] and [r[-2:] for r in rows] == [[fmt(-0.5 - i), fmt(0.25 * i)]
                                                                          for i in range(5)]
    fwd.data = LayerData(bad)
    assert fwd.table()[1][0][5:7] == ["-", "-"]
    pic = fwd.draw(80, 20).plain
    assert pic.startswith("Forward: a_std non-finite from layer 0 (1 of 1 layers)")
    assert "nothing to draw: a_std are not measured, non-finite or zero in every layer" in pic.replace("\n", " ")
    assert max(len(line) for line in fwd.draw(40, 20).plain.splitlines()[1:]) <= 40      # wrapped, not cut
    # a gradient that overflows in the backward pass does so from a late layer down to the first: named from there,
    # as the verdict names it, not from layer 0
    from initlab.tui.widgets.layer_charts import BackwardChart

    back = BackwardChart()
    back.data = LayerData(tuple({**d, "grad_w_absmean": math.inf if i <= 2 else 1e-3, "grad_z_std": 1e-3}
                                for i, d in enumerate(layers)))
    assert back.draw(100, 20).plain.startswith("Backward: grad_w_absmean non-finite from layer 2 down (3 of 5 layers)")
    # a value not measured (a user's module without weights) is not called non-finite
    unmeasured = ({**layers[0], "fwd_var_ratio": None, "bwd_var_ratio": None, "fan_in": None, "fan_out": None},)
    glorot = GlorotChart()
    glorot.data = LayerData(unmeasured, label="probe")
    assert "non-finite" not in glorot.draw(80, 20).plain.splitlines()[0]
    assert glorot.table()[1][0][1:3] == ["-", "-"]          # a module without a weight has no fans: '-', not None
    # whose statistics these are comes right after the chart's name, where a narrow pane does not cut it
    from initlab.tui.widgets.layer_charts import BackwardChart

    for chart, name in ((glorot, "Glorot"), (BackwardChart(), "Backward"), (DistributionChart(), "Distributions")):
        chart.data = LayerData(layers, label="train step 7", distributions=tuple(
            {"weight": [-1, -.5, -.2, 0, .2, .5, 1], "activation": [0] * 7, "gradient": [0] * 7} for _ in layers))
        assert chart.draw(120, 20).plain.startswith(f"{name} (train step 7): "), name
    empty = TrainingChart()
    empty.data = TrainingData((), label="no epoch finished: stopped on a non-finite value")
    assert empty.has_data() and empty.draw(60, 16).plain == \
        "Training: loss per epoch, log scale (no epoch finished: stopped on a non-finite value)"
    heat = HeatmapChart()
    heat.data = ((0, (-1.0, -2.0)), (10, (-1.5, None)))
    pic = heat.draw(60, 10).plain
    assert "layer 0" in pic and "×" in pic and "step 10" in pic
    assert heat.table()[1][1] == ["1", "-2", "-", "-2", "-2"]
    heat.data = ((0, (-1.0, -2.5)),)        # a probe: one step, one column of values
    assert heat.table() == (["layer", "step 0"], [["0", "-1"], ["1", "-2.5"]])
    tr = TrainingChart()
    tr.data = TrainingData(({"epoch": 1, "run": 0, "train_loss": 1.0, "test_loss": 2.0},
                            {"epoch": 2, "run": 0, "train_loss": 0.1, "test_loss": 0.5}), total_epochs=4)
    assert "train" in tr.draw(60, 16).plain and tr.table()[1][1][2] == "0.1"
    two = TrainingData(({"epoch": 1, "run": 0, "train_loss": 1.0, "test_loss": 2.0},
                        {"epoch": 1, "run": 1, "train_loss": 3.0, "test_loss": 4.0}), seeds=(420, 29))
    tr.data = two
    pic = tr.draw(100, 16).plain
    assert "train seed 420" in pic and "test seed 29" in pic and "run 1" not in pic
    act = ActivationChart()
    act.data = CurveReady("tanh", 0.01, [-1.0, 0.0, 1.0], [-0.76, 0.0, 0.76], [0.42, 1.0, 0.42], 1.0, 5 / 3, 1.59)
    assert "torch gain 1.667" in act.draw(60, 16).plain
    from initlab.engine.theory import mean_field
    from initlab.tui.messages import TheoryReady

    act.set_theory(TheoryReady(mean_field("tanh", 1.0, 0.0), "xavier_uniform"))
    narrow, wide = act.draw(58, 24).plain.splitlines(), act.draw(200, 24).plain.splitlines()
    assert "depth scales" in wide[2] and len(narrow) == len(wide) == 24
    # at 58 columns every figure is whole, on lines of their own where they do not fit together
    text = "\n".join(narrow[:8])
    for figure in ("empirical gain std(x)/std(f(x)) 1.59", "q* 0", "chi_1 1 (critical)", "depth scales"):
        assert figure in text, figure
    assert all(len(line) <= 58 for line in narrow) and "not computed" not in text
    # past q* = 9 the forward scale is missing, and the line says why
    from initlab.tui.widgets.activation_chart import theory_line

    # the readout is of the sigma fields' scaled_normal net, whatever the form's init; a negative scale is growth
    assert "(a scaled_normal init, not the form's orthogonal):" in theory_line(
        TheoryReady(mean_field("tanh", 2.0, 0.0), "orthogonal"))
    assert "-3.23 backward (negative: growth)" in theory_line(TheoryReady(mean_field("tanh", 2.0, 0.0), "orthogonal"))
    assert "(a scaled_normal init):" in theory_line(TheoryReady(mean_field("tanh", 1.0, 0.0), "scaled_normal"))
    far = TheoryReady(mean_field("tanh", 4.0, 3.0), "xavier_uniform")
    assert far.theory["depth_scale_forward"] is None
    assert "depth scales - forward" in theory_line(far) and "(the forward scale is not computed past q* = 9)" in \
        theory_line(far)
    from initlab.engine.theory import elsewhere

    gelu = mean_field("gelu", 1.76, 0.05)
    line = theory_line(TheoryReady({**gelu, **elsewhere("gelu", 1.76, 0.05)}, "scaled_normal"))
    assert "(q* inf: chi_1 and phase are limits; chi_1 1.551 at q 10000)" in line
    assert "(from q0 0.001: q* 0.01201, chi_1 0.7975, ordered)" in line and "not computed past" not in line


def test_form_values_read_back_as_the_same_config():
    for cfg in [Config(), *(p.config for p in PRESETS.values()), Config(gain=1.5, poly_w=(0.1, -2.5, 3.0))]:
        raw = {name: raw_of(info, getattr(cfg, name)) for name, info in FIELDS.items()}
        assert Config(**{name: parse_value(name, v) for name, v in raw.items()}) == cfg


def test_a_legend_wider_than_its_chart_wraps_between_items():
    from initlab.tui.widgets.plot import legend

    items = [("•", "train", None), ("-", "test", None), ("-", "baseline train", None), ("=", "baseline test", None),
             ("+", "test acc (right axis)", None)]
    lines = legend(*items, width=40).plain.splitlines()
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert all(name in " ".join(lines) for _, name, _ in items)
    assert len(legend(*items).plain.splitlines()) == 1           # no width: one line, as before


def test_a_short_pane_keeps_the_plot_and_its_key_within_its_rows():
    """At the 9 rows a chart needs, a key that would wrap onto more lines than fit runs on one line and is cut, and
    the Activation chart leaves out its theory line (in n's table too): nothing falls off the bottom."""
    from initlab.engine.theory import mean_field
    from initlab.tui.messages import TheoryReady
    from initlab.tui.widgets.plot import MIN_HEIGHT, legend

    items = [("•", f"series {i}", None) for i in range(8)]
    assert len(legend(*items, width=30, rows=2).plain.splitlines()) == 2
    assert len(legend(*items, width=30).plain.splitlines()) > 2
    tr = TrainingChart()
    tr.data = TrainingData(tuple({"epoch": e, "run": r, "train_loss": 1.0 / e, "test_loss": 2.0 / e}
                                 for r in range(2) for e in (1, 2)), seeds=(420, 29), total_epochs=4)
    act = ActivationChart()
    act.data = CurveReady("tanh", 0.01, [-1.0, 0.0, 1.0], [-0.76, 0.0, 0.76], [0.42, 1.0, 0.42], 1.0, 5 / 3, 1.59)
    act.set_theory(TheoryReady(mean_field("tanh", 1.0, 0.0), "xavier_uniform"))
    for chart, key, last in ((tr, "train seed 420", "seed"), (act, "f(x)", "f(x)")):
        for width in (24, 40, 80):
            lines = chart.draw(width, MIN_HEIGHT).plain.splitlines()
            assert len(lines) <= MIN_HEIGHT, (type(chart).__name__, width, lines)
            assert any(key in line for line in lines) and last in lines[-1], (type(chart).__name__, width, lines)
    assert "depth scales" in "\n".join(act.draw(200, 24).plain.splitlines())       # room enough: the theory line
    # too short for it: its headline beside the title, not gone
    short = act.draw(100, 11).plain.splitlines()
    assert "depth scales" not in "\n".join(short) and len(short) <= 11
    assert short[0] == "Activation: tanh   mean field: q* 0, chi_1 1 (critical)"


def test_a_pinned_baseline_is_drawn_beneath_the_current_run():
    """Where the baseline and the current run coincide (the same settings, trained again), the current run shows."""
    same = tuple({"epoch": e, "run": 0, "train_loss": 1.0 / e, "test_loss": 2.0 / e} for e in (1, 2, 3))
    tr = TrainingChart()
    tr.data = TrainingData(same, baseline=same, total_epochs=3)
    plot = "\n".join(tr.draw(80, 20).plain.splitlines()[1:-1])
    assert "•" in plot and "-" not in plot.replace("─", "")


def test_the_widths_key_names_a_line_drawn_over_by_an_equal_one():
    import copy

    from initlab.engine.widths import width_check
    from initlab.tui.widgets.widths_chart import WidthsChart

    chart = WidthsChart()
    r = width_check(Config(depth=4, width=16, batch=8, in_features=8, out_features=4, device="cpu"), [8, 16, 32], 2)
    chart.data = r
    key = chart.draw(120, 40).plain
    assert "(under" not in key and all(f"layer {i} " in key for i in range(len(r["layer_names"])))
    same = copy.deepcopy(r)
    for per_width in same["mean_abs_a"]:
        for per_step in per_width:
            per_step[1] = per_step[2] * (1 + 1e-4)          # layer 1 on layer 2, closer than a row
    chart.data = same
    key = chart.draw(120, 40).plain
    assert "layer 1 (under layer 2)" in key and key.count("(under") == 1
    # a net of zeros has no point to draw (log10 of 0): no line, so none under another
    chart.data = width_check(Config(depth=4, width=16, batch=8, in_features=8, out_features=4, device="cpu",
                                    init="zeros", bias=False), [8, 16, 32], 2)
    assert "(under" not in chart.draw(120, 40).plain
    for w, h in ((12, 9), (10, 9), (66, 8)):        # too short for panels: the message, within the pane
        assert len(chart.draw(w, h).plain.splitlines()) <= h


def test_the_widths_chart_says_which_steps_fit_when_some_do_not():
    from initlab.engine.widths import width_check
    from initlab.tui.widgets.widths_chart import WidthsChart

    chart = WidthsChart()
    chart.data = width_check(Config(depth=3, width=16, batch=8, in_features=8, out_features=4, device="cpu"),
                             [8, 16, 32], 5)
    narrow = chart.draw(88, 36).plain.splitlines()
    assert narrow[0].startswith("Widths (4 of 6 steps fit; n lists all): mean |a| per layer")
    assert len(narrow[0]) <= 88 and len(narrow[1]) <= 88          # the title and the slopes are not cut
    # a pane too narrow for the whole title keeps the chart's name and the note, not a cut description
    assert chart.draw(60, 36).plain.splitlines()[0] == "Widths (4 of 6 steps fit; n lists all)"
    assert narrow[1].startswith("largest |slope| (log-log; 0 is flat), steps 0 to 5: ")
    slopes = [max(abs(v) for v in row) for row in chart.data["slopes"]]
    assert narrow[1].split(": ", 1)[1] == ", ".join(f"{v:.2g}" for v in slopes)
    small = chart.draw(50, 36).plain.splitlines()       # a narrow pane wraps the slopes rather than cut the last
    assert len(small[1]) <= 50 and len(small[2]) <= 50 and f"{small[1]} {small[2]}" == narrow[1]
    # short panes: no line past the pane's foot, and the last step's figure whole; where the wrapped slopes would
    # crowd out the panel, that figure alone
    for width, height in ((50, 10), (30, 13), (60, 9), (42, 12)):
        pic = chart.draw(width, height).plain.splitlines()
        assert len(pic) <= height and f"{slopes[-1]:.2g}" in pic[1] + " " + pic[2], (width, height)
        # a panel with no row of data between its frame's edges is not drawn: said instead
        frames = [ln for ln in pic if "┌" in ln]
        if not frames:
            assert "too short for the step panels: n lists every value" in " ".join(pic), (width, height)
        else:
            top = pic.index(frames[0])
            assert "└" not in pic[top + 1] and "└" not in pic[top + 2], (width, height, pic)
    chart.data = width_check(Config(depth=6, width=16, batch=8, in_features=8, out_features=4, device="cpu"),
                             [8, 16, 32], 12)
    last = max(abs(v) for v in chart.data["slopes"][-1])
    for width, height in ((50, 10), (30, 13)):
        pic = chart.draw(width, height).plain.splitlines()
        assert len(pic) <= height and pic[1].startswith(f"|slope| {last:.2g} at step 12 (largest"), (width, height)
    assert [t for line in narrow[2:] for t in re.findall(r"step (\d)", line)] == ["0", "2", "3", "5"]
    assert "steps fit" not in chart.draw(240, 60).plain.splitlines()[0]


def test_a_narrow_sweep_table_drops_the_columns_others_imply_before_cutting_one():
    from initlab.tui.widgets.sweep_chart import table_lines

    head = ["sigma_w^2", "sigma_b^2", "verdict", "dL/dz first/last", "log10", "|dW| first/last", "last a std"]
    rows = [["1", "0.05", "vanishing", "1.234e-05", "-4.909", "2.345e-05", "0.3456"]]
    wide = table_lines(head, rows, 200, 10)
    assert wide[0].plain.split() == ["sigma_w^2", "sigma_b^2", "verdict", "dL/dz", "first/last", "log10", "|dW|",
                                     "first/last", "last", "a", "std"]
    narrow = [t.plain for t in table_lines(head, rows, 80, 10)]
    assert "log10" not in narrow[0] and "last a std" in narrow[0] and len(narrow[0]) <= 80
    assert narrow[1] == "... 1 more column (n lists them, ← → by page)"
    assert narrow[2].split()[-1] == "0.3456" and "-4.909" not in narrow[2]
    # narrower still: whole columns go from the right, and a line says so; no cell is cut mid-value
    tight = [t.plain for t in table_lines(head, rows, 40, 10)]
    assert tight[0].split() == ["sigma_w^2", "sigma_b^2", "verdict"] and len(tight[0]) <= 40
    assert tight[1] == "... 4 more columns (n lists them)"      # those the others imply too; the hint as fits
    assert tight[2].split() == ["1", "0.05", "vanishing"]
    many = [t.plain for t in table_lines(head, rows * 9, 40, 5)]      # 5 lines: head, one note, 3 rows
    assert len(many) == 5 and many[1] == "... 6 earlier points, 4 more columns"       # no hint cut mid-word
    assert [t.plain for t in table_lines(head, rows * 9, 40, 3)][2].split() == ["1", "0.05", "vanishing"]
    assert table_lines(head, rows * 9, 40, 2) == []      # a heading and a note, no point: left out


def test_the_distributions_axis_labels_the_last_layer_when_boxes_fill_the_pane():
    """A hundred layers in 69 columns: the last box sits at the pane's edge and its number still shows beneath."""
    n = 100
    layers = tuple({"a_std": 1.0, "nonfinite_frac": 0.0} for _ in range(n))
    qs = tuple({"activation": [-1.0, -0.9, -0.5, 0.0, 0.5, 0.9, 1.0]} for _ in range(n))
    dist = DistributionChart()
    dist.data = LayerData(layers, distributions=qs)
    for width in (80, 120):
        axis = [line for line in dist.draw(width, 30).plain.splitlines() if line.lstrip().startswith("layer")][0]
        assert axis.split()[1] == "0" and axis.split()[-1] == str(n - 1), axis


def test_linear_ticks_step_one_two_five_and_hold_zero():
    from initlab.tui.widgets.plot import linear_ticks

    assert linear_ticks(-1.0, 1.0, 5) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert linear_ticks(-1.0, 1.0, 3) == [-1.0, 0.0, 1.0]
    for lo, hi, most in ((-0.23, 1.07, 4), (0.0, 10.5, 5), (-3e-5, 2e-5, 4), (-7.0, 123.0, 6)):
        ticks = linear_ticks(lo, hi, most)
        steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:])}
        assert 2 <= len(ticks) <= most and all(lo <= t <= hi for t in ticks) and len(steps) == 1, (lo, hi, ticks)
        assert (lo <= 0 <= hi) == (0.0 in ticks)


def test_a_per_layer_chart_at_nine_rows_keeps_four_rows_of_bars():
    from initlab.tui.widgets.plot import MIN_HEIGHT

    layers = tuple({"fwd_var_ratio": r, "bwd_var_ratio": 1.0 / r} for r in (0.05, 1.0, 3.5))
    chart = GlorotChart()
    chart.data = LayerData(layers)
    lines = chart.draw(40, MIN_HEIGHT).plain.splitlines()
    top = next(i for i, ln in enumerate(lines) if "┌" in ln)
    bottom = next(i for i, ln in enumerate(lines) if "└" in ln)
    assert len(lines) <= MIN_HEIGHT and bottom - top - 1 >= 4, lines


def test_a_short_log_chart_keeps_its_floor_a_row_below_the_data_so_bars_of_many_decades_still_ramp():
    """An explosion over 30 decades at nine rows: the floor sinks one data row, not the whole span (which left half
    the rows empty and every bar of the same height)."""
    layers = tuple({"a_std": 10.0 ** (i - 2)} for i in range(32))
    chart = ForwardChart()
    chart.data = LayerData(layers, input_std=1.0)
    lines = chart.draw(70, 9).plain.splitlines()
    top = next(i for i, ln in enumerate(lines) if "┌" in ln)
    bottom = next(i for i, ln in enumerate(lines) if "└" in ln)
    rows = lines[top + 1:bottom]
    start = lines[top].index("┌") + 1
    heights = [sum(1 for r in rows if len(r) > x and r[x] == "▆") for x in range(start, start + 64)]
    heights = [h for h in heights if h]         # the gaps between bars
    assert heights == sorted(heights) and len(set(heights)) >= len(rows) - 1 and heights[-1] == len(rows)


def test_zero_falls_on_a_row_and_the_range_still_holds_the_curve():
    from initlab.tui.widgets.activation_chart import zero_on_a_row

    for lo, hi in ((-0.01, 1.0), (-1.0, 3.0), (-1.0, 1.0), (-0.17, 5.0), (-1.76, 5.0), (-0.9993, 0.9993)):
        for rows in range(3, 30):
            a, b = zero_on_a_row(lo, hi, rows)
            assert a <= lo and b >= hi, (lo, hi, rows, a, b)            # nothing of the curve is cut
            at = -a / (b - a) * (rows - 1)
            assert abs(at - round(at)) < 1e-9 or (a, b) == (lo, hi), (lo, hi, rows, at)
            assert b - a <= 2 * (hi - lo) + 1e-12 or rows < 5, (lo, hi, rows, a, b)
    assert zero_on_a_row(0.0, 1.0, 10) == (0.0, 1.0) and zero_on_a_row(-1.0, 1.0, 2) == (-1.0, 1.0)


def test_linear_ticks_never_fail_on_extreme_ranges():
    from initlab.tui.widgets.plot import linear_ticks

    for lo, hi, most in ((-1.7e308, 1.7e308, 6), (1e-320, 2e-320, 2), (-5e-324, 5e-324, 3), (-1.0, 1.0, 2),
                         (-3.0, -1.0, 2)):
        ticks = linear_ticks(lo, hi, most)
        assert len(ticks) >= 2 and all(lo <= t <= hi for t in ticks), (lo, hi, ticks)
    assert linear_ticks(1.0, 1.0) == [1.0] and linear_ticks(float("nan"), 1.0) == [1.0]


def table_app(width: int):
    """An app holding one NumbersTable `width` cells wide."""
    from textual.app import App

    from initlab.tui.widgets.numbers import NumbersTable

    class One(App):
        CSS = f"NumbersTable {{ width: {width}; }}"

        def compose(self):
            yield NumbersTable()

    return One()


async def shown(pilot, app, cols, rows):
    """The app's NumbersTable, focused (its arrows turn the pages), once it shows cols and rows."""
    from initlab.tui.widgets.numbers import NumbersTable

    table = app.query_one(NumbersTable)
    table.focus()
    table.show(cols, rows)
    await pilot.pause()
    return table


def test_a_numbers_table_too_wide_for_its_pane_closes_up_its_columns():
    """With a space either side each column would run past the pane's edge, where a cut number reads as another
    (a max of 0.03038 as 0): the columns close up to one space between them."""
    import asyncio

    from initlab.tui.widgets.numbers import NumbersTable

    async def run():
        app = table_app(70)
        async with app.run_test(size=(80, 20)) as pilot:
            table = app.query_one(NumbersTable)
            cols = ["layer", "min", "5%", "25%", "median", "75%", "95%", "max"]
            table.show(cols, [["12", "-0.03523", "-0.02101", "-0.00512", "0.0001234", "0.005188", "0.01839",
                               "0.03038"]])
            await pilot.pause()
            assert table.cell_padding == 0 and table.virtual_size.width <= 70
            table.show(cols[:3], [["1", "-0.5", "0.2"]])
            await pilot.pause()
            assert table.cell_padding == 1

    asyncio.run(run())


def test_a_key_column_wider_than_half_the_pane_is_cut_not_run_past_the_edge():
    """Long names as the key column (a user's module paths, a sweep's values): cut to half the pane, the numbers
    beside them whole, a page at a time."""
    import asyncio

    cols = ["layer", "a std", "grad std", "w std"]
    names = ["encoder.blocks.0.attention.output.dense", "encoder.blocks.11.attention.output.dense"]
    rows = [[n, "0.9812", "1.018e-10", "0.0442"] for n in names]

    async def run():
        app = table_app(40)
        async with app.run_test(size=(60, 20)) as pilot:
            table = await shown(pilot, app, cols, rows)
            assert table.virtual_size.width <= 40 and len(table.columns_shown) >= 2
            cells = [[str(c) for c in table.get_row_at(r)] for r in range(2)]
            # the start and end the paths share give way: what tells the layers apart stays
            assert [row[0] for row in cells] == ["…0…", "…11…"]
            for row in cells:
                assert row[1:len(table.columns_shown)] == ["0.9812", "1.018e-10", "0.0442"][:len(table.columns_shown) - 1]
            # values that share nothing keep their starts and their ends
            table.show(["init"] + cols[1:], [["kaiming_uniform_fan_out_relu", "1", "2", "3"],
                                             ["xavier_normal_with_gain_five_thirds", "4", "5", "6"]])
            await pilot.pause()
            firsts = [str(table.get_row_at(r)[0]) for r in range(2)]
            assert table.virtual_size.width <= 40 and all("…" in f and len(f) <= 20 for f in firsts)
            assert firsts[0].startswith("kaim") and firsts[1].endswith("irds")

    asyncio.run(run())


def test_a_cut_cell_keeps_whole_parts_tells_cells_apart_and_fits_its_cells():
    from rich.cells import cell_len

    from initlab.tui.widgets.numbers import cut_column

    # the shared start and end give way only at a separator: a layer's number stays whole
    assert cut_column([f"model.layers.{i}.mlp" for i in (0, 10, 20, 30)], 10) == ["…0…", "…10…", "…20…", "…30…"]
    assert cut_column(["encoder.layer", "encoder.layer.1"], 8) == ["…layer", "…layer.1"]      # never an empty cell
    # a decimal point or an exponent's sign is no place to cut: the numbers stay whole
    assert cut_column(["lr=1e-05 init=kaiming_normal", "lr=3e-05 init=kaiming_normal"], 8) == ["…1e-05…", "…3e-05…"]
    assert cut_column(["0.123456", "0.123999"], 7) == ["0.1…456", "0.1…999"]
    assert cut_column(["kaiming_uniform", "xavier_uniform"], 8) == ["kaiming…", "xavier…"]
    assert cut_column(["kaiming_uniform", "orthogonal"], 8) == ["kaim…orm", "orth…nal"]   # nothing shared
    for text, width in (("漢字漢字漢字漢字漢字", 5), ("漢字漢字漢字漢字漢字", 6), ("abcdefgh", 4), ("abc", 1)):
        (cut,) = cut_column([text], width)
        assert cell_len(cut) <= width and "…" in cut and text.startswith(cut.split("…")[0]), (text, width, cut)


def test_a_numbers_table_too_wide_even_closed_up_shows_whole_columns_a_page_at_a_time():
    """A sweep's table at 60 columns: the first column stays, the others come a page of whole columns at a time,
    left and right turn the pages, and no number is cut at the edge."""
    import asyncio

    cols = ["point", "depth", "init", "verdict", "dL/dz first/last", "log10", "last a std", "chi_1", "phase",
            "theory log10"]
    rows = [[str(i), "10", "xavier_uniform", "vanishing", "1.018e-10", "-9.992", "1.018e-10", "0.7321", "ordered",
             "-9.874"] for i in range(3)]

    async def run():
        app = table_app(60)
        async with app.run_test(size=(80, 20)) as pilot:
            table = await shown(pilot, app, cols, rows)
            seen = []
            for _ in range(len(cols)):
                assert table.columns_shown[0] == "point" and table.virtual_size.width <= 60
                page = table.columns_shown[1:]
                assert page and page == cols[cols.index(page[0]):cols.index(page[0]) + len(page)]
                # every shown cell is the whole value, and the last column says how many are left out
                for r, row in enumerate(rows):
                    cells = [str(c) for c in table.get_row_at(r)]
                    assert cells[:-1] == [row[cols.index(c)] for c in table.columns_shown]
                labels = [str(c.label) for c in table.columns.values()]
                # how many lie either way, with the arrow to them
                before = cols.index(page[0]) - 1
                after = len(cols) - cols.index(page[-1]) - 1
                assert before + after == len(cols) - len(table.columns_shown)
                assert labels[-1] == (f"← {before}  {after} →" if before and after else
                                      f"{after} more →" if after else f"← {before} more")
                seen += [c for c in page if c not in seen]
                await pilot.press("right")
                await pilot.pause()
            assert seen == cols[1:]             # the pages cover every column once turned to the end
            for _ in range(len(cols)):
                await pilot.press("left")
            await pilot.pause()
            assert table.columns_shown[1] == "depth"          # and back to the first page
            table.show(cols, rows, keys=2)          # a sweep of two settings keeps both on every page
            await pilot.pause()
            for _ in range(3):
                assert table.columns_shown[:2] == ["point", "depth"] and len(table.columns_shown) > 2
                await pilot.press("right")
                await pilot.pause()
            table.show(cols[:3], [r[:3] for r in rows])     # a table that fits: every column, nothing to page
            await pilot.pause()
            assert table.columns_shown == cols[:3] and table.cell_padding == 1

    asyncio.run(run())


def test_the_sweep_heatmaps_keys_stay_whole_in_a_narrow_pane():
    """The chi_1 = 1 mark's key and the pending key: beside the title and in the legend where they fit, else on
    lines of their own, from the pane's edge when the grid's indent would push them past it."""
    import math

    from initlab.engine import sweep
    from initlab.tui.widgets.plot import _FALLBACK
    from initlab.tui.widgets.sweep_chart import heatmap_lines

    p = sweep.get_preset("edge-of-chaos-tanh")
    vary = {k: list(v) for k, v in p.vary.items()}
    line = sweep.critical_line_for(p.config, vary)
    hm = {"x_field": "sigma_w", "y_field": "sigma_b", "x": vary["sigma_w"], "y": vary["sigma_b"],
          "metric": "log10_gradz_ratio",
          "values": [[math.log10(sw) for sw in vary["sigma_w"]] for _ in vary["sigma_b"]]}
    wide = [t.plain for t in heatmap_lines(hm, line, 200, dict(_FALLBACK))]
    assert "chi_1 = 1 (edge of chaos)" in wide[0]
    assert wide[-1].endswith("· pending, 0 or not finite")
    assert "left out" not in "\n".join(wide)
    # ends within the verdict's three decades are leanings, not a vanishing or an exploding net
    assert "-0.301 first layer smaller  0  0.301 first layer larger" in wide[-1]
    steep = {**hm, "values": [[-4.0, 0.5] + [0.0] * 6 for _ in vary["sigma_b"]]}
    assert "-4 vanishing  0  4 exploding" in heatmap_lines(steep, line, 200, dict(_FALLBACK))[-1].plain
    assert " -0.301  0  0.301 " in heatmap_lines({**hm, "metric": "last_a_std"}, line, 200, dict(_FALLBACK))[-1].plain
    empty = {**hm, "values": [[None] * 8 for _ in vary["sigma_b"]]}      # nothing finite yet: no scale to name
    assert heatmap_lines(empty, line, 200, dict(_FALLBACK))[-1].plain.split() == \
        ["0", "0", "0", "·", "pending,", "0", "or", "not", "finite"]
    for width in (60, 36):
        lines = [t.plain for t in heatmap_lines(hm, line, width, dict(_FALLBACK))]
        assert "chi_1" not in lines[0]
        # which axis is which, whole on a line of its own where the title would be cut
        assert lines[1] == " sigma_b^2 down, sigma_w^2 across" and lines[0].endswith("first layer over last:")
        # the columns left out are said, in full (the header would read as the whole grid)
        hidden = 8 - len(lines[2].split()[1:])
        at = next(k for k, ln in enumerate(lines) if ln.strip().startswith(f"{hidden} of 8 "))
        assert hidden > 0 and all(len(ln) <= width for ln in lines[at:])
        assert " ".join(ln.strip() for ln in lines[at:]) == \
            f"{hidden} of 8 sigma_w^2 columns left out for room; n lists every point"
        lines = lines[:at]
        assert lines[-1].strip() == "┃ chi_1 = 1 (edge of chaos)" and len(lines[-1]) <= width
        assert lines[-2].strip() == "· pending, 0 or not finite" and len(lines[-2]) <= width


def test_jacobian_bins_of_a_narrow_spread_are_labelled_apart_and_indistinguishable_ones_merged():
    from initlab.tui.widgets.jacobian_chart import bin_labels, same_label_merged

    # a spread of 2e-6 around 1 (an orthogonal linear net in float32 weights) read "1 .. 1" in every bin
    edges = [math.log10(1 - 1e-6 + 2e-7 * i) for i in range(11)]
    labels = bin_labels(edges, 20)
    assert len(set(labels)) == 10 and all(len(s) <= 20 for s in labels)
    assert [float(s.split()[-1]) for s in labels] == sorted(float(s.split()[-1]) for s in labels)
    assert bin_labels([-1.0, 0.0, 1.0], 20) == ["0.1 .. 1", "1 .. 10"]
    # edges no 12 digits tell apart: one bin holds their counts
    tiny = [1e-16 * i for i in range(5)]
    merged = same_label_merged(bin_labels(tiny, 20), [1, 2, 3, 4])
    assert merged == (["1 .. 1"], [10])
    # too wide for both edges even cut short: the lower edge alone, within the label's room
    labels = bin_labels([math.log10(1e-5) + 1e-10 * i for i in range(21)], 20)
    assert all(len(s) <= 20 for s in labels) and labels[0].startswith("from ")


def test_a_pinned_baselines_numbers_stand_beside_the_runs_and_its_key_names_it():
    from initlab.tui.widgets.layer_charts import BackwardChart

    now = tuple({"a_std": 0.5 ** i, "grad_w_absmean": 0.1 * i + 0.1, "grad_z_std": 1.0} for i in range(4))
    then = tuple({"a_std": 2.0 ** i, "grad_w_absmean": 0.3, "grad_z_std": 1.0} for i in range(4))
    fwd = ForwardChart()
    fwd.data = LayerData(now, 1.0, then, "probe", None, "probe tanh xavier_uniform")
    cols, rows = fwd.table()
    assert cols[:3] == ["layer", "a_std", "baseline"] and [r[2] for r in rows] == [fmt(2.0 ** i) for i in range(4)]
    assert "baseline a_std (probe tanh xavier_uniform)" in fwd.draw(120, 20).plain
    back = BackwardChart()
    back.data = fwd.data
    cols, rows = back.table()
    assert cols[:3] == ["layer", "mean|dL/dW|", "baseline"] and [r[2] for r in rows] == ["0.3"] * 4
    fwd.data = LayerData(now, 1.0)          # none pinned: the table as it was
    assert "baseline" not in fwd.table()[0] and "baseline" not in fwd.draw(120, 20).plain


def test_the_status_line_names_a_width_check_once():
    from initlab.tui.beyond import progress_state

    assert progress_state(Progress("widths", step=1, total_steps=4)) == "width check 1/4 widths"
    assert progress_state(Progress("sweep", step=3, total_steps=40)) == "sweep 3/40 points"
    # a training of several seeds says which run the epoch is of
    one = Progress("train", step=5, total_steps=70, epoch=1, epochs=20)
    assert progress_state(one) == "training epoch 1/20 step 5/70"
    assert progress_state(replace(one, run=1, runs=2)) == "training run 2/2 epoch 1/20 step 5/70"


def test_a_heatmap_of_missing_values_keeps_every_layers_row_and_its_key_a_line_of_its_own():
    from initlab.tui.widgets.heatmap import HeatmapChart

    heat = HeatmapChart()
    heat.data = ((0, (None, None, None)), (5, (None, None, None)))
    pic = heat.draw(12, 6).plain
    assert all(f"layer {i}" in pic for i in range(3)) and "every value is zero or non-finite" in pic
    heat.data = tuple((s, (-1.0 - s, -2.0, None)) for s in range(0, 40, 5))
    narrow, wide = heat.draw(50, 12).plain.splitlines(), heat.draw(120, 12).plain.splitlines()
    assert narrow[-1] == " × zero or non-finite" and "× zero or non-finite" in wide[-1] and len(narrow) <= 12


def test_a_trainings_heatmap_says_its_steps_are_sampled_and_an_empty_spectrum_lists_no_bins():
    from initlab.engine.jacobian import jacobian_spectrum
    from initlab.engine.widths import width_check
    from initlab.tui.widgets.heatmap import HeatmapChart
    from initlab.tui.widgets.jacobian_chart import JacobianChart
    from initlab.tui.widgets.widths_chart import WidthsChart

    heat = HeatmapChart()
    heat.data = tuple((s, (-1.0, -2.0)) for s in range(0, 40, 5))
    assert "(sampled steps; the end state is in Backward)" in heat.draw(120, 12).plain
    assert "sampled" not in heat.draw(50, 12).plain          # no room: the axis alone
    jac = JacobianChart()
    jac.data = jacobian_spectrum(Config(depth=3, width=8, in_features=4, out_features=4, init="zeros", device="cpu"))
    cols, rows = jac.table()
    assert rows[0][0] == "max" and ["zeros", "4"] in rows         # no made-up bins before the figures
    widths = WidthsChart()
    widths.data = width_check(Config(depth=3, width=16, batch=8, in_features=8, out_features=4, device="cpu",
                                     init="zeros"), [8, 16, 32], 2)
    assert "step 0: no mean |a| above 0" in widths.draw(100, 20).plain


def test_the_help_wraps_each_description_under_itself():
    from rich.console import Console

    from initlab.tui.widgets.help_screen import KEYS, help_content

    console = Console(width=60, record=True, color_system=None)
    console.print(help_content())
    lines = console.export_text().splitlines()
    start = lines.index("Keys") + 2
    body = lines[start:lines.index("Charts")]
    indent = lines[start].index(KEYS[0][1][:10])
    # every line of the keys' table is a key's first line or a continuation under the description's column
    assert all(ln.startswith(" " * indent) or ln[:indent].strip() in {k for k, _ in KEYS} for ln in body if ln)
    assert len([ln for ln in body if ln.startswith(" " * indent)]) > 0        # some did wrap at 60


def test_the_widths_key_names_exactly_the_layers_the_panels_cover_at_every_size():
    """A layer is said to lie under another only when no marker of it is left in any panel: read from what was
    drawn, at the rows a short pane really leaves (an estimate had layer 0 drawn nowhere and not named)."""
    from initlab.engine.widths import width_check
    from initlab.tui.widgets import widths_chart as W

    r = width_check(Config(depth=20, width=64, in_features=64, out_features=64, batch=16, device="cpu", seed=3),
                    [64, 128, 256, 512], 5)
    chart = W.WidthsChart()
    chart.data = r
    layers = W.sample(r["layers"], len(W.GLYPHS))
    covered_somewhere = False
    for height in range(8, 40):
        for width in (60, 78, 120):
            lines = chart.draw(width, height).plain.splitlines()
            assert len(lines) <= height
            if any("too short" in ln for ln in lines):
                continue
            inside = "".join(ln[min(k for k in (ln.find("│"), ln.find("┤")) if k >= 0) + 1:] for ln in lines
                             if "│" in ln or "┤" in ln)
            text = "\n".join(lines)
            for g, layer in enumerate(layers):
                marked = f"{W.GLYPHS[g]} layer {layer} (under" in text
                covered_somewhere |= marked
                assert marked != (W.GLYPHS[g] in inside), (width, height, layer)
                if marked:      # the layer named is one whose marks are seen
                    under = text.split(f"{W.GLYPHS[g]} layer {layer} (under layer ")[1].split(")")[0]
                    assert W.GLYPHS[layers.index(int(under))] in inside, (width, height, layer, under)
    assert covered_somewhere
