"""The app past the textbook: sweeps, mean-field theory, Jacobian spectra, width checks, your own model.

All go through the app's one engine bridge. InitlabApp takes these in as a mixin; Textual calls the message
handlers of every class in the app's MRO, so the handlers here run after the app's own ones for the same message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterable

from textual.app import SystemCommand
from textual.css.query import NoMatches

from initlab.engine.events import Cancelled, Event, Failed, Finished, Progress, Started
from initlab.engine.spec import Config, SpecError, check_value, parse_value
from initlab.engine.sweep import SWEEP_PRESETS, SweepJob, point_configs

from .messages import EngineEvent, TheoryReady
from .widgets.config_form import ConfigForm
from .widgets.extra_fields import DEPTH_X_INIT, TRAIN_HINT, ExtraFields, parse_vary
from .widgets.jacobian_chart import extremes
from .widgets.sweep_chart import SweepData

VIEW_JOBS = ("sweep", "jacobian", "widths")     # job names whose results have a tab of their own
THEORY_FIELDS = ("activation", "slope", "sigma_w", "sigma_b", "bias", "init")
JACOBIAN_INPUTS = 4                             # the spectrum averaged over a few inputs, not one
WIDTH_STEPS = 5
SWEEP_HZ = 2.0                                  # how often the sweep view takes the points done so far


@dataclass
class LiveSweepJob(SweepJob):
    """A SweepJob whose result so far the app can read while it runs: the job thread replaces `latest` whole after
    each point (a new dict every time), the UI thread only reads the reference."""

    latest: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def run(self, ctx) -> dict[str, Any]:
        emit = ctx.emit

        def tee(ev: Event) -> None:
            if isinstance(ev, Progress):
                self.latest = ctx.partial
            emit(ev)

        ctx.emit = tee
        return super().run(ctx)


def progress_state(p: Progress) -> str:
    """The status line's run state for a Progress event: a training's epoch and step, other jobs' count."""
    if p.job == "train":
        run = f"run {p.run + 1}/{p.runs} " if p.runs > 1 else ""      # a preset of several seeds
        return f"training {run}epoch {p.epoch}/{p.epochs} step {p.step}/{p.total_steps}"
    unit = {"sweep": "points", "widths": "widths"}.get(p.job, "steps")
    name = {"widths": "width check"}.get(p.job, p.job)       # "widths 1/4 widths" said it twice
    return f"{name} {p.step}/{p.total_steps} {unit}"


