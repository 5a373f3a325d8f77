"""Markdown reports and CSV rows for every result: probe, train, sweep, theory, jacobian, widths.

A report holds the settings, the verdict (a probe of the MLP or of a user's model), a per-layer table and the
figures as text bar charts.

`csv_rows(kind, result)` and `markdown(kind, result)` read the JSON a command prints; `write(kind, result, csv=...,
report=...)` writes either file atomically through engine/export.py.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .export import dumps, write_csv, write_text
from .reads import read_by_widths
from .textplot import bar_chart, fmt, fmt_near_one
from .verdict import stable_text, symmetry_note, verdict as verdict_of

KINDS = ("probe", "train", "sweep", "theory", "jacobian", "widths")
MLP_COLUMNS = ("index", "name", "fan_in", "fan_out", "a_mean", "a_std", "saturated_frac", "dead_frac",
               "grad_z_std", "grad_w_absmean", "grad_to_weight", "fwd_var_ratio", "bwd_var_ratio", "distinct_units")
USER_COLUMNS = ("index", "name", "kind", "shape", "calls", "a_mean", "a_std", "a_min", "a_max", "nonfinite_frac",
                "grad_z_std", "grad_w_absmean", "w_std", "grad_to_weight")
TRAIN_LAYER_COLUMNS = ("index", "a_std", "saturated_frac", "dead_frac", "grad_z_std", "grad_w_absmean",
                       "grad_to_weight", "fwd_var_ratio", "bwd_var_ratio", "distinct_units")
EPOCH_COLUMNS = ("epoch", "train_loss", "test_loss", "train_acc", "test_acc")
LAYER_FIGURES = (("a_std", "output std per layer (forward signal)"),
                 ("grad_z_std", "dL/dz std per layer (backward signal)"),
                 ("grad_w_absmean", "mean |dL/dW| per layer"))


# -- Markdown pieces -------------------------------------------------------------------------------------------

def _cell(v: Any) -> str:
    return fmt(v).replace("|", "\\|").replace("\n", " ")


def md_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of the given columns (those that no row has are left out)."""
    cols = [c for c in columns if any(c in r for r in rows)]
    if not rows or not cols:
        return "(none)"
    head = "| " + " | ".join(cols) + " |"
    rule = "| " + " | ".join("---" for _ in cols) + " |"
    body = ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join([head, rule] + body)


def pairs_table(pairs: dict[str, Any], head: str) -> str:
    """A two-column Markdown table: the names under `head`, their values under "value"."""
    return md_table([{head: k, "value": v} for k, v in pairs.items()], (head, "value"))


def settings_table(settings: dict[str, Any]) -> str:
    return pairs_table(settings, "setting")


def figures_table(figures: dict[str, Any]) -> str:
    return pairs_table(figures, "figure")


def figure(title: str, labels: Sequence[Any], values: Sequence[Any], log: bool = True) -> str:
    return f"### {title}\n\n```text\n{bar_chart(labels, values, log=log)}\n```"


def verdict_text(v: dict[str, Any] | None) -> str:
    if not v:
        return "(no verdict)"
    kind, at = v.get("kind"), v.get("from_layer")
    head = f"**{kind}**" + (f" from layer {at}" if at is not None else "")
    if kind == "stable":
        head += f": {stable_text(v)}"
    return (f"{head}\n\n- first/last mean |dL/dW| ratio: {fmt(v.get('first_last_grad_ratio'))}\n"
            f"- first/last dL/dz RMS ratio: {fmt(v.get('first_last_gradz_ratio'))}")


def document(title: str, sections: Sequence[tuple[str, str]]) -> str:
    parts = [f"# {title}"] + [f"## {h}\n\n{body}" for h, body in sections if body]
    return "\n\n".join(parts) + "\n"


def layer_figures(layers: Sequence[dict[str, Any]]) -> str:
    # a module named by its position ("0") is not labelled "0 0"
    labels = [str(r.get("index")) if str(r.get("name", "")) in ("", str(r.get("index")))
              else f"{r.get('index')} {r.get('name')}" for r in layers]
    figs = [figure(title, labels, [r.get(k) for r in layers]) for k, title in LAYER_FIGURES
            if any(r.get(k) is not None for r in layers)]
    return "\n\n".join(figs)


