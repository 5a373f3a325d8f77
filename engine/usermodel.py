"""A user's own model: load `file.py:factory` or `package.module:factory`, check what it returns, build its inputs.

`factory()` returns an nn.Module, `(module, inputs)` or `(module, inputs, loss_fn)`; inputs are a tensor, a tuple
of tensors (positional arguments) or a dict of tensors (keyword arguments). Without inputs, `input_shape` draws
N(0, 1) on the CPU from the seeded stream (so a seed gives the same batch on every device), in the model's dtype.
Every refusal is a SpecError on the field `model`, `input_shape` or `layers`: one line that names the cause.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import sysconfig
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .spec import MissingSetting, SpecError, check_value, parse_value

SPEC_FORM = "FILE.py:FACTORY or package.module:FACTORY"
SHAPE_FORM = "comma-separated positive integers such as 16,3,32,32"
MAX_INPUT_ELEMENTS = 1 << 31


@dataclass(frozen=True)
class UserSpec:
    """What a probe of a user's model needs: the factory, the input shape, a module-name filter, seed, device."""

    model: str
    input_shape: tuple[int, ...] | None = None
    layers: str | None = None
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "input_shape": list(self.input_shape) if self.input_shape else None,
                "layers": self.layers, "seed": self.seed, "device": self.device}


def make_spec(model: str, input_shape: Any = None, layers: str | None = None, seed: Any = 0,
              device: str = "auto") -> UserSpec:
    """A checked UserSpec from raw values (strings from flags or a form, or parsed values)."""
    if not isinstance(model, str) or ":" not in model.strip() or not all(p.strip() for p in
                                                                          model.strip().rsplit(":", 1)):
        raise SpecError("model", model, SPEC_FORM)
    shape = parse_input_shape(input_shape)
    if layers is not None and layers != "":
        compile_layers(layers)
    else:
        layers = None
    seed = parse_value("seed", seed)
    check_value("seed", seed)
    device = parse_value("device", device)
    check_value("device", device)
    return UserSpec(model.strip(), shape, layers, seed, device)


def parse_input_shape(raw: Any) -> tuple[int, ...] | None:
    """'16,3,32,32' (or a sequence of ints) -> (16, 3, 32, 32); None or '' -> None."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    parts = raw.split(",") if isinstance(raw, str) else raw
    try:
        dims = tuple(int(p.strip()) if isinstance(p, str) else int(p) for p in parts)
    except (TypeError, ValueError):
        raise SpecError("input_shape", raw, SHAPE_FORM) from None
    if not dims or any(d < 1 for d in dims) or any(isinstance(p, (bool, float)) for p in parts):
        raise SpecError("input_shape", raw, SHAPE_FORM)
    n = 1
    for d in dims:
        n *= d
    if n > MAX_INPUT_ELEMENTS:
        raise SpecError("input_shape", raw, f"{SHAPE_FORM}, at most {MAX_INPUT_ELEMENTS} elements in all")
    return dims


def compile_layers(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as e:     # a{99999999999} overflows the compiler's count
        raise SpecError("layers", pattern, f"a regular expression over module names ({e})") from None


def first_line(exc: BaseException) -> str:
    """'TypeError: the first line of its message', for a one-line refusal of what a user's code raised."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


_OWN: set[str] = set()     # modules imported from a user's folder: forgotten at the next load, so read afresh


def _theirs(name: str, path: str | None, folder: str) -> bool:
    """A module of the user's own, from their folder: not an installed package (a virtual environment may live in
    that folder too) nor initlab itself (an editable checkout may be the current folder)."""
    if not path or name.split(".")[0] == "initlab":
        return False
    full = os.path.abspath(path)
    # the folder may hold the interpreter's own libraries too (a pyenv under ~, a model loaded from /)
    installed = {os.path.abspath(p) + os.sep for p in sysconfig.get_paths().values()}
    return full.startswith(folder.rstrip(os.sep) + os.sep) and "site-packages" not in full \
        and "dist-packages" not in full and not any(full.startswith(p) for p in installed)


