"""Sweeps: the probe (or a short training) at every point of a grid of settings, yielded one run at a time.

sweep() is a generator, so a caller shows progress and may stop between runs; aggregate() turns the runs done so
far into one row per grid point (mean and std over seeds when the seed varies), heatmap() lays two varied
settings out as a matrix. Everything returned is plain lists, dicts and floats.
"""
from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator

from .reads import read_nowhere
from .textplot import fmt
from .spec import FIELDS, Config, SpecError, known_setting, parse_checked, validate

# Numbers every run reports; aggregate() gives each a mean and, over several seeds, a std.
METRICS = ("first_last_gradz_ratio", "log10_gradz_ratio", "first_last_grad_ratio", "last_a_std",
           "chi1", "predicted_log10_gradz_ratio", "train_loss", "test_loss", "seconds")
# ratios spanning decades over the seeds: their mean is geometric (10 ** the mean of log10), as the log10 columns
# beside them, and their spread is of log10 (<ratio>_log10_std), not of values one seed would dominate
RATIOS = ("first_last_gradz_ratio", "first_last_grad_ratio")
SEVERITY = {"nonfinite": 4, "exploding": 3, "vanishing": 2, "unknown": 1, "stable": 0}   # a tie's verdict: the graver


def verdict_cell(row: dict[str, Any]) -> str:
    """A grid point's verdict as a table shows it: with how many of its seeds gave it, where they did not agree
    (a point of 5 seeds, 2 of them vanishing, read "stable" alone)."""
    counts = row.get("verdicts") or {}
    if len(counts) < 2:
        return str(row.get("verdict"))
    return f"{row.get('verdict')} {counts.get(row.get('verdict'), 0)}/{row.get('runs', sum(counts.values()))}"
MAX_POINTS = 10_000
SQUARED = {"sigma_w": "sigma_w^2", "sigma_b": "sigma_b^2"}   # the phase diagram's axes are the variances

_EDGE_SW2 = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
_EDGE_SB2 = (0.0, 0.05, 0.1, 0.2, 0.3)


@dataclass(frozen=True)
class SweepPreset:
    name: str
    summary: str
    config: Config
    vary: dict[str, tuple[Any, ...]] = field(default_factory=dict)


SWEEP_PRESETS: dict[str, SweepPreset] = {p.name: p for p in [
    SweepPreset(
        "edge-of-chaos-tanh",
        "phase diagram: log10 first/last dL/dz of a 64-layer tanh net, scaled-normal init, over sigma_w^2 in "
        "0.5..4 x sigma_b^2 in 0..0.3, with the critical line chi_1 = 1",
        Config(depth=64, width=128, in_features=128, out_features=128, activation="tanh", init="scaled_normal",
               bias=True, batch=32, seed=0),
        {"sigma_w": tuple(math.sqrt(v) for v in _EDGE_SW2), "sigma_b": tuple(math.sqrt(v) for v in _EDGE_SB2)}),
]}


def get_preset(name: str) -> SweepPreset:
    if name not in SWEEP_PRESETS:
        raise SpecError("preset", name, "a sweep preset: " + ", ".join(SWEEP_PRESETS))
    return SWEEP_PRESETS[name]


def parse_vary(items: list[str]) -> dict[str, list[Any]]:
    """["depth=10,20", "init=xavier_uniform,kaiming_normal"] -> {"depth": [10, 20], "init": [...]}, each value
    parsed and checked as its field's flag would be. A tuple field (poly_w) separates its values with ';'."""
    out: dict[str, list[Any]] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name:
            raise SpecError("vary", item, "NAME=V1,V2,... with NAME a setting")
        if name not in FIELDS:
            raise SpecError("vary", name, known_setting(name))
        if name in out:
            raise SpecError("vary", name, "each setting varied once")
        parts = raw.split(";" if FIELDS[name].kind is tuple else ",")
        if not raw.strip() or any(not p.strip() for p in parts):
            sep = ";" if FIELDS[name].kind is tuple else ","
            auto = "; auto for the activation's gain" if name == "gain" else ""
            raise SpecError(name, raw, f"values separated by '{sep}', none of them empty{auto}")
        values = []
        for p in parts:
            v = parse_checked(name, p)
            if v not in values:
                values.append(v)
        out[name] = values
    return out


