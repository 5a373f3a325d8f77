"""The Textual app: three panes (configuration, charts, log), key bindings, command palette, one engine bridge."""
from __future__ import annotations

import functools
from collections import deque
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Iterable

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from initlab.engine import export
from initlab.engine.events import RESIZED, Cancelled, Failed, Finished, LogLine, NonFinite, Started
from initlab.engine.presets import PRESETS
from initlab.engine.reads import INIT_PARAMS
from initlab.engine.session import describe_error
from initlab.engine.spec import Config, SpecError, saved_toml
from initlab.engine.sweep import SWEEP_PRESETS
from initlab.engine.spec import field_error as spec_field_error

from .beyond import VIEW_JOBS, BeyondMixin, progress_state
from .bridge import EngineBridge, Helpers, Snapshot
from .messages import CurveReady, DevicesFound, EngineEvent, HelperFailed
from .widgets.charts_pane import TABS, ChartsPane, tab_key
from .widgets.config_form import ConfigForm
from .widgets.extra_fields import EXTRAS, extras_toml_lines
from .widgets.help_screen import HelpScreen
from .widgets.layer_charts import LayerData
from .widgets.log_pane import LogPane, wall_clock
from .widgets.plot import fmt
from .widgets.status_bar import StatusBar
from .widgets.training_chart import Epoch, TrainingData, epoch_row

NARROW_BELOW = 100          # columns; below this the configuration collapses into a drawer (key c)
SWITCH_INTERVAL = 0.0005     # seconds; see on_mount


