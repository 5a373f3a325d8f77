"""The experiment spec: one frozen dataclass of every setting, its field table, validation and TOML I/O."""
from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
import re
import select
import stat
import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus")
INITS = (
    "default", "zeros", "constant", "normal", "uniform", "scaled_normal", "xavier_uniform", "xavier_normal",
    "kaiming_uniform", "kaiming_normal", "orthogonal", "eye", "sparse", "lsuv",
)
NORMS = ("none", "batch", "layer")
LOSSES = ("signal", "mse")
MODES = ("fan_in", "fan_out")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "cosine")
BUILTIN_DATA = ("poly", "blobs")


class SpecError(ValueError):
    """A setting that is refused: names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str):
        self.field = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field_name}: {shown(value)} is not allowed; {allowed}")


def shown(value: Any) -> str:
    """A refused value as its user wrote it: a string quoted, a config file's values in TOML's words (true, not
    True; 1979-05-27, not datetime.date(1979, 5, 27))."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        # a key that is not bare is quoted as TOML quotes it: it may hold a newline
        keys = [k if re.fullmatch(r"[A-Za-z0-9_-]+", str(k)) else toml_string(str(k)) for k in value]
        return "{" + ", ".join(f"{k} = {shown(v)}" for k, v in zip(keys, value.values())) + "}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


class MissingSetting(SpecError):
    """A setting that this run needs and that was not given: names the field and what it takes."""

    def __init__(self, field_name: str, allowed: str):
        super().__init__(field_name, None, allowed)
        ValueError.__init__(self, f"{field_name}: none given, and this run needs one; {allowed}")


@dataclass(frozen=True)
class Config:
    """Every setting of an experiment; the names are the command line's flags and the TOML keys."""

    # model
    depth: int = 20                 # number of Linear layers
    width: int = 256                # hidden size
    in_features: int = 256
    out_features: int = 256
    activation: str = "tanh"
    slope: float = 0.01             # negative slope of leaky_relu
    last_activation: bool = False   # also put the activation after the last Linear
    bias: bool = True
    norm: str = "none"              # BatchNorm or LayerNorm before the activation
    residual: bool = False          # x + block(x) where the widths match
    dropout: float = 0.0
    # initialisation
    init: str = "xavier_uniform"
    gain: float | None = None       # None: the activation's torch gain
    std: float = 1.0                # normal
    bound: float = 1.0              # uniform
    value: float = 0.0              # constant
    sigma_w: float = 1.0            # scaled_normal: std = sigma_w / sqrt(fan_in)
    sigma_b: float = 0.0            # scaled_normal: bias std
    mode: str = "fan_in"            # kaiming
    sparsity: float = 0.1           # sparse
    lsuv_tol: float = 0.05          # LSUV: |Var(out) - 1| below this
    # probe
    batch: int = 64
    loss: str = "signal"            # signal: sum(out * g), g ~ N(0, 1) seeded; mse: MSE against target
    target: float = 0.5
    # data
    data: str = "poly"              # poly, blobs, or a .npz / .pt file holding X and y
    n_rows: int = 1000
    deg: int = 2
    poly_w: tuple[float, ...] = (2.0, -1.0)
    poly_bias: bool = False
    classes: int = 3                # blobs
    standardize: bool = False
    # training
    optimizer: str = "sgd"
    lr: float = 0.003               # the default 20 x 256 net diverges at the course's 0.03; presets set their own
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    clip: float = 0.0               # max gradient norm; 0 is off
    schedule: str = "none"
    epochs: int = 5
    stats_every: int = 100          # benchmarks/overhead.py: the cadence that keeps training within 5% of plain
    # run
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        # a value of the wrong type is refused as it is made: "false" for a bool would read as true
        for name, info in FIELDS.items():
            value = getattr(self, name)
            if not (value is None and info.optional) and not _of_kind(info.kind, value):
                check_value(name, value)
            plain = _plain(value)
            if plain is not value:      # numpy's float64 and str_ subclass Python's: events carry Python's own
                object.__setattr__(self, name, plain)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["poly_w"] = list(self.poly_w)
        return d


@dataclass(frozen=True)
class FieldInfo:
    """How one field parses, what it allows, and a one-line help."""

    name: str
    kind: type
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None        # inclusive unless low_open
    high: float | None = None       # inclusive unless high_open
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    group: str = "model"
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)


