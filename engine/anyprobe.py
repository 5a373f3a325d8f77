"""The probe of any nn.Module: each leaf module's output and gradient, each parameter's gradient, and warnings.

One forward and one backward pass. Rows follow execution order (the order in which modules finish their first
call). Row keys follow the MLP probe's where they mean the same: a_* describe the module's output and grad_z_*
the gradient at that output; grad_w_*, w_std and grad_to_weight describe the module's weight. Statistics are
reduced on the device as each tensor appears (a later in-place operation cannot change them) and reach the host
in one transfer at the end.

A module whose forward completes without calling any of its submodules (nn.MultiheadAttention, which runs one
functional call; any fused fast path) is kept as one row and warned about. TransformerEncoderLayer's fused
inference path is not taken while hooks are attached (torch checks for them), so its internals stay visible.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import device as devices
from .moments import FIELDS, Moments
from .spec import SpecError
from .usermodel import UserModel, UserSpec, compile_layers, describe, first_line, load_model
from .verdict import first_nonfinite, ratio, verdict

ROOT_NAME = "(model)"
LIST_AT_MOST = 8


def first_float(obj: Any) -> torch.Tensor | None:
    """The first floating-point tensor in a module's output (a tensor, or nested tuples, lists and dicts)."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    if isinstance(obj, (tuple, list)):
        items = obj
    elif isinstance(obj, dict):
        items = list(obj.values())
    else:
        return None
    for it in items:
        t = first_float(it)
        if t is not None:
            return t
    return None


def find_scalar_loss(obj: Any) -> tuple[torch.Tensor | None, str]:
    """The first 0-d floating tensor with a gradient in the output, and where it sits ('', '[1]', "['loss']")."""
    if isinstance(obj, torch.Tensor):
        ok = obj.is_floating_point() and obj.dim() == 0 and obj.requires_grad
        return (obj, "") if ok else (None, "")
    if isinstance(obj, (tuple, list)):
        pairs = [(f"[{i}]", v) for i, v in enumerate(obj)]
    elif isinstance(obj, dict):
        pairs = [(f"[{k!r}]", v) for k, v in obj.items()]
    else:
        return None, ""
    for key, v in pairs:
        t, where = find_scalar_loss(v)
        if t is not None:
            return t, key + where
    return None, ""


@dataclass
class _Row:
    name: str
    module: nn.Module
    hidden: bool                        # its internals ran without calling any submodule
    shape: list[int] | None = None
    fwd: torch.Tensor | None = None     # the Moments row of the output, on the device
    grad: torch.Tensor | None = None    # the Moments row of the gradient at the output