def while_mounted(handler: Callable) -> Callable:
    """Messages from threads can still arrive while the app is closing; then there is nothing left to update."""
    @functools.wraps(handler)
    def run(self: "InitlabApp", *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(self, *args, **kwargs)
        except NoMatches:
            return None
    return run


@dataclass(frozen=True)
class Baseline:
    """A pinned run: its per-layer statistics and its epochs, overlaid on later runs."""

    label: str
    layers: tuple[dict[str, Any], ...]
    epochs: tuple[Epoch, ...]
    config: dict[str, Any] | None = None     # the pinned run's settings, exported beside it


# The form's first settings: the engine's defaults, but statistics every 5 steps, so that the short default training
# (55 steps) draws a live heatmap; the engine's default of 100 keeps long headless runs within 5% of a plain loop.
APP_DEFAULTS = Config(stats_every=5)
# the footer's words are short, so that every key fits in 80 columns; the palette has room for the longer name
PALETTE_NAMES = {"baseline": "Baseline", "numbers": "Numbers"}
QUIT_CONFIRM_SECONDS = 5.0


TRAINING_TABS = ("training", "heatmap")     # tabs that show the latest training, whatever ran since


def job_noun(kind: str) -> str:
    """A job's kind as a sentence names it: a training, a Jacobian, a width check (a probe, a sweep as they are)."""
    return {"train": "training", "jacobian": "Jacobian", "widths": "width check"}.get(kind, kind)


class InitlabApp(BeyondMixin, App):
    """initlab's terminal lab. The engine runs on the session's thread; this class only turns its events into
    chart data (merged, a few times a second) and log lines."""

    CSS_PATH = Path(__file__).with_name("app.tcss")     # absolute, so subclasses elsewhere find it
    TITLE = "initlab"
    BINDINGS = [
        Binding("p", "probe", "probe", tooltip="one forward and backward pass of the configured net", id="probe"),
        Binding("t", "train", "train", tooltip="train the configured net", id="train"),
        Binding("s", "stop", "stop", tooltip="stop the running job", id="stop"),
        Binding("b", "pin_baseline", "pin", tooltip="pin the current run as the baseline", id="baseline"),
        Binding("e", "export", "export", tooltip="the visible tab's result as JSON and the screen as SVG", id="export"),
        Binding("n", "toggle_numbers", "table", tooltip="the numbers behind the visible chart", id="numbers"),
        Binding("c", "toggle_config", "config", tooltip="show or hide the configuration", id="config"),
        Binding("w", "save_config", "save config", show=False, id="save-config",
                tooltip="write the form's settings as a TOML file: initlab --config FILE opens the app with them, "
                        "and the commands' --config reads it"),
        Binding("k", "cycle_kind", "kind", show=False, tooltip="Distributions: weights, activations, gradients"),
        # a field or the tab bar with the cursor takes the arrows first; elsewhere they turn the table's pages
        Binding("right", "numbers_page(1)", "next columns", show=False),
        Binding("left", "numbers_page(-1)", "earlier columns", show=False),
        # and the up and down keys its rows (a deep net's layers run past the pane)
        *[Binding(key, f"numbers_rows('{how}')", how.replace("_", " "), show=False)
          for key, how in (("down", "cursor_down"), ("up", "cursor_up"), ("pagedown", "page_down"),
                           ("pageup", "page_up"), ("home", "scroll_top"), ("end", "scroll_bottom"))],
        Binding("r", "run_view", "run view", show=False, id="run-view",
                tooltip="run the visible tab's experiment: the sweep, the Jacobian or the width check"),
        *[Binding(tab_key(i), f"show_tab('{tid}')", title, show=False, id=f"tab-{tid}", tooltip=about)
          for i, (tid, title, _cls, about) in enumerate(TABS, start=1)],
        Binding("question_mark", "help", "help", key_display="?", id="help"),
        Binding("q", "quit", "quit", id="quit"),
        Binding("escape", "leave_field", "leave field", show=False),
    ]

    # var, not reactive: a reactive on the App repaints the whole screen at every change
    run_state: var[str] = var("idle")
    """idle, probing, training epoch e/E step s/S, stopped, failed: shown in the header."""
    device_name: var[str] = var("auto")
    """The configured device, or the one the last run resolved it to."""

    def __init__(self, config: Config | None = None, *, autoprobe: bool = True,
                 clock: Callable[[], str] = wall_clock, export_dir: str = ".", refresh_hz: float = 4.0,
                 chart_hz: float = 2.0, extras: dict[str, str] | None = None, opened: tuple[str, ...] = (),
                 preset: str = ""):
        super().__init__()
        self.initial_config = config or APP_DEFAULTS
        self.initial_extras = extras or {}      # the Beyond fields' text, from a TOML experiment
        self.opened = opened                    # what the log says first: the experiment file the app opened
        self.autoprobe = autoprobe
        self.clock = clock
        self.export_dir = export_dir
        self.refresh_hz = refresh_hz
        self.chart_hz = chart_hz
        self._charts_stale = False  # statistics taken from the bridge that the charts have not drawn yet
        self._charts_at = 0.0
        self.bridge = EngineBridge(lambda ev: self.post_message(EngineEvent(ev)))
        self.helpers = Helpers(lambda name, exc: self.post_message(HelperFailed(name, describe_error(exc))))
        self.snapshot: Snapshot | None = None
        self.baseline: Baseline | None = None
        self._baseline_apart: tuple | None = None      # the baseline and run last said to differ in depth
        self._resized_said = ""        # the last "in and out features follow the data" the log gave
        self._unread_said: frozenset[str] = frozenset()     # the notes of fields a run did not read, said last
        self.last_result: dict[str, Any] | None = None
        self.last_kind = ""
        # per view, the latest (job, result) it shows: the Sweep, Jacobian and Widths tabs their own jobs', the
        # others the latest probe's or training's, so that e exports what the screen it saves shows
        self.view_results: dict[str, tuple[str, dict[str, Any]]] = {}
        self._quit_asked = -math.inf                    # when q was last pressed while a training ran
        self._edit_noted = False                        # the running job's "keeps its settings" note was said
        self._fallback_said = False                     # this export's "written to the temporary folder" was said
        self.set_reactive(InitlabApp.device_name, self.initial_config.device)
        self._starting = 0          # start requests not yet seen as Started events
        self._requested = 0         # start requests so far; a stop calls off every one made before it
        self._stopped_upto = 0
        self._ends = 0              # runs whose end (finished, failed, cancelled) has been handled
        self._ran_kind = ""         # the kind of the last job that started (a job's name is its kind)
        self._runs = 0              # jobs started so far, and the one whose statistics the per-layer charts hold
        self._charted = 0
        self._pinnable: Baseline | None = None
        self._pinnable_at = ""          # which state of its run the pinnable holds (a step, the end state)
        self._snap_run, self._snap_config = 0, None     # the run the snapshot's statistics came from, its settings
        self._run_jobs: dict[int, Any] = {}            # jobs by run, for a snapshot taken before its Started
        self._snap_seeds: tuple[int, ...] = ()         # the seeds of the run the snapshot came from
        self.preset_name = preset   # the preset last loaded into the form (or named by the file it opened)
        # the settings a file naming a preset opened with: its seeds run while the form holds them, as the command
        # line runs that file (the file may change some of the preset's settings)
        self.opened_config = self.initial_config if preset else None
        self._jobs: deque[Any] = deque()                  # jobs started, not yet seen as Started
        self.run_seeds: tuple[int, ...] = ()              # the seeds of the job started last (a several-run training)
        self.run_config: Config | None = None            # the config of the job whose statistics are shown
        self._switch_interval = sys.getswitchinterval()  # Python's, restored on unmount

    # -- layout ------------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # classes set before the widgets exist cost no restyle of the whole screen
        self._narrow(self.size.width < NARROW_BELOW)
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            yield ConfigForm(self.initial_config, self.initial_extras, id="config")
            with Vertical(id="centre"):
                yield ChartsPane(id="charts")
                yield LogPane(clock=self.clock, id="log")
        # a narrow start: a compact footer without the palette hint keeps "? help" and "q quit" in 80 columns
        narrow = self.has_class("narrow")
        yield Footer(compact=narrow, show_command_palette=not narrow)

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def charts(self) -> ChartsPane:
        return self.query_one(ChartsPane)

    @property
    def log_pane(self) -> LogPane:
        return self.query_one(LogPane)

    def on_mount(self) -> None:
        # The job thread gives up the GIL at every torch op and must win it back from this thread; at Python's
        # default 5 ms switch interval a busy UI holds each op back by up to 5 ms: the 10 x 64 reference net then
        # trains at well under 1% of its rate alone; at 0.5 ms, near a fifth (benchmarks/gil_handoff.py).
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        self.set_interval(1 / self.refresh_hz, self.drain, name="drain")
        self._update_header()

    def on_ready(self) -> None:
        for line in self.opened:
            self.log_pane.add("info", line)
        if self.preset_name in PRESETS:     # named by the file opened: the selector says so, as after choosing it
            self.form.show_preset(self.preset_name)
        # The first frame is up; only now may anything import torch (on threads).
        self.find_devices()
        self._request_curve()
        if self.autoprobe:
            self.action_probe()

    def on_resize(self, event: Any) -> None:
        narrow = event.size.width < NARROW_BELOW
        if narrow != self.has_class("narrow"):
            self._narrow(narrow)

    def _narrow(self, narrow: bool) -> None:
        self.set_class(narrow, "narrow")
        self.show_config(not narrow)
        try:
            footer = self.query_one(Footer)
        except NoMatches:       # not composed yet: compose sizes the footer
            return
        # compact below 100 columns; the palette hint is placed once, when the footer composes (recomposing it on
        # a resize hung the app under textual-serve)
        footer.compact = narrow

    def on_unmount(self) -> None:
        self.bridge.cancel(wait=True, timeout=2.0)
        sys.setswitchinterval(self._switch_interval)

    # -- header ------------------------------------------------------------------------------------------------
    def _update_header(self) -> None:
        try:
            bar = self.query_one(StatusBar)
        except NoMatches:       # before compose
            return
        bar.device, bar.state = self.device_name, self.run_state

    def watch_run_state(self) -> None:
        self._update_header()

    def watch_device_name(self) -> None:
        self._update_header()

    # -- running -----------------------------------------------------------------------------------------------
    def valid_config(self, doing: str = "run") -> Config | None:
        """The form's Config, or None after saying (log, notification) why running (or `doing`) is refused: a
        refused field, the app's own fields (model, vary, ...) included, stops every run."""
        errors = self.form.errors()
        try:
            if errors:
                name, msg = next(iter(errors.items()))
                raise SpecError(name, self.form.values()[name], msg.split("; ", 1)[-1])
            cfg = self.form.config()
        except SpecError as e:
            self.refuse(f"cannot {doing}: {e}", e.field)
            return None
        return cfg if self.extras_valid(doing) else None

    def refuse(self, message: str, field: str | None = None) -> None:
        if field and field in self.form.values():
            # the cursor moves to the refused field: said, so that the next keys are not typed there unawares
            message += f" (the cursor is in {field} now; escape leaves it)"
            self.set_class(True, "show-config")
            self.form.focus_field(field)
        self.log_pane.add("error", message)
        self.notify(message, severity="error", timeout=4)

    def start_job(self, job: Any, kind: str) -> None:
        if self.bridge.running or self._starting:
            before = job_noun(self.last_kind or "job")
            if self._starting or self._runs == self._ends:
                # asked for a moment ago, its start not yet seen: "was running" came before its own first line
                self.log_pane.add("info", f"a {job_noun(kind)} replaces the {before} just asked for")
            else:
                self.log_pane.add("info", f"a {before} was running; a {job_noun(kind)} replaces it")
        self.last_kind = kind
        for name in ("input_shape", "vary"):        # a mark a run before left (its failure, its empty grid) goes
            self.extras.recheck(name)
        self._jobs.append(job)
        self._starting += 1
        self._requested += 1
        self._quit_asked = -math.inf        # a q pressed about the run before does not quit this one
        self._edit_noted = False
        self.run_state = "starting " + kind
        # Session.start waits for a running job to stop: that wait happens on a worker thread, not here.
        self.run_worker(partial(self._start_in_thread, job, kind, self._requested), thread=True, group="start",
                        exit_on_error=False, name=f"start {kind}")

    def _start_in_thread(self, job: Any, kind: str, request: int) -> None:
        # a stop asked for while the job before wound down calls this start off too (s meant: nothing running)
        if not self.bridge.start(job, unless=lambda: self._stopped_upto >= request):
            self.call_from_thread(self._start_called_off, job, kind)

    def _start_called_off(self, job: Any, kind: str) -> None:
        for i, queued in enumerate(self._jobs):
            if queued is job:       # this one: another just like it may wait too
                del self._jobs[i]
                break
        # what e exports and q asks about is the job still asked for, else the last that ran, not this one
        self.last_kind = self._jobs[-1].name if self._jobs else self._ran_kind
        self._starting = max(0, self._starting - 1)
        self.not_started(kind)
        self.log_pane.add("info", f"the {job_noun(kind)} asked for was not started: s stopped it first")
        if not self._starting and not self.bridge.running:
            self.run_state = "stopped"
            self.push_charts()

    def action_probe(self) -> None:
        cfg = self.valid_config()
        if cfg is not None:
            from initlab.engine.jobs import ProbeJob

            job = self.probe_job(cfg)
            if isinstance(job, ProbeJob):       # the configured MLP, not the user's model
                self.note_unread(cfg, train=False)
            self.start_job(job, "probe")

    def action_train(self, seeds: tuple[int, ...] | None = None) -> None:
        cfg = self.valid_config()
        if cfg is None:
            return
        from initlab.engine.jobs import TrainJob

        self.note_model_not_used("t trains")
        self.note_unread(cfg, train=True)
        self.start_job(TrainJob(cfg, seeds=self.preset_seeds(cfg) if seeds is None else seeds), "train")

    def holds_preset(self, cfg: Config) -> bool:
        """Whether the form holds the preset last loaded: its settings, or those the file naming it opened with."""
        p = PRESETS.get(self.preset_name) or SWEEP_PRESETS.get(self.preset_name)
        return p is not None and (cfg.replace(device=p.config.device) == p.config or cfg == self.opened_config)

    def preset_seeds(self, cfg: Config) -> tuple[int, ...]:
        """A several-seed preset keeps its seeds while the form still holds its config (or an opened file's)."""
        p = PRESETS.get(self.preset_name)
        if p and p.seeds and self.holds_preset(cfg):
            return p.seeds
        if p and p.seeds:       # said, so that the preset's other runs are not dropped unawares
            self.log_pane.add("info", f"the form no longer holds {p.name}'s settings: one run, seed {cfg.seed} "
                                      f"(its seeds {', '.join(map(str, p.seeds))} run with its settings unchanged)")
        return ()

    def action_run_preset(self, name: str) -> None:
        p = PRESETS[name]
        self.preset_name, self.opened_config = name, None
        self.form.show_preset(name)
        self.form.load(p.config)
        self.leave_own_model(name)
        self.log_pane.add("info", f"preset {name}: {p.summary}")
        if p.kind == "train":
            self.action_train(seeds=p.seeds)
        else:
            self.action_probe()

    def action_stop(self) -> None:
        if not self.bridge.running and not self._starting:
            self.log_pane.add("info", "nothing is running: s stops a probe, a training, a sweep, a Jacobian or a width "
                                      "check while it runs")
            self.notify("nothing is running", timeout=2)
            return
        self.run_state = "stopping"
        self._stopped_upto = self._requested
        self._quit_asked = -math.inf
        if self.last_kind == "jacobian" and self.bridge.running:
            # its inputs go in groups whose SVDs cannot stop part-way: said, in case the stop takes a moment
            self.log_pane.add("info", "the Jacobian stops after its current group of four inputs")
        self.bridge.cancel(wait=False)

    async def action_quit(self) -> None:
        """Quit; while a training or a sweep runs, only when asked twice within QUIT_CONFIRM_SECONDS (what it has
        done is lost unless exported)."""
        now = time.monotonic()
        busy = (self.bridge.running or self._starting) and self.last_kind in ("train", "sweep")
        if busy and now - self._quit_asked > QUIT_CONFIRM_SECONDS:
            self._quit_asked = now
            message = f"a {job_noun(self.last_kind)} is running: q again to quit, s to stop it and keep what it did"
            self.log_pane.add("warning", message)
            self.notify(message, severity="warning", timeout=QUIT_CONFIRM_SECONDS)
            return
        self.bridge.cancel(wait=False)
        self.exit()

    # -- engine events -----------------------------------------------------------------------------------------
    @while_mounted
    def drain(self, force: bool = False) -> None:
        """Take the merged statistics (refresh_hz times a second) for the status line; hand them to the charts
        at most chart_hz times a second while a job runs (a chart costs tens of milliseconds of the thread the
        training shares the interpreter with), and at once when it has ended or with force."""
        snap = self.bridge.take()
        if snap is not None:
            self.snapshot = snap
            # a job that sends no statistics (a Jacobian, a width check) leaves the last run's on the charts: they
            # stay that run's, under its settings (a snapshot may come before its job's Started is handled here)
            self._snap_run = snap.run
            job = self._job_of(snap.run)
            self._snap_config = getattr(job, "config", None)
            self._snap_seeds = tuple(getattr(job, "seeds", ()) or ())
            self._charts_stale = True
            if snap.progress is not None and self.bridge.running:
                self.run_state = progress_state(snap.progress)
        now = time.monotonic()
        if self._charts_stale and (force or not self.bridge.running or now - self._charts_at >= 1 / self.chart_hz):
            self._charts_stale = False
            self._charts_at = now
            self.push_charts()

    def _job_of(self, run: int) -> Any:
        """The run-th job started (its settings, its seeds): one whose Started is handled, or one still queued."""
        if run in self._run_jobs:
            return self._run_jobs[run]
        ahead = run - self._runs - 1
        return self._jobs[ahead] if 0 <= ahead < len(self._jobs) else None

    def push_charts(self) -> None:
        snap, base = self.snapshot, self.baseline
        if snap is None:
            return
        with self.batch_update():
            if snap.stats is not None:
                s = snap.stats
                state = "probe" if s.job == "probe" else (f"{s.job} end state, step {s.step}" if s.final
                                                           else f"{s.job} step {s.step}")
                label = state + self._seed_note(s.run)
                # a baseline of another depth has no layer to stand beside: it is overlaid on the Training chart only
                same = base is not None and len(base.layers) == len(s.layers)
                if base is not None and not same and self._baseline_apart != (id(base), self._snap_run):
                    self._baseline_apart = (id(base), self._snap_run)       # said once a run, not at every redraw
                    self.log_pane.add("info", f"the baseline has {len(base.layers)} layers, this run "
                                              f"{len(s.layers)}: it is overlaid on the Training chart alone")
                data = LayerData(tuple(s.layers), s.input_std, base.layers if same else (), label, s.distributions,
                                 base.label if same else "")
                self._charted = self._snap_run
                cfg = self._snap_config
                # what b pins: the run these charts show, whatever job (a width check, a Jacobian) came after
                # a user's model has no activation or init to name: its factory names it
                named = [str(getattr(cfg, k)) for k in ("activation", "init", "model") if getattr(cfg, k, None)]
                if getattr(cfg, "init", None) in INIT_PARAMS["gain"]:
                    from initlab.engine.inits import resolved_gain     # torch is loaded: a run has ended

                    # xavier's gain left empty is the activation's (relu's sqrt 2): two such runs differ by it
                    named.insert(2, f"gain {resolved_gain(cfg):.4g}")
                if s.job == "train" and cfg is not None:     # a baseline is mostly another lr or optimiser's run
                    named += [cfg.optimizer, f"lr {cfg.lr:g}"]
                seed = self._seed_note(s.run).lstrip(", ")
                if seed and hasattr(cfg, "replace"):     # the run's own seed: the job's config holds the first's
                    cfg = cfg.replace(seed=self._snap_seeds[s.run])
                elif getattr(cfg, "seed", None) is not None:
                    seed = f"seed {cfg.seed}"       # of one run too: a baseline is mostly of another seed or lr
                self._pinnable_at = state       # the seed is in the label already
                # of a several-seed training, the run the charts show: its epochs alone, as the Training tab's
                # first run (the tab draws a baseline's run 0; both seeds' had been pinned, drawn as one curve)
                # the seed first: a legend cut at a narrow pane's edge keeps it
                self._pinnable = Baseline(" ".join([s.job, *([seed] if seed else []), *named]), tuple(s.layers),
                                          tuple({**epoch_row(e), "run": 0} for e in snap.epochs if e.run == s.run),
                                          cfg.to_dict() if hasattr(cfg, "to_dict") else None)
                # Distributions too, with or without boxes: it says when this run has none rather than keep an
                # earlier run's under another's label
                for tid in ("forward", "backward", "glorot", "distributions"):
                    self.charts.set_data(tid, data)
            training = self.last_kind == "train"
            of_training = getattr(self._job_of(self._snap_run), "name", "") == "train"
            current = self.charts.chart("training").data
            if base and not (snap.epochs or training or of_training) and isinstance(current, TrainingData):
                # another job's statistics (a probe): the Training tab keeps the last training, the baseline beside it
                self.charts.set_data("training", replace(current, baseline=base.epochs, baseline_label=base.label))
            elif snap.epochs or base or training:
                # while it runs the axis spans the planned epochs; once stopped, the epochs it ran
                total = max([e.epochs for e in snap.epochs] + [snap.progress.epochs if snap.progress else 0]) \
                    if self.run_state.startswith("training") else 0
                # a training's tab shows its own run from the start, not the last run's curves
                note = "" if snap.epochs or not training else {
                    "stopped: non-finite": "no epoch finished: stopped on a non-finite value",
                    "stopped": "no epoch finished: stopped"}.get(self.run_state, "no epoch finished yet")
                self.charts.set_data("training", TrainingData(tuple(epoch_row(e) for e in snap.epochs),
                                                              base.epochs if base else (), label=note,
                                                              total_epochs=total, seeds=self._snap_seeds,
                                                              baseline_label=base.label if base else ""))
            if snap.heat and of_training:       # a probe's one step would replace the training's steps
                heat = self.charts.chart("heatmap")
                heat.label = self._seed_note(snap.stats.run if snap.stats is not None else 0).lstrip(", ")
                heat.seen = snap.heat_seen
                self.charts.set_data("heatmap", snap.heat)

    def _seed_note(self, run: int) -> str:
        """', seed S' for a run of a training of several seeds (they run one after the other), else ''; of the run the
        charts hold, whatever job came after."""
        seeds = self._snap_seeds
        return f", seed {seeds[run]}" if len(seeds) > 1 and 0 <= run < len(seeds) else ""

    @while_mounted
    def on_engine_event(self, message: EngineEvent) -> None:
        ev = message.event
        self.drain(force=isinstance(ev, (Finished, Failed, Cancelled)))
        if isinstance(ev, Started):
            self._runs += 1
            self._starting = max(0, self._starting - 1)
            job = self._jobs.popleft() if self._jobs else self._run_jobs.get(self._runs - 1)
            self._ran_kind = ev.job
            self.run_config = getattr(job, "config", None)
            self.run_seeds = tuple(getattr(job, "seeds", ()) or ())
            self._run_jobs = {k: v for k, v in self._run_jobs.items() if k >= self._runs - 2}
            self._run_jobs[self._runs] = job
            self.run_state = "probing" if ev.job == "probe" else ("training" if ev.job == "train" else ev.job)
        elif isinstance(ev, LogLine):
            # said at every training of a form that holds a probe's sizes: the first time is news enough
            resized = ev.message.startswith(RESIZED)
            if not (resized and ev.message == self._resized_said):
                self.log_pane.add(ev.level, ev.message)
            if resized:
                self._resized_said = ev.message
        elif isinstance(ev, NonFinite):
            where = f", layer {ev.layer}" if ev.layer is not None else ""
            self.notify(f"non-finite {ev.tensor} at step {ev.step}{where}", severity="warning", timeout=4)
        if isinstance(ev, (Finished, Failed, Cancelled)):
            self._ends += 1
        if isinstance(ev, Finished):
            self._finished(ev)
        elif isinstance(ev, Failed):
            self.run_state = "failed"
            self._mark_earlier(ev.job)
            message = f"{ev.job} failed: {ev.message}"
            field = ev.message.partition(": ")[0]
            # a refusal known only once the job ran (a factory without inputs, widths too wide for memory) names
            # one of the app's own fields: marked there as a refusal as typed would be (input_shape only with a
            # model; not the model, whose failure is of the user's code, to be mended in its file)
            if field in EXTRAS and field != "model" and (field != "input_shape" or self.extras.raw["model"].strip()):
                self.extras.mark(field, ev.message)
                self.open_field(field)
                message += f" (the cursor is in {field} now; escape leaves it)"
            self.log_pane.add("error", message)
            self.notify(ev.message, title=f"{ev.job} failed", severity="error", timeout=6)
        elif isinstance(ev, Cancelled):
            training = self.charts.chart("training").data
            if ev.job == "train" and isinstance(training, TrainingData) and training.total_epochs:
                # its axis spanned the epochs planned: now those it ran, whatever job replaces it
                self.charts.set_data("training", replace(training, total_epochs=0))
            if not self._starting:
                self.run_state = "stopped"
                if self.last_kind == "train":
                    self.push_charts()      # the Training tab says it stopped (before an epoch ended, if so)
            self.log_pane.add("info", f"{ev.job} stopped")
            if ev.result:
                self.keep_result(ev.job, ev.result)

    def _mark_earlier(self, job: str) -> None:
        """After a failed job the per-layer charts hold the run before it, or the failed one's last statistics:
        their titles say which."""
        note = "then it failed" if self._charted == self._runs else f"the latest {job}, after it, failed"
        for tid in ("forward", "backward", "glorot", "distributions"):
            data = self.charts.chart(tid).data
            if isinstance(data, LayerData) and data.layers and "failed" not in data.label:
                self.charts.set_data(tid, replace(data, label=f"{data.label}; {note}"))

    def keep_result(self, job: str, result: dict[str, Any]) -> None:
        self.last_result = result
        self.view_results[job if job in VIEW_JOBS else "layers"] = (job, result)
        if job == "train":
            self.view_results["train"] = (job, result)

    def shown_result(self) -> tuple[str, dict[str, Any] | None]:
        """The (job, result) behind the visible tab: a view tab's own job's; the Training and Heatmap tabs' the
        latest training's (a probe since leaves them as they were); else the latest probe's or training's (the
        Activation tab's curves are the form's theory, the run beside them the latest probe's)."""
        tab = self.charts.active
        slot = tab if tab in VIEW_JOBS else "train" if tab in TRAINING_TABS else "layers"
        job, result = self.view_results.get(slot, ("", None))
        return job or slot, result

    def _finished(self, ev: Finished) -> None:
        self.keep_result(ev.job, ev.result)
        self.device_name = str(ev.result.get("device", self.device_name))
        if ev.job == "train":
            runs = ev.result.get("runs") or []
            stopped = ev.result.get("stopped", "finished")
            if len(runs) > 1:       # the job's ending is its worst run's: a later seed may stop where the first did not
                how = [r.get("stopped") for r in runs]
                stopped = next((s for s in ("cancelled", "nonfinite") if s in how), "finished")
            epochs = ev.result.get("epochs") or []
            last = epochs[-1] if epochs else {}
            if stopped == "nonfinite":
                self.run_state = "stopped: non-finite"
                self.push_charts()      # the Training tab spans the epochs run, or says why it has no curve
            else:
                self.run_state = "idle"
            if len(runs) > 1:       # each seed logged its own ending; the job's line, then every ending by its seed
                self.log_pane.add("info", f"training of {len(runs)} seeds {stopped} ({ev.seconds:.1f} s); the "
                                          f"charts hold seed {runs[-1]['config']['seed']}'s run")
                ends = []
                for r in runs:
                    end = (r.get("epochs") or [{}])[-1]
                    ends.append(f"seed {r.get('config', {}).get('seed')}: train {fmt(end.get('train_loss'))}, "
                                f"test {fmt(end.get('test_loss'))}")
                self.log_pane.add("info", "runs: " + "; ".join(ends))
            else:
                self.log_pane.add("info", f"training {stopped} after {ev.result.get('steps_done', 0)} steps, "
                                          f"{len(epochs)} epochs; train loss {fmt(last.get('train_loss'))}, "
                                          f"test loss {fmt(last.get('test_loss'))} ({ev.seconds:.1f} s)")
        else:
            self.run_state = "idle"

    # -- workers -----------------------------------------------------------------------------------------------
    def find_devices(self) -> None:
        def find() -> None:
            from initlab.engine.device import available_devices

            self.post_message(DevicesFound(available_devices()))

        self.helpers.run("devices", find)

    @while_mounted
    def on_devices_found(self, message: DevicesFound) -> None:
        warning = self.form.set_devices(message.devices)
        if warning:
            self.log_pane.add("warning", warning)

    def _request_curve(self) -> None:
        values = self.form.values()
        name, slope = values["activation"], values["slope"]
        try:
            slope_v = float(slope)
        except ValueError:
            return
        self.compute_curve(name, slope_v)

    def compute_curve(self, name: str, slope: float) -> None:
        def curve() -> None:
            from initlab.engine import activations

            x, f, df = activations.curve(name, slope=slope)
            # the empirical gain drawn as `initlab gain` draws it: one figure, the same digits in both
            gain = activations.empirical_gain(name, slope=slope)
            self.post_message(CurveReady(name, slope, x, f, df, activations.max_derivative(name, slope),
                                         activations.torch_gain(name, slope), gain,
                                         activations.rms_gain(name, slope=slope)))

        self.helpers.run("curve", curve)

    @while_mounted
    def on_curve_ready(self, message: CurveReady) -> None:
        values = self.form.values()
        if values["activation"] != message.name or spec_field_error("slope", values["slope"]) is None and \
                float(values["slope"]) != message.slope:
            return          # a curve for a setting already changed again; a newer one is on its way
        self.charts.set_data("activation", message)

    @while_mounted
    def on_helper_failed(self, message: HelperFailed) -> None:
        self.log_pane.add("error", f"{message.name} failed: {message.message}")
        self.notify(message.message, title=f"{message.name} failed", severity="error", timeout=6)

    @while_mounted
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.log_pane.add("error", f"{event.worker.name} failed: {type(err).__name__}: {err}")
            self.notify(str(err), title=f"{event.worker.name} failed", severity="error", timeout=6)
            if event.worker.group == "start":
                self._starting = max(0, self._starting - 1)
                self.run_state = "failed"

    def on_config_form_changed(self, message: ConfigForm.Changed) -> None:
        if message.error is None and not message.by_app:
            self._note_run_keeps(f"{message.name} and any other change take")
        if message.name in ("activation", "slope") and message.error is None:
            self._request_curve()
        if message.name == "device" and message.error is None and not self.bridge.running:
            self.device_name = str(self.form.values()["device"])

    def on_config_form_preset_chosen(self, message: ConfigForm.PresetChosen) -> None:
        p = PRESETS[message.name]
        self.preset_name, self.opened_config = p.name, None
        self.form.load(p.config)
        self.log_pane.add("info", f"preset {p.name} loaded ({p.kind}): {p.summary}; "
                                  f"{'t trains' if p.kind == 'train' else 'p probes'} it")
        self._note_run_keeps("the preset's take")      # the user's choice, as an edit of the fields

    def _note_run_keeps(self, what: str) -> None:
        """While a job runs, an edit of the form is said once a run to wait for the next: the form then shows values
        beside charts of a run that did not use them."""
        if self.bridge.running and not self._edit_noted:
            self._edit_noted = True
            self.log_pane.add("info", f"the running {job_noun(self.last_kind or 'job')} keeps the settings it started "
                                      f"with: {what} effect at the next run")

    # -- other actions -----------------------------------------------------------------------------------------
    def action_show_tab(self, tid: str) -> None:
        self.charts.show_tab(tid)
        if self.has_class("narrow"):        # the configuration is a drawer over the charts there: a tab is asked to be seen
            self.set_class(False, "show-config")

    def action_toggle_numbers(self) -> None:
        self.charts.toggle_numbers()

    def action_numbers_page(self, step: int) -> None:
        self.charts.page_numbers(step)

    def action_numbers_rows(self, how: str) -> None:
        if not isinstance(self.focused, Input):     # a text field has the cursor: the keys are its, as help says
            self.charts.move_in_numbers(how)

    def action_toggle_config(self) -> None:
        self.show_config(not self.has_class("show-config"))

    def show_config(self, shown: bool) -> None:
        """Show or hide the configuration; hiding it takes the keyboard out of it first: Textual hands a hidden
        widget's focus to a sibling, hidden too, where keys would go unseen instead of to the footer's actions."""
        focused = self.focused
        if not shown and focused is not None and any(n.id == "config" for n in focused.ancestors_with_self):
            self.set_focus(None)
        self.set_class(shown, "show-config")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # the same hand-over within a hidden pane (narrow drawer, collapsed group): no key may go where none shows;
        # only the panes' own widgets (the palette, say, is hidden while it opens)
        nodes = [n for n in event.widget.ancestors_with_self if isinstance(n, Widget)]
        if any(n.id == "main" for n in nodes) and not all(n.display for n in nodes):
            self.set_focus(None)

    def action_cycle_kind(self) -> None:
        kind = self.charts.cycle_kind()
        self.charts.show_tab("distributions")
        self.log_pane.add("info", f"distributions: {kind}")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def action_pin_baseline(self) -> None:
        if self._pinnable is None:
            self.notify("nothing to pin yet: run a probe (p) or a training (t)", severity="warning", timeout=3)
            return
        self.baseline = self._pinnable
        # a training still running is pinned as it stands: said, with the step, so that the pin is not taken for
        # its end (the overlay then lies under the run it came from)
        running = self._charted == self._runs and self.bridge.running
        at = "" if self._pinnable_at == "probe" else f" ({self._pinnable_at}{', still running' if running else ''})"
        self.log_pane.add("info", f"pinned the current {self.baseline.label}{at} as the baseline")
        self.push_charts()

    def _palette_screenshot(self) -> None:
        """The screen as SVG where e exports, written atomically as every file initlab writes."""
        base = self._export_base("screen")
        self._fallback_said = False
        try:
            svg = self._write_export(base + ".svg", self.export_screenshot(title="initlab"))
        except OSError as e:
            self._cannot_write("screenshot", e, f"{os.path.basename(base)}.svg")
            return
        # said in the log alone: a toast saying it again covered the newest log lines, this one among them
        self.log_pane.add("info", f"wrote the screen to {svg}")

    def _write_export(self, path: str, text: str) -> str:
        """Write a file the app exports; where its folder refuses it (read-only, full, gone), the same name in the
        system's temporary folder, said once an action: a result is not lost for the folder initlab started in."""
        try:
            return export.write_text(path, text)
        except OSError as e:
            spare = tempfile.gettempdir()
            try:
                here = os.path.realpath(os.path.dirname(os.path.abspath(path)))
            except OSError:         # the folder initlab started in is gone (getcwd fails with it)
                here = None
            if here == os.path.realpath(spare):
                raise
            written = export.write_text(os.path.join(spare, os.path.basename(path)), text)   # may fail too: said
            if not self._fallback_said:
                self._fallback_said = True
                self.log_pane.add("warning", f"cannot write in {self._export_folder()} ({e.strerror or e}): "
                                             f"written to {spare} instead")
            return written

    def _cannot_write(self, what: str, e: OSError, names: str) -> None:
        self.refuse(f"{what} failed: {e.strerror or e}: cannot write {names} in {self._export_folder()} (exports go "
                    f"to the folder initlab started in)")

    def _export_base(self, kind: str) -> str:
        """A path without extension in the export folder, stamped, that names no file yet."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = os.path.join(self.export_dir, f"initlab-{kind}-{stamp}")
        n = 1
        # nor in the temporary folder, where the files go when the export folder refuses them
        taken = lambda b: any(os.path.exists(os.path.join(d, os.path.basename(b) + ext))
                              for d in (self.export_dir, tempfile.gettempdir()) for ext in (".json", ".svg", ".toml"))
        while taken(base):
            n += 1
            base = os.path.join(self.export_dir, f"initlab-{kind}-{stamp}-{n}")
        return base

    def _export_folder(self) -> str:
        # the folder, not the temporary file the atomic write tried beside the target
        try:
            return os.path.abspath(self.export_dir)
        except OSError:     # the folder it started in is gone: getcwd() fails too
            return self.export_dir

    def action_export(self) -> None:
        busy = self.bridge.running or self._starting or self._ends < self._runs
        shown_kind, shown = self.shown_result()
        # named for what they hold: idle, the visible tab's result (a sweep's beside its tab, not a probe run since)
        kind = (self.last_kind if busy else shown_kind) or "screen"
        base = self._export_base(kind)
        self._fallback_said = False
        try:
            svg = self._write_export(base + ".svg", self.export_screenshot(title="initlab"))
            if busy:
                # the last result is the run before this one (or this one's end is still on its way: s was just
                # pressed): beside this run's screen it would pass for its own
                if self.run_state == "stopping" or (not self.bridge.running and not self._starting):
                    self.log_pane.add("info", f"a {job_noun(kind)} is ending: wrote the screen to {svg}; e exports its "
                                              f"result once it has ended")
                else:
                    self.log_pane.add("info", f"a {job_noun(kind)} is running: wrote the screen to {svg}; its result "
                                              f"is exported with e once it ends (s stops it and keeps what it did)")
                return
            # the Activation tab's own figures (gains, mean field) go with the latest run's result, or alone
            readout = self.charts.chart("activation").readout() if self.charts.active == "activation" else None
            if shown is None and readout is None:
                what = f"{job_noun(shown_kind)} " if shown_kind in VIEW_JOBS + ("train",) else ""
                self.log_pane.add("warning", f"no {what}result to export yet; wrote the screen to {svg}")
                return
            doc = dict(shown or {})
            if readout is not None:
                doc["activation_readout"] = readout
            if self.baseline is not None and shown_kind not in VIEW_JOBS:     # what the charts overlay is in the file too
                b = self.baseline
                doc["baseline"] = {"label": b.label, "config": b.config, "layers": list(b.layers),
                                   "epochs": list(b.epochs)}
            js = self._write_export(base + ".json", export.dumps(doc, indent=1) + "\n")
        except OSError as e:
            self._cannot_write("export", e, f"{os.path.basename(base)}.svg and .json")
            return
        self.log_pane.add("info", f"exported the {kind} result to {js} and the screen to {svg}")

    def action_save_config(self) -> None:
        """The form's settings as TOML in the export folder (a refused field is said, and nothing written)."""
        cfg = self.valid_config("write the configuration")
        if cfg is None:
            return
        path = self._export_base("config") + ".toml"
        # the form holds the preset: named, and a preset of several seeds keeps them (its seed left out)
        held = self.holds_preset(cfg)
        text = saved_toml(cfg, self.preset_name if held else None,
                          held and len(getattr(PRESETS.get(self.preset_name), "seeds", ())) > 1,
                          extras_toml_lines(self.extras.values()))
        self._fallback_said = False
        try:
            written = self._write_export(path, text)
        except OSError as e:
            self._cannot_write("save the configuration", e, os.path.basename(path))
            return
        self.log_pane.add("info", f"wrote the configuration to {written} (initlab --config {written} opens it)")

    # -- command palette ---------------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                # Textual's saves to a Downloads folder, which a server reached over SSH often lacks: here, where e
                # writes its exports
                yield SystemCommand("Screenshot", f"Save an SVG of the screen in {self.export_dir} (e also saves "
                                    "the result)", lambda: self.set_timer(0.1, self._palette_screenshot))
            else:
                yield command
        for b in self.BINDINGS:
            if isinstance(b, Binding) and b.action not in ("quit", "leave_field"):
                name = PALETTE_NAMES.get(b.id or "", b.description.capitalize())
                yield SystemCommand(f"{name} ({b.key_display or b.key})",
                                    b.tooltip or b.description, partial(self.run_action, b.action))
        for p in PRESETS.values():
            yield SystemCommand(f"Preset {p.name}", f"{p.kind}: {p.summary}", partial(self.action_run_preset, p.name))
        # the one experiment that is no network: found where a student looks for it, and told where it runs
        yield SystemCommand("Preset random-matrix", "command line only: initlab probe --preset random-matrix",
                            partial(self.log_pane.add, "info", "random-matrix is a product of random matrices, no "
                                                               "network: initlab probe --preset random-matrix runs it"))
        yield from self.beyond_commands()

    # -- state for tests and benchmarks ------------------------------------------------------------------------
    @property
    def settled(self) -> bool:
        """No job running or starting, nothing waiting in the bridge, no worker busy."""
        busy = self.helpers.busy or any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)
        return not (self.bridge.running or self._starting or self.bridge.pending or self._charts_stale or busy
                    or not self.form.mounted_fields)