def grid(vary: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the varied values, the seed varying fastest; more than MAX_POINTS are refused before any
    is made (a grid of millions would fill the memory first)."""
    total = math.prod(len(v) for v in vary.values())
    if total > MAX_POINTS:
        raise SpecError("vary", f"{total} runs", f"at most {MAX_POINTS} runs in one sweep")
    names = [n for n in vary if n != "seed"] + (["seed"] if "seed" in vary else [])
    return [dict(zip(names, combo)) for combo in itertools.product(*(vary[n] for n in names))]


def checked_vary(vary: dict[str, Any]) -> dict[str, list[Any]]:
    """A grid made in Python: its names must be settings, its values a list (or tuple, or array) of that setting's
    values (text parsed as typed, numpy's numbers as Python's)."""
    out = {}
    for name, values in vary.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise SpecError(name, values, "a list of values to vary it over (a grid's values, such as [2, 4, 8])")
        out[name] = [parse_checked(name, v) for v in values]
    return out


def point_configs(base: Config, vary: dict[str, list[Any]], train: bool = False, train_hint: str = "--train"
                  ) -> list[tuple[dict[str, Any], Config]]:
    """(values, config) for every run, all validated and checked against the device's memory before any runs (a
    bad combination fails at once); for trainings, every data file of the grid is read once too, so that a bad one
    is not met after the others ran. `train_hint` says how to ask for trainings where a probe reads a setting not."""
    from . import device as devices

    vary = checked_vary(vary)
    runs = grid(vary)
    out = []
    for values in runs:
        cfg = base.replace(**values)
        validate(cfg)
        out.append((values, cfg))
    for name in vary:
        why = read_nowhere((cfg for _, cfg in out), name, train, train_hint)
        if why:        # every value would draw the same runs
            raise SpecError("vary", name, f"a setting these runs read ({why})")
    for _, cfg in out:
        devices.check_fits(cfg, devices.resolve(cfg.device), training=train)
    if train:
        from .data import load_file
        from .spec import BUILTIN_DATA

        for path in dict.fromkeys(cfg.data for _, cfg in out if cfg.data not in BUILTIN_DATA):
            load_file(path)
    return out


THEORY_METRICS = ("chi1", "predicted_log10_gradz_ratio")
THEORY_NET = "a scaled_normal init, no norm, no residual, no dropout"


def described_by_theory(cfg: Config) -> bool:
    """Whether mean field describes this net: the plain scaled-normal MLP (THEORY_NET)."""
    return cfg.init == "scaled_normal" and cfg.norm == "none" and not cfg.residual and cfg.dropout == 0


def theory_numbers(cfg: Config) -> dict[str, Any]:
    """Mean-field chi_1 and phase at the fixed point, and the predicted log10 first/last dL/dz for this finite
    net (input N(0, 1), so the first pre-activation variance is sigma_w^2 + sigma_b^2). Only for the plain
    scaled-normal MLP the theory describes: no norm, no residual, no dropout."""
    if not described_by_theory(cfg):
        return {}
    from . import theory

    sb = cfg.sigma_b if cfg.bias else 0.0
    mf = theory.mean_field(cfg.activation, cfg.sigma_w, sb, cfg.slope, pair=False)     # chi_1 and the phase only
    pred = theory.predicted_log10_grad_ratio(cfg.activation, cfg.sigma_w, sb, cfg.depth, cfg.sigma_w ** 2 + sb * sb,
                                             cfg.out_features / cfg.width, cfg.slope)
    return {"chi1": mf["chi1"], "phase": mf["phase"], "predicted_log10_gradz_ratio": pred}


def _log10(x: float | None) -> float | None:
    if x is None or not math.isfinite(x) or x <= 0:
        return None
    return math.log10(x)


def _layer_metrics(layers: list[dict[str, Any]], input_std: float | None, batch: int) -> dict[str, Any]:
    from .verdict import verdict

    v = verdict(layers, input_std, batch)
    return {"verdict": v["kind"], "from_layer": v["from_layer"],
            "first_last_gradz_ratio": v["first_last_gradz_ratio"],
            "log10_gradz_ratio": _log10(v["first_last_gradz_ratio"]),
            "first_last_grad_ratio": v["first_last_grad_ratio"], "last_a_std": layers[-1].get("a_std")}


def probe_point(cfg: Config, check: Callable[[], None] | None = None) -> dict[str, Any]:
    """The probe's verdict and headline numbers for one configuration."""
    from .probe import run_probe

    res = run_probe(cfg, distributions=False, check=check)
    return {**_layer_metrics(res.layers, res.input_std, cfg.batch), "device": res.device}