def data_problem(v: str) -> str | None:
    """Why `v` is no data setting (a built-in name or a .npz or .pt file to read), or None."""
    if v in BUILTIN_DATA:
        return None
    if not (v.endswith(".npz") or v.endswith(".pt")):
        return "poly, blobs, or a path to a .npz or .pt file"
    if os.path.isdir(v):
        return "a .npz or .pt file, not a folder"
    if not os.path.isfile(v):
        if os.path.exists(v):       # reading a pipe would wait on its writer, a device might never end
            return "a regular .npz or .pt file (this is a device, a pipe or a socket)"
        return "an existing .npz or .pt file (no such file)"
    return None


def _device_check(v: str) -> str | None:
    if v in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", v):
        return None
    return "auto, cpu, cuda, cuda:N or mps"


_F = FieldInfo
FIELDS: dict[str, FieldInfo] = {f.name: f for f in [
    _F("depth", int, "number of Linear layers", low=1, high=10000),
    _F("width", int, "hidden size", low=1, high=1 << 20),
    _F("in_features", int, "input size (a training's follows its data)", low=1, high=1 << 20),
    _F("out_features", int, "output size (a training's follows its data)", low=1, high=1 << 20),
    _F("activation", str, "activation after every Linear but the last", choices=ACTIVATIONS),
    _F("slope", float, "negative slope of leaky_relu", low=0, high=1),
    _F("last_activation", bool, "also put the activation after the last Linear"),
    _F("bias", bool, "Linear layers have a bias"),
    _F("norm", str, "normalisation before the activation", choices=NORMS),
    _F("residual", bool, "residual connections where widths match"),
    _F("dropout", float, "dropout probability", low=0, high=1, high_open=True),
    _F("init", str, "initialisation scheme", choices=INITS, group="init"),
    _F("gain", float, "gain for xavier/orthogonal (empty: the activation's)", low=0, high=1e6, low_open=True,
       optional=True, group="init"),
    _F("std", float, "std of the normal and sparse inits", low=0, high=1e6, group="init"),
    _F("bound", float, "bound of the uniform init", low=0, high=1e6, group="init"),
    _F("value", float, "value of the constant init", low=-1e6, high=1e6, group="init"),
    _F("sigma_w", float, "scaled normal: weight std times sqrt(fan_in)", low=0, high=1e3, group="init"),
    _F("sigma_b", float, "scaled normal: bias std", low=0, high=1e3, group="init"),
    _F("mode", str, "kaiming fan mode", choices=MODES, group="init"),
    _F("sparsity", float, "fraction of zeros per column in the sparse init", low=0, high=1, high_open=True,
       group="init"),
    _F("lsuv_tol", float, "LSUV tolerance on the output variance", low=0, high=1, low_open=True, group="init"),
    _F("batch", int, "batch size (probe and training)", low=1, high=1 << 20, group="probe"),
    _F("loss", str, "a probe's backward signal (a training's loss follows its data)", choices=LOSSES, group="probe"),
    _F("target", float, "a probe's MSE target", low=-1e6, high=1e6, group="probe"),
    _F("data", str, "training data: poly, blobs, or a .npz or .pt file holding X and y", group="data",
       check=data_problem),
    _F("n_rows", int, "rows of generated data", low=10, high=10_000_000, group="data"),
    _F("deg", int, "degree of the poly data", low=1, high=10, group="data"),
    _F("poly_w", tuple, "weights of the poly data, comma-separated", group="data"),
    _F("poly_bias", bool, "poly data: the last weight is a bias", group="data"),
    _F("classes", int, "blobs: number of clouds", low=2, high=1000, group="data"),
    _F("standardize", bool, "standardise the inputs (zero mean, unit std)", group="data"),
    _F("optimizer", str, "optimiser", choices=OPTIMIZERS, group="train"),
    _F("lr", float, "learning rate", low=0, high=1e9, low_open=True, group="train"),
    _F("momentum", float, "momentum (sgd and rmsprop)", low=0, high=1, high_open=True, group="train"),
    _F("nesterov", bool, "Nesterov momentum (sgd, with momentum above 0)", group="train"),
    _F("weight_decay", float, "weight decay: L2 in the gradient, decoupled for adamw (0, adamw's too, is off)",
       low=0, high=1e3, group="train"),
    _F("clip", float, "max gradient norm (0 is off)", low=0, high=1e12, group="train"),
    _F("schedule", str, "learning-rate schedule: step cuts it 10x at 1/3 and 2/3 of the steps, cosine anneals it "
                        "to 0 over them", choices=SCHEDULES, group="train"),
    _F("epochs", int, "training epochs", low=1, high=100_000, group="train"),
    _F("stats_every", int, "take per-layer statistics every k steps", low=1, high=1_000_000, group="train"),
    _F("seed", int, "random seed", low=0, high=2**63 - 1, group="run"),
    _F("device", str, "auto, cpu, cuda, cuda:N or mps", group="run", check=_device_check),
]}