# -- probe -----------------------------------------------------------------------------------------------------

def _is_user(res: dict[str, Any]) -> bool:
    return "params" in res or "warnings" in res


def probe_csv(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per layer, every statistic a column."""
    return [dict(r) for r in res.get("layers", [])]


def probe_markdown(res: dict[str, Any]) -> str:
    user = _is_user(res)
    layers = res.get("layers", [])
    run = f"torch {res.get('torch')} on {res.get('device')}"
    summary = [run]
    if user:
        summary.append(f"model {res.get('model')}, inputs {', '.join(fmt(s) for s in res.get('inputs', []))}, "
                       f"loss from {res.get('loss_source')}")
    if res.get("loss") is not None:
        summary.append(f"loss {fmt(res.get('loss'))}")
    if res.get("first_nonfinite_layer") is not None:
        summary.append(f"first non-finite output at layer {res['first_nonfinite_layer']}")
    symmetry = symmetry_note(layers)        # a zero init's lesson, as the terminal and the log say it
    if symmetry:
        summary.append(symmetry)
    warnings = "\n".join(f"- {w['message']}" for w in res.get("warnings", []))
    return document("initlab probe report" + (f": {res.get('config', {}).get('model')}" if user else ""), [
        ("Settings", settings_table(res.get("config", {}))),
        ("Verdict", verdict_text(res.get("verdict")) + "\n\n" + "; ".join(summary)),
        ("Warnings", warnings if user else ""),
        ("Per-layer statistics", md_table(layers, USER_COLUMNS if user else MLP_COLUMNS)),
        ("Figures", layer_figures(layers)),
    ])


# -- train -----------------------------------------------------------------------------------------------------

def _runs(res: dict[str, Any]) -> list[dict[str, Any]]:
    return res.get("runs") or [res]


def train_csv(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One file, two tables told apart by the `table` column: a row per epoch ('epoch'), then a row per layer of
    the final statistics ('final_layer'); `run` and `seed` tell the runs of a several-seed preset apart."""
    rows: list[dict[str, Any]] = []
    for i, r in enumerate(_runs(res)):
        seed = r.get("config", {}).get("seed")
        rows += [{"table": "epoch", "run": i, "seed": seed, **{k: e.get(k) for k in EPOCH_COLUMNS}}
                 for e in r.get("epochs", [])]
    for i, r in enumerate(_runs(res)):
        seed = r.get("config", {}).get("seed")
        # the epoch columns stay in the header when no epoch ended (a run stopped in its first): one schema for all
        rows += [{"table": "final_layer", "run": i, "seed": seed, **dict.fromkeys(EPOCH_COLUMNS), **d}
                 for d in r.get("final", {}).get("layers", [])]
    return rows


def thinned_text(res: dict[str, Any]) -> str:
    """What a training's history left out, when it kept fewer epochs or sampled steps than the run had (a bounded
    series thins past its capacity), else ''."""
    epochs, steps = res.get("epochs") or [], res.get("steps") or []
    ran = epochs[-1]["epoch"] if epochs else 0
    sampled = res.get("steps_sampled") or 0
    parts = []
    if len(epochs) < ran:
        parts.append(f"{len(epochs)} of {ran} epochs")
    if len(steps) < sampled:
        parts.append(f"{len(steps)} of {sampled} sampled steps")
    if not parts:
        return ""
    return (f"the history keeps {' and '.join(parts)} (a series past its capacity keeps every other entry, the "
            f"first and the latest always)")


def _train_run(r: dict[str, Any]) -> str:
    epochs, final = r.get("epochs", []), r.get("final", {}).get("layers", [])
    outcome = [f"stopped: {r.get('stopped')} after {r.get('steps_done')} of {r.get('total_steps')} steps "
               f"({fmt(r.get('seconds'))} s, torch {r.get('torch')} on {r.get('device')})"]
    nf = r.get("nonfinite")
    if nf:
        outcome.append(f"non-finite {nf.get('tensor')} at step {nf.get('step')}"
                       + (f", layer {nf['layer']}" if nf.get("layer") is not None else ""))
    if epochs:
        last = epochs[-1]
        outcome.append(", ".join(f"{k.replace('_', ' ')} {fmt(last.get(k))}" for k in EPOCH_COLUMNS[1:]
                                 if last.get(k) is not None))
    thinned = thinned_text(r)
    if thinned:
        outcome.append(thinned)
    if final:
        # the forward reference (the data's std) is not in the result: this reads the backward signal alone
        v = r.get("final", {}).get("verdict") or verdict_of(final, None)
        outcome.append("gradient signal over the final layers: " + verdict_text(v))
        symmetry = symmetry_note(final) if r.get("stopped") == "finished" else None
        if symmetry:
            outcome.append(f"end state: {symmetry}")
    figs = []
    for key in ("train_loss", "test_loss"):
        if any(e.get(key) is not None for e in epochs):
            figs.append(figure(f"{key.replace('_', ' ')} per epoch", [e.get("epoch") for e in epochs],
                               [e.get(key) for e in epochs]))
    if final:
        figs.append(layer_figures(final))
    # a run that stopped short has no end state: its last sampled step stands in, and says so
    steps = r.get("steps") or []
    head = "### Final per-layer statistics" if r.get("stopped") == "finished" else \
        f"### Per-layer statistics of the last sampled step (step {steps[-1].get('step')}; the run stopped " \
        f"{r.get('stopped')})" if steps else "### Per-layer statistics"
    return "\n\n".join([
        "\n\n".join(outcome), "### Epochs\n\n" + md_table(epochs, [c for c in EPOCH_COLUMNS
                                                                 if any(e.get(c) is not None for e in epochs)
                                                                 or not c.endswith("_acc")]),
        f"{head}\n\n" + md_table(final, TRAIN_LAYER_COLUMNS)] + figs)


def train_markdown(res: dict[str, Any]) -> str:
    runs = _runs(res)
    body = [(f"Run {i + 1} (seed {r.get('config', {}).get('seed')})" if len(runs) > 1 else "Outcome", _train_run(r))
            for i, r in enumerate(runs)]
    settings = dict(res.get("config", {}))
    if len(runs) > 1:       # the runs' own seeds, not only the first's
        settings["seed"] = ", ".join(str(r.get("config", {}).get("seed")) for r in runs)
    return document("initlab training report", [("Settings", settings_table(settings))] + body)


# -- sweep, theory, jacobian, widths ----------------------------------------------------------------------------

def _sweep_points(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid's points, each verdict count over several seeds as text ("stable 2, nonfinite 1")."""
    out = []
    for p in res.get("points", []):
        p = dict(p)
        if isinstance(p.get("verdicts"), dict):
            p["verdicts"] = ", ".join(f"{k} {n}" for k, n in p["verdicts"].items())
        out.append(p)
    return out


def sweep_csv(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per grid point: the varied settings, then the point's figures."""
    return _sweep_points(res)


def heatmap_text(hm: dict[str, Any]) -> str:
    """A sweep's heatmap as a text matrix, one row per y value, one column per x value; sigma_w and sigma_b as
    their squares, the axes of the mean-field phase diagram."""
    from .sweep import SQUARED

    xname, yname = SQUARED.get(hm["x_field"], hm["x_field"]), SQUARED.get(hm["y_field"], hm["y_field"])
    sq = lambda f, v: v * v if f in SQUARED else v
    xs = [fmt(sq(hm["x_field"], v)) for v in hm["x"]]
    ys = [fmt(sq(hm["y_field"], v)) for v in hm["y"]]
    cells = [[fmt(v) for v in row] for row in hm["values"]]      # significant figures: a 1e-5 ratio is no 0.00
    w = max([len(s) for s in xs] + [len(c) for row in cells for c in row] + [5])
    yw = max(len(s) for s in ys + [yname])
    lines = [f"{hm['metric']} ({yname} down, {xname} across)",
             " " * yw + "  " + " ".join(s.rjust(w) for s in xs)]
    for label, row in zip(ys, cells):
        lines.append(label.rjust(yw) + "  " + " ".join(c.rjust(w) for c in row))
    return "\n".join(lines)


def edge_of_chaos_text(res: dict[str, Any]) -> str:
    """Where chi_1 = 1 crosses each sigma_b^2 of the grid, or '' when the sweep has no critical line."""
    line, vary = res.get("critical_line"), res.get("vary", {})
    if not line or "sigma_b" not in vary:
        return ""
    grid_sb = {round(v * v, 12) for v in vary["sigma_b"]}
    pts = [d for d in line if round(d["sigma_b2"], 12) in grid_sb]
    return "edge of chaos (chi_1 = 1): " + "; ".join(
        f"sigma_b^2 {fmt(d['sigma_b2'])} -> sigma_w^2 {fmt(d['sigma_w2'])}" for d in pts)


def sweep_markdown(res: dict[str, Any]) -> str:
    from .sweep import value_text

    points, vary = _sweep_points(res), res.get("vary", {})
    axes = [k for k in vary if k != "seed"]          # a point holds every seed: its mean and spread
    keys = axes + list(dict.fromkeys(k for p in points for k in p if k not in vary))     # as the CSV: every key
    # as the tables write them (sigma_w=1, not 1.0); a grid of seeds alone has one point, all of them
    labels = [" ".join(f"{k}={fmt(p.get(k)) if isinstance(p.get(k), float) else value_text(k, p.get(k))}"
                       for k in axes)
              or "all seeds" for p in points]
    metric = res.get("metric") or (res.get("heatmap") or {}).get("metric", "log10_gradz_ratio")
    sections = [
        ("Settings", settings_table({"mode": res.get("mode"), **{f"vary {k}": v for k, v in vary.items()},
                                     "points done": f"{res.get('done')} of {res.get('total')}"})
         + "\n\nBase settings:\n\n" + settings_table(res.get("base", {}))),
        ("Verdicts", md_table(points, keys) + ("\n\n`_std`: the sample std (n - 1) of the seeds' values; the ratios' means are "
                                                "geometric, and `_log10_std` is the sample std of their log10"
                                                if any(k.endswith("_std") and k != "last_a_std" for k in keys) else "")),
        ("Figures", figure(f"{metric} per point", labels, [p.get(metric) for p in points], log=False)),
    ]
    hm = res.get("heatmap")
    if hm:      # as the terminal shows it
        edge = edge_of_chaos_text(res)
        sections.append(("Heatmap", f"```text\n{heatmap_text(hm)}\n```" + (f"\n\n{edge}" if edge else "")))
    return document("initlab sweep report", sections)


def _scalars(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if not isinstance(v, (dict, list))}


def theory_csv(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row of the mean-field figures."""
    return [_scalars(res)]


def theory_notes(res: dict[str, Any]) -> list[str]:
    """What the figures cannot say by themselves: the edge of chaos, a missing fixed point, what is not computed and
    why, what a negative depth scale means."""
    from .theory import FINITE_Q, PAIR_MAX_Q

    notes = []
    if res.get("critical_sigma_w") is not None:
        notes.append(f"edge of chaos at this sigma_b: sigma_w {fmt(res['critical_sigma_w'])} "
                     f"(sigma_w^2 {fmt(res['critical_sigma_w2'])})")
    q = res.get("q_star")
    q0 = fmt(res.get("q0", 1.0))
    unbounded = bool(res.get("q_star_infinite")) or (q is not None and math.isinf(q))     # JSON's inf is null
    if unbounded:
        at = res.get("chi1_finite_q")
        notes.append(f"from q0 = {q0} the variance grows without bound: no finite fixed point; chi_1 and the phase "
                     "are their limits as q grows, and the phase is of the gradients alone (the correlation map, "
                     "taken at a fixed point, is not computed)" + (f"; at q = {FINITE_Q:g} chi_1 is {fmt(at)}"
                                                                    if at is not None else ""))
    for o in res.get("other_starts") or []:
        where = "grows without bound" if math.isinf(o["q_star"]) else f"settles at q* {fmt(o['q_star'])}"
        notes.append(f"the fixed point depends on the input's scale: from q0 = {fmt(o['q0'])} the variance {where} "
                     f"(chi_1 {fmt_near_one(o['chi1'])}, {o['phase']}), not q0 = {q0}'s")
    if res.get("c_star") is None:
        notes.append("c*, chi_c and the forward depth scale are not computed: "
                     + ("they are taken at a finite fixed point q*, and there is none" if unbounded else
                        f"past q* = {fmt(PAIR_MAX_Q)} the correlation map's quadrature is not accurate"))
    back = res.get("depth_scale_backward")
    if back is not None and back < 0:
        # chi_1 multiplies the gradient's mean square per layer: its size grows by e over twice the layers
        notes.append(f"a negative depth scale is of growth: chi_1 > 1, the gradient's mean square grows by a factor e "
                     f"every {fmt(-back)} layers towards the input (its size every {fmt(-2 * back)})")
    return notes


THEORY_INPUTS = ("activation", "slope", "sigma_w", "sigma_b")


NEAR_ONE = ("sigma_w", "chi1", "chi_c")     # a 0.99998 shown as 1 beside "ordered" read as critical


def theory_markdown(res: dict[str, Any]) -> str:
    notes = "\n".join(f"- {n}" for n in theory_notes(res))
    scalars = {k: fmt_near_one(v) if k in NEAR_ONE else v for k, v in _scalars(res).items()}
    return document("initlab mean-field theory report", [
        ("Settings", settings_table({k: scalars[k] for k in THEORY_INPUTS if k in scalars})),
        ("Figures", figures_table({k: v for k, v in scalars.items() if k not in THEORY_INPUTS})),
        ("Notes", notes)])


def jacobian_csv(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per singular value, largest first; `resolved` says whether it stands above the float resolution
    (max x eps): below it a value is rounding, not the network's, and the histogram leaves it out."""
    res_floor = res.get("resolution")
    return [{"index": i, "singular_value": s,
             "resolved": None if res_floor is None or s is None else bool(s > 0 and s >= res_floor)}
            for i, s in enumerate(res.get("singular_values", []))]


def averaged_note(res: dict[str, Any]) -> str | None:
    """For several inputs: what the extremes are of, beside a histogram that pools every input's values (with one
    output each input has one value: four in the bins, and max == min beside them)."""
    n = res.get("inputs", 1)
    if n <= 1:
        return None
    return (f"max, min and condition number of the spectrum averaged over the {n} inputs; the histogram counts every "
            f"input's values")


def jacobian_markdown(res: dict[str, Any]) -> str:
    h = res.get("histogram") or {}
    edges, counts = h.get("edges", []), h.get("counts", [])
    unit = "log10 sigma" if h.get("log10") else "sigma"
    labels = [f"{fmt(a)} to {fmt(b)}" for a, b in zip(edges, edges[1:])]
    spectrum = {k: res.get(k) for k in ("max", "min", "condition_number", "log10_spread", "mean_squared",
                                        "resolution", "numerical_rank", "condition_at_least") if k in res}
    if res.get("max") == 0:     # 0 / 0: no direction gets through, which no number says
        spectrum["condition_number"] = "undefined (the Jacobian is zero)"
    # the histogram bins the resolved values: the rest are counted here
    spectrum |= {f"{k} (not in the histogram)": h.get(k) for k in ("zeros", "unresolved") if h.get(k)}
    chart = figure(f"singular values per bin of {unit}", labels, counts, log=False) if any(counts) else \
        "No singular value above zero or the resolution to bin." if counts else ""
    note = averaged_note(res)
    return document("initlab Jacobian spectrum report", [
        ("Settings", settings_table({**res.get("config", {}), "inputs": res.get("inputs"), "bins": len(counts)})),
        ("Spectrum", figures_table(spectrum) + (f"\n\n{note[0].upper()}{note[1:]}." if note else "")),
        ("Figures", chart),
    ])


def widths_csv(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (width, step, layer): mean |a| and mean |a - a_0|."""
    rows = []
    names = res.get("layer_names", [])
    deltas, losses = res.get("mean_abs_delta", []), res.get("loss", [])
    for wi, w in enumerate(res.get("widths", [])):
        for step, per_layer in enumerate(res.get("mean_abs_a", [])[wi]):
            loss = losses[wi][step] if wi < len(losses) and step < len(losses[wi]) else None
            for li, v in enumerate(per_layer):
                d = deltas[wi][step][li] if wi < len(deltas) else None
                rows.append({"width": w, "step": step, "layer": li,
                             "name": names[li] if li < len(names) else None, "mean_abs_a": v, "mean_abs_delta": d,
                             "loss": loss})      # the width's loss at that step, on each of its layers' rows
    return rows


def widths_nonfinite_text(res: dict[str, Any]) -> list[str]:
    """A line per width that went non-finite: when (as the tables count steps), where (a layer's mean |a|, or the
    loss) and what keeps it finite."""
    out = []
    for nf in res.get("nonfinite") or []:
        t = nf["step"]
        when, fix = ("at step 0, before training", "another init, or a smaller scale") if t == 0 else \
            (f"after {t} step{'s' if t > 1 else ''}", "a smaller lr")
        where = f"mean |a| of layer {nf['layer']}" if nf.get("layer") is not None else \
            "its loss: the outputs are finite, their squared error is not"
        out.append(f"width {nf['width']} is non-finite {when} ({where}); {fix} keeps it finite")
    return out


def widths_markdown(res: dict[str, Any]) -> str:
    widths, names = res.get("widths", []), res.get("layer_names", [])
    slopes = res.get("slopes", [])
    figs = []
    steps = len(res.get("mean_abs_a", [[]])[0]) if res.get("mean_abs_a") else 0
    for step in sorted({0, steps - 1}) if steps else []:
        for li, name in enumerate(names):
            vals = [res["mean_abs_a"][wi][step][li] for wi in range(len(widths))]
            figs.append(figure(f"mean |a| of {name} against width, step {step}", widths, vals))
    table = [{"step": s, **{n: v for n, v in zip(names, row)}} for s, row in enumerate(slopes)]
    moved = [{"step": s, **{n: v for n, v in zip(names, row)}} for s, row in enumerate(res.get("delta_slopes", []))
             if s > 0]      # step 0 has not moved yet
    loss = [{"width": w, **{f"step {s}": v for s, v in enumerate(row)}} for w, row in zip(widths, res.get("loss", []))]
    return document("initlab width check report", [
        ("Settings", settings_table({"widths": widths, "steps": res.get("steps"), "optimizer": res.get("optimizer"),
                                     "lr": res.get("lr"), "device": res.get("device")}) + "\n\nBase settings:\n\n"
         + settings_table(read_by_widths(res.get("config", {})))),
        ("Non-finite", "\n".join(f"- {line}" for line in widths_nonfinite_text(res))),
        ("Slopes", "log-log slope of mean |a| against width per layer (flat near 0 is width-stable)\n\n"
         + md_table(table, ["step"] + list(names))
         + ("\n\nlog-log slope of mean |a - a_0| against width (how training's move grows with width)\n\n"
            + md_table(moved, ["step"] + list(names)) if moved else "")),
        ("Loss", "loss at each step, per width\n\n"
         + md_table(loss, ["width"] + [f"step {s}" for s in range(steps)]) if loss else ""),
        ("Figures", "\n\n".join(figs)),
    ])


BUILDERS: dict[str, tuple[Callable[[dict], list[dict]], Callable[[dict], str]]] = {
    "probe": (probe_csv, probe_markdown), "train": (train_csv, train_markdown), "sweep": (sweep_csv, sweep_markdown),
    "theory": (theory_csv, theory_markdown), "jacobian": (jacobian_csv, jacobian_markdown),
    "widths": (widths_csv, widths_markdown),
}


def csv_rows(kind: str, res: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of a result; a list (a shape) becomes its JSON text, a nested dict is left out."""
    return [{k: (dumps(v) if isinstance(v, (list, tuple)) else v) for k, v in r.items() if not isinstance(v, dict)}
            for r in BUILDERS[kind][0](res)]


def markdown(kind: str, res: dict[str, Any]) -> str:
    return BUILDERS[kind][1](res)


def write(kind: str, res: dict[str, Any], csv: str | None = None, report: str | None = None) -> list[str]:
    """Write the CSV and/or the Markdown report atomically; returns the paths written. Both texts are built
    before either file is touched, so a failure in building leaves both files as they were."""
    texts = []
    if csv:
        texts.append((csv, csv_rows(kind, res), True))
    if report:
        texts.append((report, markdown(kind, res), False))
    # a sweep stopped before its first point: the header of its settings still says what the file is of
    header = [k for k in res.get("vary", {}) if k != "seed"] + ["verdict"] if kind == "sweep" else None
    return [write_csv(path, body, header) if is_csv else write_text(path, body) for path, body, is_csv in texts]