def train_point(cfg: Config, check: Callable[[], None] | None = None) -> dict[str, Any]:
    """A short training; the verdict and numbers come from the probe statistics taken after it. A `check` that
    raises stops the training at its next step, and the point with it (a point stopped short is no point)."""
    import torch

    from . import data as datasets
    from .session import JobCancelled
    from .train import run_training

    res = run_training(cfg, check=check)
    if res["stopped"] == "cancelled":
        raise JobCancelled()
    layers = res["final"]["layers"]
    x = datasets.make(cfg, torch.device("cpu")).x_train[: cfg.batch]
    out = _layer_metrics(layers, float(x.std(correction=0)), cfg.batch) if layers else {"verdict": "nonfinite"}
    if res["stopped"] == "nonfinite":     # where the training found it, not where its last numbers point
        out["verdict"] = "nonfinite"
        out["from_layer"] = (res.get("nonfinite") or {}).get("layer")
    last = res["epochs"][-1] if res["epochs"] else {}
    out.update(train_loss=last.get("train_loss"), test_loss=last.get("test_loss"), stopped=res["stopped"],
               device=res["device"], in_features=res["config"]["in_features"],
               out_features=res["config"]["out_features"])      # a training's sizes follow its data
    return out


def sweep(base: Config, vary: dict[str, list[Any]], train: bool = False,
          check: Callable[[], None] | None = None, plan: list[tuple[dict, Config]] | None = None
          ) -> Iterator[dict[str, Any]]:
    """Run every point of the grid, yielding after each run a dict: index, total, values (the varied settings),
    verdict and the METRICS. Stop iterating to cancel, or have `check` raise (it is called within each point's
    probe or training too); the runs yielded so far stand on their own. `plan`: point_configs' own result, where
    the caller has it already (each point's check reads its data file)."""
    plan = plan if plan is not None else point_configs(base, vary, train)
    from . import probe, train as training      # noqa: F401  imported before the first point's clock starts
    for i, (values, cfg) in enumerate(plan):
        t0 = time.perf_counter()
        res = train_point(cfg, check) if train else probe_point(cfg, check)
        res.update(theory_numbers(cfg))
        res["seconds"] = time.perf_counter() - t0
        yield {"index": i, "total": len(plan), "values": values, **res}


