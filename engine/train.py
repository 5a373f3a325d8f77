"""The training loop: per-layer statistics every stats_every steps, epoch losses, a stop on the first non-finite value."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch import nn

from . import data as datasets
from . import device as devices
from .events import RESIZED, EpochEnd, LayerStats, LogLine, NonFinite, Progress, WarningLine
from .history import Bounded
from .inits import gain_note
from .models import MLP, build_mlp
from .probe import layer_rows
from .spec import Config, SpecError, steps_per_epoch, validate
from .session import JobCancelled
from .stats import STAT_NAMES, Capture, collect, layer_table, undefined_as_none
from .verdict import symmetry_note
from .verdict import verdict as verdict_of

Emit = Callable[[Any], None]
STEP_HISTORY = 512
PROGRESS_SECONDS = 0.1      # between sampled steps, progress goes out at most this often
EPOCH_HISTORY = 2048
EVAL_ROWS = 1 << 14         # rows an evaluation pass takes at once: a stop waits for one chunk at most


def make_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        if cfg.nesterov and cfg.momentum <= 0:     # checked here, not in validate(): a probe builds no optimiser
            raise SpecError("nesterov", "on", "on only with momentum above 0")
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_schedule(cfg: Config, opt: torch.optim.Optimizer, total_steps: int):
    """The per-step scheduler: step decays 10x after each of the run's first two thirds, cosine anneals per step."""
    if cfg.schedule == "step":
        # at the thirds themselves, rounded: a step size of a third rounded down cut a run of 55 steps three times
        # (18, 36, 54) and one of 5 at every step; rounded up, a run of 4 once
        cuts = sorted({round(total_steps * k / 3) for k in (1, 2)} & set(range(1, total_steps)))
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cuts, gamma=0.1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    return None


def train_config(cfg: Config, ds: datasets.Dataset) -> Config:
    """The model's in/out sizes follow the data."""
    return cfg.replace(in_features=ds.in_features, out_features=ds.out_features)