assert set(FIELDS) == {f.name for f in dataclasses.fields(Config)}


def allowed(name: str) -> str:
    """What a field allows, as its refusals say it."""
    return _allowed(FIELDS[name])


def _allowed(info: FieldInfo) -> str:
    if info.choices:
        return "one of " + ", ".join(info.choices)
    if info.kind is bool:
        return "true or false (or yes/no, on/off, 1/0)"
    if info.kind is tuple:
        return "comma-separated finite numbers"
    if info.low is not None or info.high is not None:
        lo = "(" if info.low_open else "["
        hi = ")" if info.high_open else "]"
        word = "an integer" if info.kind is int else "a number"
        f = (lambda v: "inf" if v is None else str(int(v))) if info.kind is int else _fmt
        return f"{word} in {lo}{f(info.low)}, {f(info.high)}{hi}" + (", or empty for auto" if info.optional else "")
    return info.help


def _fmt(x: float | None) -> str:
    if x is None:
        return "inf"
    if float(x).is_integer() and abs(x) < 1e7:
        return str(int(x))
    return f"{x:g}"


def known_setting(name: str, names: Sequence[str] = tuple(FIELDS)) -> str:
    """What an unknown setting's refusal allows: the nearest names first (a typo's fix), then every name."""
    near = difflib.get_close_matches(name, list(names), n=2, cutoff=0.75)
    return "a known setting" + (f" (did you mean {' or '.join(near)}?)" if near else "") + ": " + ", ".join(names)


def parse_value(name: str, raw: Any) -> Any:
    """Turn a string (from a flag or a form) or a TOML value into the field's type; raises SpecError."""
    if name not in FIELDS:
        raise SpecError(name, raw, known_setting(name))
    info = FIELDS[name]
    if info.optional and (raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "auto"))):
        return None
    if info.kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):      # a config's 1 or 0, as the refusal offers
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(raw, str) and raw.strip().lower() in ("false", "no", "off", "0"):
            return False
        raise SpecError(name, raw, _allowed(info))
    if info.kind is int:
        if isinstance(raw, bool):
            raise SpecError(name, raw, _allowed(info))
        if isinstance(raw, numbers.Integral):       # numpy's integers too (a grid made with np.arange)
            return int(raw)
        # a whole float (TOML's 1e3) is its integer; past 2**53 a float names no one integer: refused as written
        if isinstance(raw, float) and raw.is_integer() and abs(raw) <= 2 ** 53:
            return int(raw)
        if isinstance(raw, float) and raw.is_integer():
            raise SpecError(name, raw, _allowed(info) + ", written as an integer (a float past 2**53 names none)")
        if isinstance(raw, str):
            try:
                return plain_int(raw)
            except ValueError:
                pass
        raise SpecError(name, raw, _allowed(info))
    if info.kind is float:
        if isinstance(raw, bool):
            raise SpecError(name, raw, _allowed(info))
        if isinstance(raw, numbers.Real):           # numpy's numbers too
            try:
                return float(raw)
            except OverflowError:       # an integer beyond float's range, as TOML allows
                raise SpecError(name, raw, _allowed(info)) from None
        if isinstance(raw, str) and plain_number(raw):
            try:
                return float(raw.strip())
            except ValueError:
                pass
        raise SpecError(name, raw, _allowed(info))
    if info.kind is tuple:
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or len(items) == 0:
            raise SpecError(name, raw, _allowed(info))
        out = []
        for it in items:
            try:
                if isinstance(it, str) and not plain_number(it):
                    raise ValueError(it)
                v = float(it.strip()) if isinstance(it, str) else float(it)
            except (TypeError, ValueError, OverflowError):
                raise SpecError(name, raw, _allowed(info)) from None
            if isinstance(it, bool) or not math.isfinite(v):
                raise SpecError(name, raw, _allowed(info))
            out.append(v)
        return tuple(out)
    if not isinstance(raw, str):
        raise SpecError(name, raw, _allowed(info))
    return raw.strip()