@contextmanager
def _from_folder(folder: str):
    """The user's folder first on the import path while their file loads and their factory runs (a factory may
    import a neighbour when called); the modules imported from it are remembered, to be forgotten at the next load:
    an edited helper is read again, and another folder's helper of the same name is not taken for it. No bytecode
    is written into the user's folder."""
    before = dict(sys.modules)
    sys.path.insert(0, folder)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield
    finally:
        sys.dont_write_bytecode = writes
        if folder in sys.path:
            sys.path.remove(folder)
        for n, m in list(sys.modules.items()):
            if before.get(n) is m or not _theirs(n, getattr(m, "__file__", None), folder):
                continue
            if n.split(".")[0] in sys.stdlib_module_names:
                # the user's fractions.py, kept, would be every later `import fractions` (torch's sympy's too)
                if n in before:
                    sys.modules[n] = before[n]
                else:
                    sys.modules.pop(n, None)
            else:
                _OWN.add(n)


def _forget_own() -> None:
    for name in _OWN:
        sys.modules.pop(name, None)
    _OWN.clear()


def _load_file(spec: str, path: str) -> tuple[Any, str]:
    if not path.endswith(".py"):
        raise SpecError("model", spec, f"{SPEC_FORM} (a file path must end in .py)")
    if not os.path.isfile(path):
        raise SpecError("model", spec, f"{SPEC_FORM} (no such file: {path})")
    full = os.path.abspath(path)
    # a name per file, so that loading a file again replaces its module rather than clashing with another's
    name = "initlab_user_" + re.sub(r"\W", "_", os.path.basename(full)[:-3]) + "_" + \
        hashlib.sha1(full.encode()).hexdigest()[:8]
    mspec = importlib.util.spec_from_file_location(name, full)
    if mspec is None or mspec.loader is None:
        raise SpecError("model", spec, f"{SPEC_FORM} (cannot load {path} as Python)")
    module = importlib.util.module_from_spec(mspec)
    folder = os.path.dirname(full)
    sys.modules[name] = module          # dataclasses and pickling look the module up while it runs
    try:
        with _from_folder(folder):      # so the file can import its neighbours
            mspec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise SpecError("model", spec, f"a file that runs on import (it raised {first_line(e)})") from None
    return module, folder


def _load_module(spec: str, dotted: str) -> tuple[Any, str]:
    # the current folder first, as `python -m` has it: a console script's path starts at its own folder instead
    here = os.getcwd()
    try:
        with _from_folder(here):
            return importlib.import_module(dotted), here
    except ModuleNotFoundError as e:
        raise SpecError("model", spec, f"{SPEC_FORM} (no module named {e.name!r})") from None
    except Exception as e:
        raise SpecError("model", spec, f"a module that imports cleanly (it raised {first_line(e)})") from None


def load_factory(spec: str) -> Callable[[], Any]:
    """The callable that `spec` names, to be called with its folder on the import path (see _from_folder);
    SpecError('model', ...) when the file, module or name is missing. What an earlier load imported from a user's
    folder is read afresh."""
    where, _, attr = spec.strip().rpartition(":")
    if not where or not attr:
        raise SpecError("model", spec, SPEC_FORM)
    is_file = where.endswith(".py") or os.sep in where or "/" in where
    _forget_own()
    module, folder = _load_file(spec, where) if is_file else _load_module(spec, where)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError("model", spec, f"a callable named {attr!r} in {where}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError("model", spec, f"a callable named {attr!r} in {where} (it is {describe(obj)})")

    def factory() -> Any:
        with _from_folder(folder):
            return obj()

    return factory


Inputs = Any    # a tensor, a tuple of tensors or a dict of str -> tensor


def _check_inputs(spec: str, inputs: Any) -> None:
    allowed = "inputs that are a tensor, a tuple of tensors or a dict of tensors"
    if isinstance(inputs, torch.Tensor):
        tensors = [inputs]
    elif isinstance(inputs, (tuple, list)) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        tensors = list(inputs)
    elif isinstance(inputs, dict) and inputs and all(isinstance(k, str) and isinstance(t, torch.Tensor)
                                                     for k, t in inputs.items()):
        tensors = list(inputs.values())
    elif isinstance(inputs, (dict, tuple, list)) and not inputs:
        raise SpecError("model", spec, f"{allowed} (the factory gave an empty {type(inputs).__name__})")
    elif isinstance(inputs, dict):      # name the entry that is not a tensor, not the dict
        k, v = next((k, v) for k, v in inputs.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor)))
        raise SpecError("model", spec, f"{allowed} (the factory gave a dict whose {k!r} is {describe(v)})")
    else:
        raise SpecError("model", spec, f"{allowed} (the factory gave {describe(inputs)})")
    if any(t.device.type == "meta" for t in tensors):
        raise SpecError("model", spec, "inputs holding values (the factory gave a meta tensor: a shape only)")
    if all(t.numel() == 0 for t in tensors):
        raise SpecError("model", spec, "inputs of at least one element (the factory gave "
                                       f"{describe(tensors[0]) if len(tensors) == 1 else 'only empty tensors'})")