class ModuleHooks:
    """Context manager: a pre-hook and a hook on every module. Counts calls; on a selected row's first call
    (a leaf, or a module whose forward ran no submodule) reduces its output at once and hooks the output tensor
    for its gradient. Handles are always removed on exit."""

    def __init__(self, root: nn.Module, select: re.Pattern | None = None, check=None):
        self.root = root
        self.select = select
        self.check = check or (lambda: None)      # called at every module's call and every gradient (it may raise)
        self.modules = list(root.named_modules())
        self.calls: dict[int, int] = {id(m): 0 for _, m in self.modules}
        self.rows: dict[int, _Row] = {}          # insertion order is execution order
        self.active = True                       # off after the forward: checkpointing reruns modules backwards
        self._done = 0
        self._started: dict[int, list[int]] = {}
        self._handles: list = []

    def _chosen(self, name: str) -> bool:
        return self.select is None or self.select.search(name) is not None

    def __enter__(self) -> "ModuleHooks":
        for name, m in self.modules:
            self._handles.append(m.register_forward_pre_hook(self._pre))
            self._handles.append(m.register_forward_hook(lambda mod, inp, out, name=name: self._post(name, mod, out)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _pre(self, mod: nn.Module, inp: Any) -> None:
        if self.active:
            self.check()
            self._started.setdefault(id(mod), []).append(self._done)

    def _post(self, name: str, mod: nn.Module, out: Any) -> None:
        if not self.active:
            return
        key = id(mod)
        started = self._started.get(key, [self._done]).pop()
        self._done += 1
        self.calls[key] += 1
        if self.calls[key] > 1:
            return
        has_children = next(iter(mod.children()), None) is not None
        hidden = has_children and self._done - 1 == started
        if (has_children and not hidden) or not self._chosen(name):
            return
        row = _Row(name, mod, hidden)
        t = first_float(out)
        if t is not None:
            row.shape = list(t.shape)
            if t.numel() > 0:
                row.fwd = Moments(1, t.device).add([(0, t)]).table[0]
            if t.requires_grad:
                # a hook, not retain_grad: it sees the gradient of this version even if a later op is in place
                t.register_hook(lambda g, row=row: self._on_grad(row, g))
        self.rows[key] = row

    def _on_grad(self, row: _Row, g: torch.Tensor) -> None:
        self.check()        # a long backward is stopped between the rows' gradients
        if g.numel() > 0:
            row.grad = Moments(1, g.device).add([(0, g)]).table[0]


@dataclass(frozen=True)
class UserProbeResult:
    """What a probe of a user's model found, in plain Python values."""

    config: dict[str, Any]
    device: str
    torch: str
    model: str                                  # the root module's class name
    layers: list[dict[str, Any]]
    params: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    verdict: dict[str, Any]
    first_nonfinite_layer: int | None
    loss: float | None
    loss_source: str
    input_std: float | None
    inputs: list[list[int]]
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "device": self.device, "torch": self.torch, "model": self.model,
                "layers": self.layers, "params": self.params, "warnings": self.warnings, "verdict": self.verdict,
                "first_nonfinite_layer": self.first_nonfinite_layer, "loss": self.loss,
                "loss_source": self.loss_source, "input_std": self.input_std, "inputs": self.inputs}


def _pick_loss(um: UserModel, out: Any) -> tuple[torch.Tensor | None, str]:
    """loss_fn(out), else the first scalar in the output, else sum(out * g) with g ~ N(0, 1) from the seeded
    stream; (None, 'none') when nothing in the output carries a gradient."""
    if um.loss_fn is not None:
        try:
            loss = um.loss_fn(out)
        except Exception as e:
            raise SpecError("model", um.spec.model, f"a loss_fn that runs on the output (it raised {first_line(e)})") \
                from None
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
            raise SpecError("model", um.spec.model, "a loss_fn returning a floating scalar tensor "
                                                    f"(it returned {describe(loss)})")
        return loss.reshape(()), "loss_fn"
    scalar, where = find_scalar_loss(out)
    if scalar is not None:
        return scalar, "output" + where
    t = first_float(out)
    if t is None or not t.requires_grad:
        return None, "none"
    g = torch.randn(t.shape, dtype=t.dtype).to(t.device)
    return (t * g).sum(), "signal"


def _weight_of(row: _Row) -> tuple[str, nn.Parameter] | None:
    """The parameter that grad_w_* describe: `weight`, else the first of the module's own named *weight*
    (in_proj_weight, weight_ih_l0)."""
    own = dict(row.module.named_parameters(recurse=False))
    if isinstance(own.get("weight"), nn.Parameter):
        return "weight", own["weight"]
    for n, p in (own if own else dict(row.module.named_parameters())).items():
        if "weight" in n:
            return n, p
    return None


def _fans(w: torch.Tensor) -> tuple[int | None, int | None]:
    if w.dim() < 2:
        return None, None
    field_size = math.prod(w.shape[2:])
    return w.shape[1] * field_size, w.shape[0] * field_size


def _moment_row(v: list[float]) -> dict[str, float]:
    return dict(zip(FIELDS, v))


def _std(var: float) -> float:
    return math.sqrt(var) if var >= 0 else float("nan")


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:LIST_AT_MOST])
    return shown + (f" and {len(names) - LIST_AT_MOST} more" if len(names) > LIST_AT_MOST else "")


def _display(name: str) -> str:
    return name or ROOT_NAME