def check_value(name: str, value: Any) -> None:
    """Raise SpecError when a parsed value lies outside what the field allows."""
    info = FIELDS[name]
    if value is None and info.optional:
        return
    if not _of_kind(info.kind, value):
        # a Config made in Python holds what it was given: "false" for a bool would read as true, "5" as no number
        raise SpecError(name, value, f"{_allowed(info)}, as a Python {info.kind.__name__} (given "
                                     f"{type(value).__name__} {value!r}; spec.parse_value turns it into one)")
    if info.choices and value not in info.choices:
        raise SpecError(name, value, _allowed(info))
    if info.kind in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(name, value, _allowed(info))
        lo_bad = info.low is not None and (value <= info.low if info.low_open else value < info.low)
        hi_bad = info.high is not None and (value >= info.high if info.high_open else value > info.high)
        if lo_bad or hi_bad:
            raise SpecError(name, value, _allowed(info))
    if info.check is not None:
        msg = info.check(value)
        if msg:
            raise SpecError(name, value, msg)


def _plain(value: Any) -> Any:
    """A subclass of float, int or str (numpy's float64, str_) as the Python value itself; a tuple's items too."""
    if type(value) is tuple:
        items = tuple(_plain(v) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, bool):     # bool cannot be subclassed, and is an int
        return value
    # the base type's own conversion: a (str, Enum) member's str() is its name, its value is what was meant
    for kind, plain in ((int, int.__int__), (float, float.__float__), (str, str.__str__)):
        if isinstance(value, kind):
            return value if type(value) is kind else plain(value)
    return value


def _of_kind(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is tuple:
        return isinstance(value, tuple) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                for v in value)
    return True


def validate(cfg: Config) -> None:
    """Check every field and the rules that join fields; raise the first SpecError."""
    for name in FIELDS:
        check_value(name, getattr(cfg, name))
    if cfg.data == "poly" and cfg.poly_bias and len(cfg.poly_w) < 2:
        raise SpecError("poly_w", ",".join(f"{v:g}" for v in cfg.poly_w), "at least two numbers when poly_bias is on")
    if cfg.norm == "batch" and cfg.batch < 2:
        # BatchNorm in training mode needs two or more values per channel to take a variance
        raise SpecError("batch", cfg.batch, "at least 2 when norm is batch")


def parse_checked(name: str, raw: Any) -> Any:
    """parse_value, then check_value; a refusal echoes the value as typed (1e400, not the inf it parses to)."""
    value = parse_value(name, raw)
    try:
        check_value(name, value)
    except SpecError as e:
        if isinstance(raw, str) and e.field == name and raw.strip() != e.value:
            raise SpecError(name, raw.strip(), e.allowed) from None
        raise
    return value


def field_error(name: str, raw: Any) -> str | None:
    """The one-line refusal for a raw value of one field, or None when it is accepted (for forms)."""
    try:
        parse_checked(name, raw)
    except SpecError as e:
        return str(e)
    return None


def layer_sizes(cfg: Config) -> list[int]:
    """The widths the net's Linears map between: in_features, depth - 1 hidden widths, out_features."""
    return [cfg.in_features] + [cfg.width] * (cfg.depth - 1) + [cfg.out_features]