def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:         # a sample std of one value has no value (the other seeds went non-finite)
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _geometric(xs: list[float]) -> tuple[float | None, float | None]:
    """A ratio's geometric mean over the seeds and the sample std of its log10. A seed's ratio of 0 (its first
    layer's gradient underflowed) makes the mean 0, as it makes the product: left out, the mean of the others hid
    that seed's complete vanishing behind a healthier figure. One run's ratio is itself."""
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if len(xs) == 1:        # itself, not 10 ** log10 of it, a rounding away
        return xs[0], None
    if any(x == 0 for x in xs):
        return 0.0, None
    mean, std = _mean_std([_log10(x) for x in xs])
    return (None if mean is None else 10.0 ** mean), std


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per grid point, in run order: the varied settings (seed excepted), the verdict most runs
    gave (verdicts counts them all), and each metric's mean over the runs that stayed finite (nonfinite_runs
    counts the others), with <metric>_std (sample std) over several seeds; a ratio's mean is geometric and its
    spread <ratio>_log10_std, of its log10."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        key = tuple((k, repr(v)) for k, v in r["values"].items() if k != "seed")
        groups.setdefault(key, []).append(r)
    rows = []
    for members in groups.values():
        row = {k: v for k, v in members[0]["values"].items() if k != "seed"}
        counts = Counter(m.get("verdict") for m in members)
        # the most runs' verdict; a tie goes to the graver, whatever order the seeds were listed in
        row["verdict"] = max(counts, key=lambda k: (counts[k], SEVERITY.get(k, 0)))
        row["runs"] = len(members)
        if len(members) > 1:
            row["verdicts"] = dict(counts)
        if "phase" in members[0]:
            row["phase"] = members[0]["phase"]
        # a run that went non-finite has no numbers to average: its last values are those of the blow-up
        finite = [m for m in members if m.get("verdict") != "nonfinite"]
        row["nonfinite_runs"] = len(members) - len(finite)     # 0 too: a count, never a value not computed
        for name in METRICS:
            if not any(name in m for m in members):
                continue
            # a run's time is its time however it ended; the figures are of the runs that stayed finite
            values = [m.get(name) for m in (members if name == "seconds" else finite)]
            mean, std = _geometric(values) if name in RATIOS else _mean_std(values)
            row[name] = mean
            if len(members) > 1:
                row[name + ("_log10_std" if name in RATIOS else "_std")] = std
        if row.get("first_last_gradz_ratio") == 0 and "log10_gradz_ratio" in row:
            # the log of a mean of 0: none (-inf), not the mean of the other seeds' logs
            row["log10_gradz_ratio"] = None
            if "log10_gradz_ratio_std" in row:
                row["log10_gradz_ratio_std"] = None
        rows.append(row)
    return rows


def varied_axes(vary: dict[str, list[Any]]) -> list[str]:
    return [n for n in vary if n != "seed"]


def heatmap(rows: list[dict[str, Any]], vary: dict[str, list[Any]], metric: str = "log10_gradz_ratio",
            x: str | None = None, y: str | None = None) -> dict[str, Any] | None:
    """values[j][i] = the metric at x = xs[i], y = ys[j] (None where not run yet); None unless two settings vary."""
    axes = varied_axes(vary)
    if len(axes) != 2 and (x is None or y is None):
        return None
    x = x or axes[0]
    y = y or axes[1]
    xs, ys = list(vary[x]), list(vary[y])
    values: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for r in rows:
        if x in r and y in r and r[x] in xs and r[y] in ys:
            values[ys.index(r[y])][xs.index(r[x])] = r.get(metric)
    return {"x_field": x, "y_field": y, "x": xs, "y": ys, "metric": metric, "values": values}


def critical_line_for(base: Config, vary: dict[str, list[Any]], n: int = 21) -> list[dict[str, Any]] | None:
    """The theoretical edge of chaos over the swept sigma_b^2 range, when sigma_w and sigma_b vary on a
    scaled-normal net: points (sigma_b2, sigma_w2) with chi_1 = 1."""
    if base.init != "scaled_normal" or "sigma_w" not in vary or "sigma_b" not in vary:
        return None
    if "activation" in vary:
        return None
    sb2 = [v * v for v in vary["sigma_b"]]
    lo, hi = min(sb2), max(sb2)
    points = sorted({lo + (hi - lo) * k / (n - 1) for k in range(n)} | set(sb2)) if hi > lo else [lo]
    return [dict(d) for d in _critical_line(base.activation, tuple(points), base.slope)]