def _rows(values: list[float], heads: list[dict[str, Any]], extra_names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per layer: index, name and fans as the probe gives them (`heads`, from layer_rows), then the statistics (and
    the extra names')."""
    names = STAT_NAMES + extra_names
    k = len(names)
    rows = []
    for i, head in enumerate(heads):
        d = dict(zip(names, values[i * k:(i + 1) * k]))
        du = d.pop("distinct_units", None)
        if du is not None and du == du:     # not sampled during training: it costs a sort per layer
            d["distinct_units"] = int(du)
        rows.append({**head, **undefined_as_none(d)})
    return rows


class Trainer:
    """One training run. run() drives it to the end; check() is called between steps to allow cancelling."""

    def __init__(self, cfg: Config, emit: Emit | None = None, check: Callable[[], None] | None = None,
                 run_index: int = 0, end_distributions: bool = False, runs: int = 1):
        validate(cfg)
        self.emit = emit or (lambda ev: None)
        self.check = check or (lambda: None)
        self.run_index = run_index
        self.runs = runs            # how many seeds the training runs one after the other
        self.device = devices.resolve(cfg.device)
        torch.manual_seed(cfg.seed)
        self.data = datasets.make(cfg, self.device)
        self.cfg = train_config(cfg, self.data)
        self.resized = (cfg.in_features, cfg.out_features) != (self.cfg.in_features, self.cfg.out_features)
        # in and out features follow the data: the refusal names what the user can lower
        devices.check_fits(self.cfg, self.device, training=True, fields=("width", "depth", "batch"),
                           fixed=("data", cfg.data))
        self.model: MLP = build_mlp(self.cfg, self.device, sample=self.data.x_train[: max(cfg.batch, 16)],
                                    check=self.check)
        self.model.train()
        # taken once: reaching a weight through the modules costs microseconds a layer, at every sampled step
        self.blocks = list(self.model.blocks)
        self.weights = [b.linear.weight for b in self.blocks]
        self.heads = layer_rows(self.model, [{} for _ in self.blocks])
        self.opt = make_optimizer(self.cfg, self.model.parameters())
        self.n_train = int(self.data.x_train.shape[0])
        self.per_epoch = steps_per_epoch(self.n_train, self.cfg.batch, self.cfg.norm)
        self.total_steps = self.per_epoch * self.cfg.epochs
        self.sched = make_schedule(self.cfg, self.opt, self.total_steps)
        self.crit = nn.CrossEntropyLoss() if self.data.task == "classification" else nn.MSELoss()
        self.shuffle = torch.Generator().manual_seed(cfg.seed + 1)
        self.steps: Bounded[dict[str, Any]] = Bounded(STEP_HISTORY)
        self.epochs: Bounded[dict[str, Any]] = Bounded(EPOCH_HISTORY)
        self.step = 0
        self.sampled = 0            # sampled steps taken: the history may keep fewer (it thins past its capacity)
        self.stopped = "finished"
        self.nonfinite: dict[str, Any] | None = None
        self.final: list[dict[str, Any]] | None = None      # the end state's statistics, once finished
        self.end_distributions = end_distributions            # the end state's quantile boxes too (for the app)
        self.final_distributions: tuple[dict[str, list[float]], ...] | None = None
        self.last_loss: float | None = None     # the latest loss on the host (on a GPU: of the latest sampled step)
        self.on_cpu = self.device.type == "cpu"
        # first step whose loss was non-finite, kept on the device so that no step waits for the host
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=self.device)

    # -- one step -------------------------------------------------------------------------------------------
    def _update(self, loss: torch.Tensor, keep_grads: bool = False) -> list[torch.Tensor] | None:
        """Backward and, with clip, clipping; with keep_grads, copies of the weight gradients as backward gave them
        (the statistics are of the network's own gradients; the update ratio shows what clipping let through)."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        raw = None
        if self.cfg.clip > 0:
            grads = [w.grad for w in self.weights]
            if keep_grads and all(g is not None for g in grads):
                raw = torch._foreach_mul(grads, 1.0)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        return raw

    def _plain_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = self.crit(self.model(xb), yb)
        self._update(loss)
        if self.on_cpu:
            # read before the update (the value is on the host already): a non-finite loss leaves the weights that
            # gave it, for _diagnose to look at
            self.last_loss = loss.item()
            if not math.isfinite(self.last_loss):
                return loss
        self.opt.step()
        return loss

    def _sampled_step(self, xb: torch.Tensor, yb: torch.Tensor, epoch: int) -> float:
        """A step that also reduces every layer's statistics and the update ratio, then makes one transfer."""
        blocks, weights = self.blocks, self.weights
        with Capture(blocks, check=self.check) as cap:     # a large step's forward can be stopped part-way
            loss = self.crit(self.model(xb), yb)
            raw = self._update(loss, keep_grads=True)
        grads = raw if raw is not None else [w.grad for w in weights]
        with torch.no_grad():
            before = torch._foreach_mul(weights, 1.0)       # one copy of every weight, in one op
            self.opt.step()
            deltas = torch._foreach_sub(weights, before)
        table = layer_table(cap, blocks, distinct=False, weights=before, updates=deltas, grads=grads)
        flat = torch.cat([table.flatten(), loss.detach().double().reshape(1),
                          self.first_bad.double().reshape(1)]).tolist()          # the one transfer
        rows = _rows(flat[:-2], self.heads, ("update_to_weight_log10", "weights_finite"))
        ok = [r.pop("weights_finite") for r in rows]
        loss_v, first_bad = flat[-2], int(flat[-1])
        self.sampled += 1
        self.steps.append({"step": self.step, "epoch": epoch, "loss": loss_v, "layers": rows})
        self.emit(LayerStats("train", step=self.step, epoch=epoch, layers=tuple(rows), run=self.run_index))
        self._find_nonfinite(rows, ok, loss_v, first_bad)
        return loss_v

    def _find_nonfinite(self, rows, weights_ok, loss_v, first_bad) -> None:
        if self.nonfinite is not None:
            return
        step = self.step
        if 0 <= first_bad < step:       # an earlier step's loss, flagged on the device while the steps went on
            self.nonfinite = {"step": first_bad, "layer": None, "tensor": "loss"}
            return
        for i, r in enumerate(rows):    # the weights this step started from: broken by the update before it
            if not _finite(r["w_std"]):
                self.nonfinite = {"step": max(step - 1, 0), "layer": i, "tensor": "weight"}
                return
        # then in the order a step computes them: activations, the loss, the gradients (from the last layer), weights
        for i, r in enumerate(rows):
            if r["nonfinite_frac"] is None or r["nonfinite_frac"] > 0 or not _finite(r["a_std"]):
                self.nonfinite = {"step": step, "layer": i, "tensor": "activation"}
                return
        if not _finite(loss_v):
            self.nonfinite = {"step": step, "layer": None, "tensor": "loss"}
            return
        for i in reversed(range(len(rows))):
            r = rows[i]
            if not (_finite(r["grad_w_norm"]) and _finite(r["grad_z_std"])):
                self.nonfinite = {"step": step, "layer": i, "tensor": "gradient"}
                return
        for i, ok in enumerate(weights_ok):
            if ok < 1:
                self.nonfinite = {"step": step, "layer": i, "tensor": "weight"}
                return

    # -- epochs ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float | None]:
        """Train and test loss (and accuracy) over the whole split, in one transfer."""
        was = self.model.training
        self.model.set_training(False)      # whatever the net holds: forward hooks and user code read .training too
        vals = []
        try:
            for x, y in ((self.data.x_train, self.data.y_train), (self.data.x_test, self.data.y_test)):
                n = int(x.shape[0])
                # a large split in chunks, a stop honoured between them; their mean losses weighted by their rows
                # (float64 sums: the same mean to float32's rounding as one pass)
                loss = right = None
                for start in range(0, max(n, 1), EVAL_ROWS):
                    self.check()
                    xc, yc = x[start:start + EVAL_ROWS], y[start:start + EVAL_ROWS]
                    out = self.model(xc)
                    part = self.crit(out, yc).double() * (int(xc.shape[0]) / max(n, 1))
                    loss = part if loss is None else loss + part
                    if self.data.task == "classification":
                        hits = (out.argmax(1) == yc).double().sum()
                        right = hits if right is None else right + hits
                vals.append(loss.float())
                if self.data.task == "classification":
                    vals.append((right / max(n, 1)).float())
        finally:
            self.model.set_training(was)
        v = torch.stack(vals).tolist()
        if self.data.task == "classification":
            return {"train_loss": v[0], "train_acc": v[1], "test_loss": v[2], "test_acc": v[3]}
        return {"train_loss": v[0], "test_loss": v[1], "train_acc": None, "test_acc": None}

    def final_stats(self) -> list[dict[str, Any]]:
        """The probe's statistics on the first training batch after training (no update); with end_distributions
        also the quantile boxes of each layer's weights, outputs and gradients (in final_distributions)."""
        xb = self.data.x_train[: self.cfg.batch]
        yb = self.data.y_train[: self.cfg.batch]
        blocks = self.blocks
        with Capture(blocks, check=self.check) as cap:
            loss = self.crit(self.model(xb), yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        layers, _, dists = collect(cap, blocks, [], with_distributions=self.end_distributions)    # one transfer
        self.opt.zero_grad(set_to_none=True)
        if dists is not None:
            self.final_distributions = tuple(dists)
        return layer_rows(self.model, layers)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        extras = "".join([f", {cfg.norm} norm" if cfg.norm != "none" else "", ", residual" if cfg.residual else "",
                          f", dropout {cfg.dropout:g}" if cfg.dropout > 0 else ""])
        self.emit(LogLine("train", "info", f"training {cfg.depth} x {cfg.width} {cfg.activation}{extras}, init "
                                           f"{cfg.init}{gain_note(cfg)}, {cfg.optimizer} lr {cfg.lr:g}, {cfg.epochs} epochs of "
                                           f"{self.per_epoch} steps on {cfg.data} ({self.device})"
                                           + (f"; seed {cfg.seed}, run {self.run_index + 1} of {self.runs}"
                                              if self.runs > 1 else "")))
        if self.resized:
            self.emit(LogLine("train", "info", f"{RESIZED} {cfg.in_features} "
                                               f"in, {cfg.out_features} out (the form's are for probes)"))
        t0 = time.perf_counter()
        last_t, last_step = t0, 0
        every = cfg.stats_every
        epoch = 1
        try:
            for epoch in range(1, cfg.epochs + 1):
                perm = torch.randperm(self.n_train, generator=self.shuffle).to(self.device)
                for b in range(self.per_epoch):
                    self.check()
                    idx = perm[b * cfg.batch:(b + 1) * cfg.batch]
                    xb, yb = self.data.x_train[idx], self.data.y_train[idx]
                    sampled = self.step % every == 0
                    if sampled:
                        self.last_loss = self._sampled_step(xb, yb, epoch)
                    else:
                        loss = self._plain_step(xb, yb)
                        if self.on_cpu:         # the value is on the host already: no device to wait for
                            if not math.isfinite(self.last_loss):
                                self.first_bad.fill_(self.step)
                                self._diagnose(xb, yb, epoch)
                        else:
                            bad = ~torch.isfinite(loss.detach())
                            self.first_bad = torch.where(bad & (self.first_bad < 0),
                                                         torch.full_like(self.first_bad, self.step), self.first_bad)
                    now = time.perf_counter()
                    if sampled or now - last_t >= PROGRESS_SECONDS:
                        # on a GPU the loss shown between sampled steps is the latest sampled one: reading the
                        # current loss would make the step wait for the device
                        rate = (self.step + 1 - last_step) / max(now - last_t, 1e-9)
                        last_t, last_step = now, self.step + 1
                        self.emit(Progress("train", step=self.step + 1, total_steps=self.total_steps, epoch=epoch,
                                           epochs=cfg.epochs, loss=self.last_loss, steps_per_sec=rate,
                                           run=self.run_index, runs=self.runs))
                    if self.sched is not None:
                        self.sched.step()
                    self.step += 1
                    if self.nonfinite is not None:
                        raise _Stop()
                ev = {"epoch": epoch, **self.evaluate()}
                self.epochs.append(ev)
                self.emit(EpochEnd("train", epoch=epoch, epochs=cfg.epochs, step=self.step, run=self.run_index,
                                   train_loss=ev["train_loss"], test_loss=ev["test_loss"],
                                   train_acc=ev["train_acc"], test_acc=ev["test_acc"]))
                if not _finite(ev["train_loss"]):
                    self._diagnose(xb, yb, epoch, after_epoch=True)
                    raise _Stop()
        except JobCancelled:
            self.stopped = "cancelled"
            self.emit(LogLine("train", "info", f"cancelled at step {self.step}{self._which()}"))
        except _Stop:
            self.stopped = "nonfinite"
            nf = self.nonfinite or {"step": self.step, "layer": None, "tensor": "loss"}
            self.nonfinite = nf
            where = f", layer {nf['layer']}" if nf["layer"] is not None else ""
            self.emit(NonFinite("train", step=nf["step"], layer=nf["layer"], tensor=nf["tensor"]))
            self.emit(LogLine("train", "error", f"non-finite {nf['tensor']} at step {nf['step']}{where}; stopped"))
        seconds = time.perf_counter() - t0
        if self.step != last_step:
            # where the run ended is reported too, so that a bar ends full, or where the run stopped
            self.emit(Progress("train", step=self.step, total_steps=self.total_steps, epoch=epoch,
                               epochs=cfg.epochs, loss=self.last_loss, steps_per_sec=self.step / max(seconds, 1e-9),
                               run=self.run_index, runs=self.runs))
        try:
            self.final = self.final_stats() if self.stopped == "finished" else None
        except JobCancelled:        # stopped while taking the end state: the steps so far are still the result
            self.stopped, self.final = "cancelled", None
            self.emit(LogLine("train", "info", f"cancelled at step {self.step}{self._which()}, before the end state"))
        if self.final is not None:
            last_epoch = (self.epochs.latest or {}).get("epoch", 0)
            self.emit(LayerStats("train", step=self.step, epoch=last_epoch, layers=tuple(self.final), final=True,
                                 distributions=self.final_distributions, run=self.run_index))
            note = symmetry_note(self.final)
            if note:
                self.emit(WarningLine("train", "warning", f"end state: {note}"))
        if self.runs > 1 and self.stopped != "cancelled":
            # each seed's ending before the next seed's start (the job's own summary comes after the last)
            end = self.epochs.latest or {}
            fmt = lambda v: "n/a" if v is None else f"{v:.4g}"
            how = "finished" if self.stopped == "finished" else "stopped on a non-finite value"
            self.emit(LogLine("train", "info", f"{how} after {self.step} steps; train loss "
                                               f"{fmt(end.get('train_loss'))}, test loss {fmt(end.get('test_loss'))}"
                                               f"{self._which()}"))
        return self.result(seconds)

    def _which(self) -> str:
        """' (seed S, run r of n)' for a training of several seeds, else ''."""
        return f" (seed {self.cfg.seed}, run {self.run_index + 1} of {self.runs})" if self.runs > 1 else ""

    def _diagnose(self, xb: torch.Tensor, yb: torch.Tensor, epoch: int, after_epoch: bool = False) -> None:
        """After a non-finite loss (a step's, or with after_epoch the epoch's over the train split), one instrumented
        pass on the weights that gave it names the layer and the tensor; on the CPU every step's loss is read before
        its update, so those weights are still there. Weights found non-finite already were made so by the update
        before. On a GPU the steps went on past a flagged loss: the loss and its step are all that is known."""
        step = self.step
        # one transfer: the flagged step and whether each layer's weights are finite
        with torch.no_grad():
            finite = torch.stack([torch.isfinite(w).all() for w in self.weights])
            flat = torch.cat([self.first_bad.reshape(1), finite.long()]).tolist()
        flagged = flat[0]
        broken = [i for i, ok in enumerate(flat[1:]) if not ok]
        if flagged >= 0 and not self.on_cpu:
            self.nonfinite = {"step": flagged, "layer": None, "tensor": "loss"}
            return
        if broken:
            self.nonfinite = {"step": max(step - 1, 0), "layer": broken[0], "tensor": "weight"}
            return
        if after_epoch:     # every step's loss was finite, and so are the weights: the epoch's loss overflowed
            self.nonfinite = {"step": max(step - 1, 0), "layer": None, "tensor": "loss"}
            return
        self.step = flagged if flagged >= 0 else step
        try:
            self._sampled_step(xb, yb, epoch)
        finally:
            self.step = step
        if self.nonfinite is None:
            self.nonfinite = {"step": self.step, "layer": None, "tensor": "loss"}

    def result(self, seconds: float) -> dict[str, Any]:
        if self.final is not None:
            final = {"layers": self.final, "step": self.step}
        else:   # a run stopped early: its last sampled step's statistics, under the names of the end state's
            latest = self.steps.latest or {}
            final = {"layers": [{**{k: v for k, v in r.items() if k != "update_to_weight_log10"},
                                 "distinct_units": None} for r in latest.get("layers", [])],
                     "step": latest.get("step")}
        # as a probe's, of the backward signal alone (the forward reference, the data's std, is not the net's)
        v = verdict_of(final["layers"], None) if final["layers"] else None
        if self.stopped == "nonfinite" and v is not None:
            # where the run found it, not what its last sampled numbers (steps before the blow-up, or the
            # diagnosis's step, where a loss that overflowed first has made later tensors NaN) point to
            v = {**v, "kind": "nonfinite", "from_layer": (self.nonfinite or {}).get("layer")}
        final["verdict"] = v
        return {
            "config": self.cfg.to_dict(), "device": str(self.device), "torch": str(torch.__version__),
            "task": self.data.task, "total_steps": self.total_steps, "steps_done": self.step,
            "seconds": seconds, "epochs": self.epochs.values(), "steps": self.steps.values(),
            "steps_sampled": self.sampled,
            "final": final, "stopped": self.stopped, "nonfinite": self.nonfinite,
        }


class _Stop(Exception):
    pass


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def run_training(cfg: Config, emit: Emit | None = None, check: Callable[[], None] | None = None,
                 seeds: tuple[int, ...] = (), ready: Callable[[], None] | None = None,
                 end_distributions: bool = False) -> dict[str, Any]:
    """One run, or one per seed (the first run's fields at the top, every run under "runs"). `ready` is called once
    the first run is set up, every setting checked (data read, net built), before it trains."""
    ready = ready or (lambda: None)
    if not seeds:
        tr = Trainer(cfg, emit, check, end_distributions=end_distributions)
        ready()
        return tr.run()
    runs = []
    for i, s in enumerate(seeds):
        tr = Trainer(cfg.replace(seed=s), emit, check, run_index=i, end_distributions=end_distributions,
                     runs=len(seeds))
        if i == 0:
            ready()
        runs.append(tr.run())
        if runs[-1]["stopped"] == "cancelled":     # a stop ends the preset, not only the seed running
            break
    return {**runs[0], "runs": runs}