def steps_per_epoch(n_train: int, batch: int, norm: str = "none") -> int:
    """Batches per epoch; with batch norm a last batch of one row is left out (a variance of one value is not
    one), as a loader's drop_last would."""
    steps = max(1, -(-n_train // batch))
    if norm == "batch" and steps > 1 and n_train % batch == 1:
        steps -= 1
    return steps


def from_mapping(values: dict[str, Any], base: Config | None = None) -> Config:
    """A validated Config from raw values (strings or TOML types) over a base; unknown keys are refused."""
    base = base or Config()
    changes = {}
    for k, raw in values.items():
        changes[k] = parse_checked(k, raw) if k in FIELDS else parse_value(k, raw)
    cfg = base.replace(**changes)
    validate(cfg)
    return cfg


def read_toml(path: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings of a TOML experiment as raw values, keyed by field (and `preset`): top-level keys, or keys in
    one level of tables ([model], [train], ...). Unknown keys, deeper tables and a key given twice are refused;
    `extra` names keys taken as they are (a command's own settings, such as widths' widths)."""
    if not path:
        raise SpecError("config", path, "a TOML file path")
    if not os.path.exists(path):
        raise SpecError("config", path, "an existing TOML file (no such file)")
    if os.path.isdir(path):
        raise SpecError("config", path, "a TOML file, not a directory")
    try:
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        else:       # /dev/null, a process substitution, a pipe: read with a limit on the wait and on the size
            raw = tomllib.loads(_read_stream(path).decode("utf-8"))
    except SpecError:
        raise
    except PermissionError:
        raise SpecError("config", path, "a readable file (permission denied)") from None
    except ValueError as e:     # TOMLDecodeError, bad UTF-8, an integer over Python's 4300-digit limit
        raise SpecError("config", path, f"valid TOML ({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise SpecError("config", path, f"a readable file ({e.strerror})") from None
    flat: dict[str, Any] = {}
    for k, v in raw.items():
        items = [(f"{k}.{kk}", kk, vv) for kk, vv in v.items()] if isinstance(v, dict) else [(k, k, v)]
        for where, key, value in items:
            key = key.replace("-", "_")     # a flag's own spelling (stats-every) is its key too
            if isinstance(value, dict):
                raise SpecError("config", where, "settings at the top level or in one level of tables "
                                                 "([model], [train], ...), not a table inside a table")
            if key not in FIELDS and key != "preset" and key not in extra:
                raise SpecError("config", where, known_setting(key, ("preset", *FIELDS, *extra)))
            if key in flat:
                raise SpecError("config", where, f"each setting once ({key} is given twice)")
            flat[key] = value
    if "preset" in flat and not isinstance(flat["preset"], str):
        raise SpecError("preset", flat["preset"], "a preset's name, as a string")
    if "preset" in flat:
        from . import presets
        from .sweep import SWEEP_PRESETS

        known = [*presets.PRESETS, "random-matrix", *SWEEP_PRESETS]     # random-matrix: `initlab probe` only
        if flat["preset"] not in known:
            raise SpecError("preset", flat["preset"], "one of " + ", ".join(known))
    # a data file named beside the experiment is found from anywhere; else from the current folder, as a flag. So
    # are a sweep's grid of data files (vary = ["data=a.npz,b.npz"])
    if isinstance(flat.get("data"), str):
        flat["data"] = _beside(path, flat["data"])
    if isinstance(flat.get("vary"), list):
        flat["vary"] = [data_grid_paths(v, lambda d: _beside(path, d)) if isinstance(v, str) else v
                        for v in flat["vary"]]
    return flat


def _beside(config_path: str, data: str) -> str:
    if data in BUILTIN_DATA or os.path.isabs(data):
        return data
    beside = os.path.join(os.path.dirname(os.path.abspath(config_path)), data)
    return beside if os.path.isfile(beside) else data


def data_grid_paths(item: str, where: Callable[[str], str]) -> str:
    """A grid's `data=V1,V2` with each file's path passed through `where` (made absolute to save it, found beside
    a config file to read it); any other setting's grid as it is."""
    name, eq, values = item.partition("=")
    if not eq or name.strip().replace("-", "_") != "data":
        return item
    return name + "=" + ",".join(v if not v.strip() or v.strip() in BUILTIN_DATA else where(v.strip())
                                 for v in values.split(","))


PIPE_FIRST_WAIT = 15.0      # seconds a config read from a pipe may wait for its writer's first byte
PIPE_WAIT = 60.0            # and between its later chunks
STREAM_LIMIT = 1 << 20      # bytes of a config read from a pipe or a device


def _read_stream(path: str) -> bytes:
    """A config that is no regular file (/dev/null, a process substitution, a named pipe), read as it comes: a pipe
    nothing writes to is refused after PIPE_FIRST_WAIT seconds (open() would wait for ever), a device that never
    ends after STREAM_LIMIT bytes."""
    if not stat.S_ISFIFO(os.stat(path).st_mode):      # a device: read at once, up to the limit
        with open(path, "rb") as fh:
            data = fh.read(STREAM_LIMIT + 1)
        if len(data) > STREAM_LIMIT:
            raise _too_long(path)
        return data
    if not sys.platform.startswith("linux"):
        # select() there may report a pipe with no writer as ended: its settings would silently be the defaults
        raise SpecError("config", path, "a regular TOML file (pipes are read on Linux only)")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            wait = PIPE_WAIT if chunks else PIPE_FIRST_WAIT
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                got = f"stopped after {size} bytes" if chunks else "sent nothing"
                raise SpecError("config", path, f"a file to read (this pipe {got} for {wait:g} s)")
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > STREAM_LIMIT:
                raise _too_long(path)
    finally:
        os.close(fd)


def _too_long(path: str) -> SpecError:
    return SpecError("config", path, f"a TOML file of at most {STREAM_LIMIT >> 20} MiB (this one goes on past it)")


def load_toml(path: str, base: Config | None = None) -> tuple[Config, dict[str, Any]]:
    """Read a TOML experiment over a base (its `preset` key is the caller's to apply); returns the Config and the
    raw keys found (so flags can win over them)."""
    flat = read_toml(path)
    flat.pop("preset", None)
    return from_mapping(flat, base), flat


def toml_string(v: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for c in v:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def saved_toml(cfg: Config, preset: str | None = None, drop_seed: bool = False, top: Sequence[str] = ()) -> str:
    """to_toml of a saved experiment: a data file's path made absolute, so that it is read from any folder; the
    preset it starts from named, its seed left out where a preset of several seeds is to run them all (drop_seed),
    and `top` lines (a command's own settings) at the top level, before any table a later edit might add."""
    if cfg.data not in BUILTIN_DATA:
        cfg = cfg.replace(data=os.path.abspath(cfg.data))
    lines = to_toml(cfg).splitlines()
    lines[1:1] = [*top, *([f"preset = {toml_string(preset)}"] if preset else [])]
    if drop_seed:
        lines = [ln for ln in lines if not ln.startswith("seed = ")]
    return "\n".join(lines) + "\n"


def to_toml(cfg: Config) -> str:
    """TOML text of every setting, one key a line (gain is left out when it follows the activation)."""
    lines = ["# initlab experiment"]
    for name, v in cfg.to_dict().items():
        if v is None:
            continue
        if isinstance(v, bool):
            s = "true" if v else "false"
        elif isinstance(v, str):
            s = toml_string(v)
        elif isinstance(v, list):
            s = "[" + ", ".join(repr(float(x)) for x in v) + "]"
        elif isinstance(v, float):
            s = repr(v)
        else:
            s = str(v)
        lines.append(f"{name} = {s}")
    return "\n".join(lines) + "\n"


def plain_number(s: str) -> bool:
    """Digits as typed on a keyboard: Python's int() and float() also take '1_0' and full-width digits, which a
    setting should not silently read as 10 or 3."""
    return s.isascii() and "_" not in s


def plain_int(raw: Any) -> int:
    """int(raw) of a number as typed on a keyboard (see plain_number); ValueError otherwise."""
    text = str(raw)
    if not plain_number(text):
        raise ValueError(text)
    return int(text.strip())


def parse_widths(raw: str) -> list[int]:
    """"64,128,256" -> [64, 128, 256]; each a valid width, at least two, no repeats."""
    allowed = "comma-separated integers in [1, 1048576], at least two, each once"
    try:
        ws = [plain_int(p) for p in str(raw).split(",")]
    except ValueError:
        raise SpecError("widths", raw, allowed) from None
    if len(ws) < 2 or len(set(ws)) != len(ws):
        raise SpecError("widths", raw, allowed)
    for w in ws:
        try:
            check_value("width", w)
        except SpecError:
            raise SpecError("widths", raw, allowed) from None
    return ws