@lru_cache(maxsize=32)
def _critical_line(activation: str, sb2: tuple[float, ...], slope: float) -> tuple:
    from . import theory

    return tuple(tuple(d.items()) for d in theory.critical_line(activation, list(sb2), slope))


def summary(base: Config, vary: dict[str, list[Any]], runs: list[dict[str, Any]], train: bool = False
            ) -> dict[str, Any]:
    """The whole result so far: settings, runs, per-point rows, heatmap and critical line where they apply."""
    rows = aggregate(runs)
    total = len(grid(vary))
    settings = base.to_dict()
    sizes = {(r["in_features"], r["out_features"]) for r in runs if "in_features" in r}
    if train and len(sizes) == 1:       # the sizes the trainings ran with, which follow the data, not the base's
        settings["in_features"], settings["out_features"] = sizes.pop()
    out = {"base": settings, "vary": {k: list(v) for k, v in vary.items()}, "mode": "train" if train else
           "probe", "total": total, "done": len(runs), "complete": len(runs) == total, "points": rows,
           "runs": runs}
    hm = heatmap(rows, vary)
    if hm is not None:
        out["heatmap"] = hm
    line = critical_line_for(base, vary)
    if line is not None:
        out["critical_line"] = line
    return out


@dataclass
class SweepJob:
    """A sweep as a Session job: a Progress and a LogLine after every run; a cancel keeps the runs done."""

    config: Config
    vary: dict[str, list[Any]]
    train: bool = False
    name: str = "sweep"

    @property
    def total_steps(self) -> int:
        return len(grid(self.vary))

    def run(self, ctx) -> dict[str, Any]:
        from .events import LogLine, Progress
        from .inits import grid_gain_note

        runs: list[dict[str, Any]] = []
        vary = checked_vary(self.vary)
        ctx.partial = summary(self.config, vary, runs, self.train)
        plan = point_configs(self.config, vary, self.train)
        note = grid_gain_note([c for _, c in plan])
        if note:        # a grid of activations under an empty gain: each gets its own, which the table does not show
            ctx.emit(LogLine(self.name, "info", note))
        for r in sweep(self.config, vary, self.train, ctx.check, plan=plan):
            runs.append(r)
            ctx.partial = summary(self.config, vary, runs, self.train)
            ctx.emit(Progress(self.name, step=r["index"] + 1, total_steps=r["total"]))
            ctx.emit(LogLine(self.name, "info", describe_run(r)))
            ctx.check()
        return ctx.partial


def value_text(name: str, value: Any) -> str:
    """A varied setting's value as the progress lines, tables and reports give it: floats to 4 significant digits,
    a pair of numbers as a list ([1, 2], not a tuple's repr), an automatic gain as auto (not None, nor the '-' of a
    value not measured)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None and name == "gain":
        return "auto"
    if isinstance(value, (tuple, list)):
        return f"[{', '.join(f'{v:.4g}' if isinstance(v, float) else str(v) for v in value)}]"
    return str(value)


def setting_text(name: str, value: Any) -> str:
    """name=value for a run's progress line."""
    return f"{name}={value_text(name, value)}"


def describe_run(r: dict[str, Any]) -> str:
    """One line for a finished run: where it is, the settings, the verdict and the gradient ratio."""
    vals = " ".join(setting_text(k, v) for k, v in r["values"].items())
    ratio = r.get("first_last_gradz_ratio")
    if r.get("verdict") == "nonfinite":     # the ratio of a blown-up net's last numbers: the table leaves it out too
        at = r.get("from_layer")
        what = "nonfinite" + (f" from layer {at}" if at is not None else "")
    else:
        what = f"{r.get('verdict')}, first/last dL/dz " + (fmt(ratio) if isinstance(ratio, float)
                                                             and math.isfinite(ratio) else "-")     # as the table
    return f"[{r['index'] + 1}/{r['total']}] {vals}: {what} ({r['seconds']:.2f} s)"