class BeyondMixin:
    """Actions, palette commands and event handlers for the Sweep, Jacobian and Widths tabs, the theory readout in
    the Activation tab and the model field. Runs on the UI thread; every job goes through self.start_job."""

    _live_sweep: LiveSweepJob | None = None
    _starting = 0           # the app's start requests not yet started (InitlabApp keeps it)
    last_kind = ""
    _live_done = -1
    _sweep_label = ""
    _theory_asked = 0

    # -- fields --------------------------------------------------------------------------------------------------
    @property
    def extras(self) -> ExtraFields:
        return self.query_one(ExtraFields)

    def extras_valid(self, doing: str = "run") -> bool:
        """True when every app-only field is accepted; else the first refusal is said and its field focused."""
        errors = self.extras.errors()
        if not errors:
            return True
        name, msg = next(iter(errors.items()))
        self.open_field(name)
        # a grid's refusal names the setting in it (depth: 'x'): the field it is in leads
        said = msg if msg.startswith(f"{name}:") else f"{name}: {msg}"
        self.refuse(f"cannot {doing}: {said} (the cursor is in {name} now; escape leaves it)")
        return False

    def open_field(self, name: str) -> None:
        self.set_class(True, "show-config")
        self.extras.collapsed = False
        self.form.focus_field(name)

    def probe_job(self, cfg: Config) -> Any:
        """The job p runs: the user's model when the model field names one, else the configured MLP."""
        from initlab.engine.jobs import ProbeJob, UserProbeJob

        model = self.extras.parsed("model")
        if model is None:
            if self.extras.raw["input_shape"].strip():
                self.log_pane.add("info", "input_shape is read with a model only: the configured MLP's inputs are "
                                          "in_features wide")
            return ProbeJob(cfg)
        shape = self.extras.raw["input_shape"].strip() or None
        return UserProbeJob(model, input_shape=shape, seed=cfg.seed, device=cfg.device)

    def leave_own_model(self, preset: str) -> None:
        """A preset is an experiment on the built-in MLP: its probe must not go to the model field's model."""
        if self.extras.raw["model"].strip():
            self.extras.set_value("model", "")
            self.log_pane.add("info", f"preset {preset} is an experiment on the built-in MLP; the model field is "
                                      "cleared")

    def on_config_form_preset_chosen(self, message: ConfigForm.PresetChosen) -> None:
        self.leave_own_model(message.name)

    def note_model_not_used(self, what: str) -> None:
        """Said when the model field names a model that this run (a training, a sweep, ...) leaves aside."""
        if self.extras.raw["model"].strip():
            self.log_pane.add("info", f"{what} the configured MLP; the model field is probed with p")

    def note_unread(self, cfg: Config, train: bool) -> None:
        """Said as the command line says it of a flag: a field set away from its default that this run does not
        read (gain under kaiming, momentum under adam). Each is said once until its field is read again."""
        from initlab.engine.reads import PROBE_ONLY, TRAIN_ONLY, unread
        from initlab.engine.spec import FIELDS

        default, notes = Config(), []
        # the form holds a probe's and a training's settings at once: a probe passing over lr is no news
        passed = TRAIN_ONLY if not train else PROBE_ONLY + ("in_features", "out_features")
        for name in FIELDS:
            value = getattr(cfg, name)
            if name in passed or value == getattr(default, name):
                continue
            why = unread(cfg, name, train)
            if why:
                shown = ("on" if value else "off") if isinstance(value, bool) else \
                    f"{value:g}" if isinstance(value, float) else str(value)
                notes.append(f"note: {why}; {name} {shown} was not used")
        for note in notes:
            if note not in self._unread_said:       # a note stays said while its field stays unread
                self.log_pane.add("info", note)
        self._unread_said = frozenset(notes)

    # -- actions -------------------------------------------------------------------------------------------------
    def action_run_view(self) -> None:
        """r: the visible tab's own experiment; a probe on the per-layer tabs."""
        run = {"sweep": partial(self.action_sweep, "field"), "jacobian": self.action_jacobian,
               "widths": self.action_widths}.get(self.charts.active, self.action_probe)
        run()

    def action_sweep(self, which: str = "field") -> None:
        """A sweep over the form's config: `field` (the vary field's grid), `depth-x-init`, or a sweep preset's
        own net and grid on the form's device."""
        cfg = self.valid_config()
        if cfg is None:
            return
        train = False
        if which in SWEEP_PRESETS:
            p = SWEEP_PRESETS[which]
            base, vary, label = p.config.replace(device=cfg.device), {k: list(v) for k, v in p.vary.items()}, which
        else:
            try:
                train = self.extras.parsed("sweep_runs") == "train"
            except SpecError as e:
                self.open_field("sweep_runs")
                self.refuse(f"cannot run the sweep: {e} (the cursor is in sweep_runs now; escape leaves it)")
                return
            base = cfg
            vary = parse_vary(DEPTH_X_INIT) if which == "depth-x-init" else self.extras.parsed("vary")
            if not vary:
                # the field's placeholder reads like a grid: the refusal is said beside it too
                empty = str(SpecError("vary", "", "a grid such as " + DEPTH_X_INIT))
                self.extras.mark("vary", empty)
                self.open_field("vary")
                self.refuse(f"cannot run the sweep: {empty} (the cursor is in vary now; escape leaves it)")
                return
            label = " x ".join(vary) if which == "field" else "depth x init"
        try:
            points = point_configs(base, vary, train, TRAIN_HINT)       # every point checked before any runs
        except SpecError as e:
            if e.field == "vary" or (which == "field" and e.field in vary):
                # a grid's value (or the grid): the cursor goes to the vary field, as to a refused field of the form
                self.open_field("vary")
                self.refuse(f"cannot run the sweep: {e} (the cursor is in vary now; escape leaves it)")
            else:
                self.refuse(f"cannot run the sweep: {e}", e.field)
            return
        self.note_model_not_used("the sweep trains" if train else "the sweep probes")
        job = LiveSweepJob(base, vary, train=train)
        self._live_sweep, self._live_done, self._sweep_label = job, -1, label
        mode = "train" if train else "probe"
        # the last sweep's points leave the tab at once: until the first point ends, it shows the new sweep empty
        self.charts.set_data("sweep", SweepData({"done": 0, "total": len(points), "mode": mode, "vary": vary,
                                                 "points": []}, label, "starting"))
        self.charts.show_tab("sweep")
        self.log_pane.add("info", f"sweep {label}: {len(points)} points" + (", a training at each" if train else ""))
        self.start_job(job, "sweep")

    def action_jacobian(self) -> None:
        cfg = self.valid_config()
        if cfg is not None:
            from initlab.engine.jobs import JacobianJob

            self.charts.show_tab("jacobian")
            self.note_model_not_used("the Jacobian is of")
            self.start_job(JacobianJob(cfg, inputs=JACOBIAN_INPUTS), "jacobian")

    def action_widths(self) -> None:
        cfg = self.valid_config()
        if cfg is not None:
            from initlab.engine.jobs import WidthsJob

            self.charts.show_tab("widths")
            self.note_model_not_used("the width check trains")
            self.start_job(WidthsJob(cfg, tuple(self.extras.parsed("widths")), WIDTH_STEPS), "widths")

    def beyond_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Sweep: depth x init", f"probe the configured net at every point of {DEPTH_X_INIT}",
                            partial(self.action_sweep, "depth-x-init"))
        yield SystemCommand("Sweep: the vary field", "probe the configured net over the grid in the vary field",
                            partial(self.action_sweep, "field"))
        for p in SWEEP_PRESETS.values():
            yield SystemCommand(f"Sweep: {p.name}", p.summary, partial(self.action_sweep, p.name))
        yield SystemCommand("Jacobian spectrum", "singular values of the configured net's input-output Jacobian",
                            self.action_jacobian)
        yield SystemCommand("Width check", "mean |a| per layer against the widths field's widths, first steps",
                            self.action_widths)

    # -- results -------------------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.set_interval(1 / SWEEP_HZ, self.show_live_sweep, name="sweep")

    def not_started(self, kind: str) -> None:
        """A job asked for and called off before it started: a sweep's tab, left at 'starting', says so."""
        if kind == "sweep" and self._live_sweep is not None and self._live_done < 0:
            self._live_sweep = None
            data = self.charts.chart("sweep").data
            if isinstance(data, SweepData):
                self.charts.set_data("sweep", SweepData(data.summary, data.label, "not started: s stopped it"))

    def show_live_sweep(self) -> None:
        """Hand the points done so far to the Sweep tab, when more are done than it shows."""
        job = self._live_sweep
        latest = job.latest if job is not None else None
        if latest is None or latest.get("done", 0) == self._live_done:
            return
        self._live_done = latest.get("done", 0)
        try:
            self.charts.set_data("sweep", SweepData(latest, self._sweep_label, "running"))
        except NoMatches:
            pass

    def on_engine_event(self, message: EngineEvent) -> None:
        ev = message.event
        if ev.job not in VIEW_JOBS or isinstance(ev, Started):
            return
        try:
            if isinstance(ev, Finished):
                self.show_result(ev.job, ev.result, "finished")
            elif isinstance(ev, Cancelled) and (ev.result or ev.job in ("jacobian", "widths")):
                self.show_result(ev.job, ev.result, "stopped")
            elif isinstance(ev, Failed) and ev.job == "sweep" and self._live_sweep is not None:
                latest = self._live_sweep.latest
                if latest is not None:
                    self.charts.set_data("sweep", SweepData(latest, self._sweep_label, "failed: " + ev.message))
        except NoMatches:       # the app is closing
            pass

    def show_result(self, job: str, result: dict[str, Any], how: str) -> None:
        if job == "sweep" and self._starting and self.last_kind == "sweep":
            # a sweep replaced by another asked for since: the tab and its live view are the new sweep's (the old
            # one's points, drawn under the new one's name, stayed there while it ran)
            return
        if job == "sweep":
            self._live_sweep = None
            done = result.get("done", 0)
            state = how if how == "finished" else \
                f"stopped: the {done} point{'' if done == 1 else 's'} done {'is' if done == 1 else 'are'} kept"
            self.charts.set_data("sweep", SweepData(result, self._sweep_label, state))
            if result.get("heatmap") and result.get("critical_line"):
                self.log_pane.add("info", "sweep: the heatmap's bar marks chi_1 = 1, the mean-field edge of chaos")
        elif job in ("jacobian", "widths") and how == "finished":
            self.charts.set_data(job, result)
            if job == "jacobian":
                self.log_pane.add("info", "jacobian: " + extremes(result).replace("   ", ", "))
            else:
                largest = lambda row: max([abs(v) for v in row if v is not None and v == v], default=float("nan"))
                worst = largest(result["slopes"][-1])
                # how far training moved each layer, and how that scales with width, is what the check is for: the
                # values themselves at a few steps are mostly the init's
                shift = largest(result["delta_slopes"][-1]) if result["steps"] > 0 else float("nan")
                moved = f", of mean |a - a_0| (how far training moved each layer) {shift:.3g}" if shift == shift else ""
                self.log_pane.add("info", f"widths: {', '.join(map(str, result['widths']))} over {result['steps']} "
                                          f"steps; the largest |slope| against width at the last step: of mean |a| "
                                          f"{worst:.3g}{moved} ({'both ' if moved else ''}near 0 is width-stable)")
                from initlab.engine.report import widths_nonfinite_text

                for note in widths_nonfinite_text(result):      # a width whose lines end early: as the CLI says it
                    self.log_pane.add("warning", note)
        elif job in ("jacobian", "widths") and self.charts.chart(job).has_data():
            # stopped: nothing of it to show; the tab keeps the one before, which is said
            self.log_pane.add("info", f"the {'Jacobian' if job == 'jacobian' else 'Widths'} tab keeps the "
                                      f"{'spectrum' if job == 'jacobian' else 'width check'} before the one stopped")

    # -- theory --------------------------------------------------------------------------------------------------
    def on_ready(self) -> None:
        self.request_theory()

    def on_config_form_changed(self, message: ConfigForm.Changed) -> None:
        if message.name not in THEORY_FIELDS:
            return
        # every field the theory reads that the form refuses now (not only the one just changed): while any is,
        # the readout stays, said to be of the values last accepted
        refused = [n for n in THEORY_FIELDS if n in self.form.errors()]
        if not refused:
            self.request_theory()
            return
        try:
            self.charts.chart("activation").theory_refused(", ".join(refused))
        except NoMatches:
            pass

    def request_theory(self) -> None:
        """Recompute the theory readout when the fields it reads are all accepted (others may be refused)."""
        raw = self.form.values()
        v = {}
        try:
            for name in THEORY_FIELDS:
                v[name] = parse_value(name, raw[name])
                check_value(name, v[name])
        except SpecError:
            return
        self._theory_asked += 1
        asked = self._theory_asked
        sigma_b = v["sigma_b"] if v["bias"] else 0.0

        def theory() -> None:
            from initlab.engine.theory import elsewhere, mean_field

            numbers = mean_field(v["activation"], v["sigma_w"], sigma_b, v["slope"])
            numbers.update(elsewhere(v["activation"], v["sigma_w"], sigma_b, v["slope"], q_star=numbers["q_star"]))
            if asked == self._theory_asked:         # else a newer request is on its way
                self.post_message(TheoryReady(numbers, v["init"]))

        # gelu's expectations use torch: a short-lived helper thread, as for the activation's curve
        self.helpers.run("theory", theory)

    def on_theory_ready(self, message: TheoryReady) -> None:
        try:
            self.charts.chart("activation").set_theory(message)
            if self.charts.active == "activation":
                self.charts.refresh_numbers()       # the table lists the same figures as the line above the curve
        except NoMatches:
            pass