def article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def describe(obj: Any) -> str:
    """What a value is, for a refusal: "an int", "a tensor of shape [4, 3]", "a tuple of Tensor, str"."""
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {list(obj.shape)}"
    if isinstance(obj, (tuple, list)):
        return article(type(obj).__name__) + " of " + (", ".join(type(o).__name__ for o in obj[:4]) or "nothing")
    return article(type(obj).__name__)


@dataclass
class UserModel:
    """A loaded model with its inputs (on the device) and its loss function, if the factory gave one."""

    module: nn.Module
    inputs: Inputs
    loss_fn: Callable[[Any], Any] | None
    spec: UserSpec

    def forward(self) -> Any:
        if isinstance(self.inputs, dict):
            return self.module(**self.inputs)
        if isinstance(self.inputs, (tuple, list)):
            return self.module(*self.inputs)
        return self.module(self.inputs)

    def input_tensors(self) -> list[torch.Tensor]:
        if isinstance(self.inputs, dict):
            return list(self.inputs.values())
        if isinstance(self.inputs, (tuple, list)):
            return list(self.inputs)
        return [self.inputs]


def _model_dtype(module: nn.Module) -> torch.dtype:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _move(inputs: Inputs, device: torch.device) -> Inputs:
    if isinstance(inputs, dict):
        return {k: t.to(device) for k, t in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(t.to(device) for t in inputs)
    return inputs.to(device)


def requiring_grad(inputs: Inputs) -> Inputs:
    """Floating-point inputs as fresh leaves that require a gradient, so that the backward signal also reaches
    modules in front of the first trainable parameter (a frozen backbone) and parameter-free models."""
    mark = lambda t: t.detach().requires_grad_() if t.is_floating_point() else t
    if isinstance(inputs, dict):
        return {k: mark(t) for k, t in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(mark(t) for t in inputs)
    return mark(inputs)


def load_model(spec: UserSpec, device: torch.device) -> UserModel:
    """Seed, call the factory, check what it returned, move it to the device, and draw or move the inputs
    (floating ones then require a gradient). An --input-shape replaces any inputs the factory gave."""
    factory = load_factory(spec.model)
    torch.manual_seed(spec.seed)
    try:
        made = factory()
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise SpecError("model", spec.model, f"a factory that runs (it raised {first_line(e)})") from None
    inputs, loss_fn = None, None
    if isinstance(made, nn.Module):
        module = made
    elif isinstance(made, tuple) and len(made) in (2, 3) and isinstance(made[0], nn.Module):
        module, inputs = made[0], made[1]
        loss_fn = made[2] if len(made) == 3 else None
        if loss_fn is not None and not callable(loss_fn):
            raise SpecError("model", spec.model, "a callable loss_fn as the third item "
                                                 f"(the factory gave {describe(loss_fn)})")
    else:
        raise SpecError("model", spec.model, "a factory returning an nn.Module, (module, inputs) or "
                                             f"(module, inputs, loss_fn) (it returned {describe(made)})")
    try:
        module = module.to(device)
    except Exception as e:
        raise SpecError("model", spec.model, f"a module that moves to {device} (it raised {first_line(e)})") \
            from None
    if spec.input_shape is not None:
        inputs = torch.randn(spec.input_shape).to(device=device, dtype=_model_dtype(module))
    elif inputs is None:
        raise MissingSetting("input_shape", f"{SHAPE_FORM} (the factory returned a module without inputs: the "
                                            "probe draws N(0, 1) inputs of this shape)")
    else:
        _check_inputs(spec.model, inputs)
        inputs = _move(inputs, device)
    return UserModel(module, requiring_grad(inputs), loss_fn, spec)