def callable_module(m: nn.Module) -> bool:
    """False for containers such as ModuleList whose forward is nn.Module's unimplemented one."""
    return type(m).forward is not nn.Module.forward


def _warnings(hooks: ModuleHooks, rows: list[_Row], params: list[tuple[str, nn.Parameter]],
              backward_ran: bool, loss_source: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in rows:
        n = hooks.calls[id(r.module)]
        if n > 1:
            out.append({"kind": "called_more_than_once", "module": _display(r.name), "calls": n,
                        "message": f"{_display(r.name)} ({type(r.module).__name__}) was called {n} times in one "
                                   "forward; its statistics describe the first call, its parameter gradients "
                                   "sum over all calls"})
        if r.hidden:
            out.append({"kind": "hidden_internals", "module": _display(r.name),
                        "message": f"{_display(r.name)} ({type(r.module).__name__}) ran without calling any of its "
                                   "submodules (a fused fast path or functional code): its internals are hidden "
                                   "from hooks, so one row describes its output as a whole"})
    hidden_under = [r.name for r in rows if r.hidden]
    inside = lambda name: any(name.startswith(h + ".") or (h == "" and name) for h in hidden_under)
    names_of = {id(m): n for n, m in hooks.modules}
    # a ModuleList or ModuleDict has no forward of its own: it is never called, its members are
    never = {n for n, m in hooks.modules if hooks.calls[id(m)] == 0 and not inside(n) and callable_module(m)}
    for name, m in hooks.modules:
        parent = name.rpartition(".")[0] if "." in name else ("" if name else None)
        if name not in never or (parent is not None and parent in never):
            continue
        subtree = [names_of[id(s)] for s in m.modules()]
        if hooks.select is not None and not any(hooks.select.search(s) for s in subtree):
            continue
        out.append({"kind": "never_called", "module": _display(name),
                    "message": f"{_display(name)} ({type(m).__name__}) was never called in the forward"})
    frozen = [n for n, p in params if not p.requires_grad]
    if frozen:
        out.append({"kind": "frozen_parameters", "params": frozen,
                    "message": f"{len(frozen)} parameter(s) frozen (requires_grad is False): {_names(frozen)}"})
    if backward_ran:
        missing = [n for n, p in params if p.requires_grad and p.grad is None]
        if missing:
            out.append({"kind": "no_gradient", "params": missing,
                        "message": f"{len(missing)} parameter(s) left without a gradient by the backward pass: "
                                   f"{_names(missing)}"})
    else:
        out.append({"kind": "no_backward", "message": "nothing in the output carries a gradient (loss source "
                                                      f"{loss_source}): forward statistics only"})
    return out


def _verdict(layers: list[dict[str, Any]], input_std: float | None) -> dict[str, Any]:
    """verdict.verdict over the rows that have an output (and a gradient, when any row has one); its layer
    numbers are row indices; the gradient ratio is between the first and last rows with a weight. A ratio with one
    row to read, where the model has more, is None: the others have no value, which is no gap."""
    with_grad = any(r["grad_z_rms"] is not None for r in layers)
    rows = [r for r in layers if r["a_std"] is not None and (r["grad_z_rms"] is not None or not with_grad)]
    if not rows:
        v: dict[str, Any] = {"kind": "unknown", "from_layer": None, "note": None, "first_last_gradz_ratio": None}
    else:
        v = verdict(rows, input_std)
        if v["from_layer"] is not None:
            v["from_layer"] = rows[v["from_layer"]]["index"]
        if len(rows) < 2 <= len(layers):   # one row left to read: a ratio of it to itself would say "no gap"
            v["first_last_gradz_ratio"] = None
    weighted = [r for r in layers if r.get("grad_w_absmean") is not None]
    v["first_last_grad_ratio"] = ratio(weighted[0]["grad_w_absmean"], weighted[-1]["grad_w_absmean"]) \
        if len(weighted) > 1 or len(layers) == 1 == len(weighted) else None
    return v


def _guarded(spec: UserSpec, what: str, fn):
    """Run the user's forward or backward; its failure is a one-line refusal (out of memory stays itself)."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:          # sys.exit() in a forward too: the refusal, not the user's exit status
        if type(e).__name__ in ("OutOfMemoryError", "JobCancelled"):
            raise
        raise SpecError("model", spec.model, f"a model whose {what} (it raised {first_line(e)})") from None


def _passes(um: UserModel, select: re.Pattern | None, check=None) -> tuple[ModuleHooks, torch.Tensor | None, str]:
    """Forward under hooks, pick the loss, backward; returns the hooks (rows, calls), the loss and its source."""
    for p in um.module.parameters():
        p.grad = None
    with ModuleHooks(um.module, select, check) as hooks:
        out = _guarded(um.spec, "forward runs on the inputs", um.forward)
        hooks.active = False
        loss, source = _pick_loss(um, out)
        if loss is not None:
            _guarded(um.spec, "backward runs", loss.backward)
    return hooks, loss, source


def _selected_params(module: nn.Module, rows: list[_Row], select: re.Pattern | None) -> list[tuple[str, nn.Parameter]]:
    """Every parameter, or with --layers those of the matching modules and of the hidden rows kept."""
    params = list(module.named_parameters())
    if select is None:
        return params
    chosen = {r.name for r in rows}
    hidden = [r.name for r in rows if r.hidden]
    keep = lambda owner: (select.search(owner) is not None or owner in chosen
                          or any(owner.startswith(h + ".") or h == "" for h in hidden))
    return [(n, p) for n, p in params if keep(n.rpartition(".")[0])]


def _param_rows(params: list[tuple[str, nn.Parameter]], p_rows: list[list[float]]) -> list[dict[str, Any]]:
    out = []
    for i, (n, p) in enumerate(params):
        w, g = _moment_row(p_rows[2 * i]), _moment_row(p_rows[2 * i + 1])
        has_grad, has_w = p.grad is not None, p.numel() > 0
        w_std = _std(w["var"]) if has_w else None
        g_std = _std(g["var"]) if has_grad else None
        out.append({
            "name": n, "module": _display(n.rpartition(".")[0]), "shape": list(p.shape), "numel": p.numel(),
            "requires_grad": p.requires_grad, "has_grad": has_grad, "w_std": w_std,
            "w_absmean": w["absmean"] if has_w else None, "grad_std": g_std,
            "grad_absmean": g["absmean"] if has_grad else None,
            "grad_norm": math.sqrt(g["count"] * (g["var"] + g["mean"] ** 2)) if has_grad else None,
            "grad_to_weight": (g_std / w_std if w_std else (math.inf if g_std else None)) if has_grad else None})
    return out


def _layer_row(i: int, r: _Row, calls: int, f: dict[str, float], g: dict[str, float],
               by_param: dict[int, dict[str, Any]]) -> dict[str, Any]:
    has_f, has_g = r.fwd is not None, r.grad is not None
    wt = _weight_of(r)
    pd = by_param.get(id(wt[1])) if wt else None
    fan_in, fan_out = _fans(wt[1]) if wt else (None, None)
    return {
        "index": i, "name": _display(r.name), "kind": type(r.module).__name__, "calls": calls, "shape": r.shape,
        "params": sum(p.numel() for p in r.module.parameters(recurse=r.hidden)), "fan_in": fan_in, "fan_out": fan_out,
        "a_mean": f["mean"] if has_f else None, "a_std": _std(f["var"]) if has_f else None,
        "a_min": f["amin"] if has_f else None, "a_max": f["amax"] if has_f else None,
        "a_absmean": f["absmean"] if has_f else None, "nonfinite_frac": 1.0 - f["finite"] if has_f else None,
        "grad_z_std": _std(g["var"]) if has_g else None,
        "grad_z_rms": math.sqrt(max(g["var"], 0.0) + g["mean"] ** 2) if has_g else None,
        **{k: pd[src] if pd else None for k, src in (("grad_w_std", "grad_std"), ("grad_w_absmean", "grad_absmean"),
                                                     ("grad_w_norm", "grad_norm"), ("w_std", "w_std"),
                                                     ("grad_to_weight", "grad_to_weight"))},
    }


def probe_model(um: UserModel, check=None) -> UserProbeResult:
    """One forward and backward pass of a loaded model under hooks; every reduction on the device, then one
    transfer for the lot. `check` is called at every module's call and every row's gradient (it raises to stop)."""
    t0 = time.perf_counter()
    module, spec = um.module, um.spec
    select = compile_layers(spec.layers) if spec.layers else None
    if select is not None and not any(select.search(n) for n, _ in module.named_modules()):
        names = [n for n, _ in module.named_modules() if n]     # the root's is no name a pattern could match
        raise SpecError("layers", spec.layers, f"a pattern matching a module name such as {_names(names)}")
    hooks, loss, source = _passes(um, select, check)
    rows = list(hooks.rows.values())
    if select is not None and not rows:
        matched = [(n, m) for n, m in module.named_modules() if n and select.search(n)]
        called = [n for n, m in matched if hooks.calls[id(m)] > 0]
        if called:      # only a block whose forward calls its parts: the parts are the rows
            raise SpecError("layers", spec.layers, f"a pattern matching a module that computes (it matches "
                                                   f"{_names(called)}, whose rows are its parts': a pattern such "
                                                   f"as '{called[0]}\\.' matches those)")
        matched = [n for n, _ in matched]
        raise SpecError("layers", spec.layers, f"a pattern matching a module the forward calls (it matches "
                                               f"{_names(matched)}, never called as a module: a parent such as "
                                               "nn.MultiheadAttention may use its parts' weights without calling them)")
    params = _selected_params(module, rows, select)
    dev = next((t.device for t in um.input_tensors()), torch.device("cpu"))
    nan = torch.full((len(FIELDS),), float("nan"), dtype=torch.float64, device=dev)
    row_of = lambda t: t.to(dev) if t is not None else nan
    items = []
    for i, (_, p) in enumerate(params):
        if p.numel() > 0:
            items.append((2 * i, p.to(dev)))
            if p.grad is not None:
                items.append((2 * i + 1, p.grad.to(dev)))
    x = next((t for t in um.input_tensors() if t.is_floating_point() and t.numel() > 0), None)
    parts = [torch.stack([row_of(r.fwd) for r in rows] + [row_of(r.grad) for r in rows]).flatten() if rows else None,
             Moments(2 * len(params), dev).add(items).table.flatten(),
             loss.detach().to(dev, torch.float64).reshape(1) if loss is not None else nan[:1],
             x.detach().double().std(correction=0).to(dev).reshape(1) if x is not None else nan[:1]]
    flat = torch.cat([t for t in parts if t is not None]).tolist()      # the one transfer
    k, R = len(FIELDS), len(rows)
    chunk = lambda j: _moment_row(flat[j * k:(j + 1) * k])
    param_out = _param_rows(params, [flat[(2 * R + j) * k:(2 * R + j + 1) * k] for j in range(2 * len(params))])
    by_param = {id(p): d for (_, p), d in zip(params, param_out)}
    layers = [_layer_row(i, r, hooks.calls[id(r.module)], chunk(i), chunk(R + i), by_param)
              for i, r in enumerate(rows)]
    input_std = flat[-1] if x is not None else None
    return UserProbeResult(
        config=spec.to_dict(), device=str(dev), torch=str(torch.__version__), model=type(module).__name__,
        layers=layers, params=param_out, warnings=_warnings(hooks, rows, params, loss is not None, source),
        verdict=_verdict(layers, input_std), first_nonfinite_layer=first_nonfinite(layers),
        loss=flat[-2] if loss is not None and source != "signal" else None, loss_source=source,
        input_std=input_std, inputs=[list(t.shape) for t in um.input_tensors()],
        seconds=time.perf_counter() - t0, names=[r["name"] for r in layers])


def run_user_probe(spec: UserSpec, check=None) -> UserProbeResult:
    """Resolve the device, load the model and its inputs, and probe it (`check`: see probe_model)."""
    dev = devices.resolve(spec.device)
    return probe_model(load_model(spec, dev), check)
