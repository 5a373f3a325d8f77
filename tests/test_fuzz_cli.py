"""Fuzzed command line and TOML loader: every case ends in a result or a one-line refusal, never a traceback.

The command line is driven in-process through `initlab.tui.cli.main`, one flag per `spec.FIELDS` entry, with
values of every kind: numbers of every size and sign, NaN, inf, empty strings, unknown names, unicode, wrong
types. Settings that make a run costly (depth, width, rows, epochs, ...) are fuzzed over their whole refused
range but kept small where they are accepted, so that each case takes milliseconds; huge networks have their
own test, which checks that the memory estimate refuses them before anything is allocated.
"""
from __future__ import annotations

import json
import math
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from initlab.engine import spec
from initlab.engine.presets import PRESETS
from initlab.engine.spec import FIELDS, Config, SpecError
from initlab.tui.cli import main

CASES: Counter = Counter()          # cases run, by what was fuzzed; checked and printed by the last test
CODES: Counter = Counter()

# Hypothesis's own profiles choose the seed: new cases on each run at a desk, and under CI (where it loads its "ci"
# profile) the same cases on every run, so that a landing does not hang on what a draw happens to find.
SETTINGS = dict(deadline=10_000,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

# -- files the data and config fields may name ------------------------------------------------------------------

FILES = tempfile.TemporaryDirectory(prefix="initlab-fuzz-")
D = FILES.name


def _files() -> dict[str, str]:
    g = np.random.default_rng(0)
    paths = {k: os.path.join(D, k) for k in (
        "reg.npz", "cls.npz", "reg.pt", "corrupt.npz", "corrupt.pt", "nan.npz", "shape.npz", "keys.npz",
        "text.npz", "one_row.npz", "neg_labels.npz", "dir.npz")}
    np.savez(paths["reg.npz"], X=g.normal(size=(30, 3)).astype(np.float32), y=g.normal(size=30))
    np.savez(paths["cls.npz"], X=g.normal(size=(30, 2)), y=g.integers(0, 3, size=30))
    torch.save({"X": torch.randn(30, 2), "y": torch.randn(30, 1)}, paths["reg.pt"])
    with open(paths["corrupt.npz"], "wb") as fh:
        fh.write(b"PK\x03\x04" + bytes(g.integers(0, 256, size=200, dtype=np.uint8)))
    with open(paths["corrupt.pt"], "wb") as fh:
        fh.write(bytes(g.integers(0, 256, size=200, dtype=np.uint8)))
    x = g.normal(size=(30, 2))
    x[3, 1] = np.nan
    np.savez(paths["nan.npz"], X=x, y=g.normal(size=30))
    np.savez(paths["shape.npz"], X=g.normal(size=(30, 2, 2)), y=g.normal(size=30))
    np.savez(paths["keys.npz"], a=np.zeros(3))
    np.savez(paths["text.npz"], X=np.array([["a", "b"]] * 30), y=g.normal(size=30))
    np.savez(paths["one_row.npz"], X=g.normal(size=(1, 2)), y=g.normal(size=1))
    np.savez(paths["neg_labels.npz"], X=g.normal(size=(30, 2)), y=-g.integers(1, 3, size=30))
    os.mkdir(paths["dir.npz"])
    return paths


DATA_FILES = _files()

# -- the command lines --------------------------------------------------------------------------------------------

TINY = ["--depth=2", "--width=4", "--in-features=3", "--out-features=2", "--device=cpu"]
BASE = {
    "probe": TINY + ["--batch=8"],
    "jacobian": TINY,
    "train": TINY + ["--batch=8", "--n-rows=20", "--epochs=1"],
    "sweep": TINY + ["--batch=8", "--n-rows=20", "--epochs=1"],
    "theory": [],
}
COMMAND_GROUPS = {
    "probe": ("model", "init", "probe", "run"),
    "jacobian": ("model", "init", "run"),
    "train": None,
    "sweep": None,
}
THEORY_FIELDS = ("activation", "sigma_w", "sigma_b", "slope")


def fields_of(cmd: str) -> list[str]:
    if cmd == "theory":
        return list(THEORY_FIELDS)
    groups = COMMAND_GROUPS[cmd]
    return [n for n, f in FIELDS.items() if groups is None or f.group in groups]


# accepted values of these settings are capped so that a case runs in milliseconds
CAP = {"depth": 8, "width": 128, "in_features": 128, "out_features": 128, "batch": 256, "n_rows": 200,
       "epochs": 2, "classes": 40, "inputs": 8}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def num_text(x) -> str:
    return repr(x) if isinstance(x, float) else str(x)


SPECIAL = ["", " ", "nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "1e309", "-1e309", "1e-400", "0",
           "-0", "-0.0", "0x10", "1_000", "1e3", "3.0", "3.5", "٣", "１２", "²", "true", "false", "none", "None",
           "auto", "null", "[]", "{}", "1,2", ",", ";", "1;2", "--", "-", "=", "💥", "ß", "Ω", "\u202e12", "\t3\n",
           "\x00", "a\x00b", "9" * 400, "-" + "9" * 400, "1e18", str(2 ** 63), str(2 ** 64), str(-(2 ** 63))]
NAMES = sorted({c for f in FIELDS.values() for c in f.choices} | set(PRESETS) | {
    "Tanh", "RELU", "xavier", "kaiming", "he", "cuda:1", "cuda:-1", "cuda:00", "CPU", "gpu", "tpu", "cuda:",
    "x.npz", "x.pt", "x.csv", "/", ".", "..", "~", os.path.join(D, "missing.npz"), DATA_FILES["dir.npz"]})

WILD = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70).map(str),
    st.floats().map(num_text),
    st.floats(allow_nan=False).map(lambda f: f"{f:e}"),
    st.sampled_from(SPECIAL),
    st.sampled_from(NAMES),
    st.text(max_size=12),
)


def boundary(name: str) -> list[str]:
    """Values just outside what a numeric field allows (and, for open ends, the end itself)."""
    f = FIELDS[name]
    out = []
    if f.kind is int:
        if f.low is not None:
            out += [str(int(f.low) - 1), str(-(2 ** 63)), "-1"]
        if f.high is not None:
            out += [str(int(f.high) + 1), str(2 ** 64)]
    elif f.kind is float:
        if f.low is not None:
            out += [repr(math.nextafter(f.low, -math.inf)), repr(-1e308)]
            if f.low_open:
                out.append(repr(float(f.low)))
        if f.high is not None:
            out += [repr(math.nextafter(f.high, math.inf)), "1e308"]
            if f.high_open:
                out.append(repr(float(f.high)))
    return out


def accepted(name: str) -> st.SearchStrategy[str]:
    """Values the field allows (capped where cost grows with them), as the command line writes them."""
    f = FIELDS[name]
    if name == "data":
        return st.sampled_from(["poly", "blobs", *DATA_FILES.values(), "poly ", " blobs"])
    if name == "device":
        return st.sampled_from(["auto", "cpu", "cuda", "cuda:0", "cuda:3", "mps"])
    if f.choices:
        return st.sampled_from(list(f.choices)).map(lambda s: s if s != "relu" else " relu ")
    if f.kind is tuple:
        return st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=4).map(lambda v: ",".join(map(repr, v)))
    if f.kind is int:
        hi = CAP.get(name, f.high)
        return st.integers(int(f.low), int(hi)).map(str)
    if f.kind is float:
        lo, hi = f.low, f.high
        return st.floats(lo, hi, exclude_min=f.low_open, exclude_max=f.high_open).map(num_text)
    return st.text(max_size=8)


def value_of(name: str, wild: int = 1) -> st.SearchStrategy[str]:
    """Accepted values about half the time (more when wild is 0), the rest hostile."""
    parts = [accepted(name)] * 2 + [WILD] * wild
    if boundary(name):
        parts.append(st.sampled_from(boundary(name)))
    if FIELDS[name].optional:
        parts.append(st.sampled_from(["", "none", "auto", "None"]))
    return st.one_of(*parts)


@st.composite
def field_args(draw, name: str, wild: int = 1) -> list[str]:
    """The argv pieces that set one field: --name=V, --name V, or --name / --no-name for switches."""
    if FIELDS[name].kind is bool and draw(st.integers(0, 3)):
        return [draw(st.sampled_from([flag(name), "--no-" + flag(name)[2:]]))]
    v = draw(value_of(name, wild) if FIELDS[name].kind is not bool else WILD)
    if draw(st.booleans()):
        return [f"{flag(name)}={v}"]
    return [flag(name), v]


def one_field(cmd: str, wild: int = 1) -> st.SearchStrategy[tuple[str, list[str]]]:
    names = fields_of(cmd)
    return st.sampled_from(names).flatmap(lambda n: field_args(n, wild).map(lambda a: (n, a)))


# -- running a case and the contract it must keep ----------------------------------------------------------------

INTERNAL = ("TypeError", "ValueError", "IndexError", "KeyError", "AttributeError", "ZeroDivisionError",
            "AssertionError", "NameError", "UnboundLocalError", "RecursionError", "OverflowError", "RuntimeError",
            "OSError", "FileNotFoundError", "PermissionError")


def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _over_cap(name: str, raw: str) -> bool:
    try:
        if name not in FIELDS:
            return int(raw) > CAP[name]
        v = spec.parse_value(name, raw)
        spec.check_value(name, v)       # a refused value costs nothing
        return v > CAP[name]
    except (SpecError, ValueError, TypeError):
        return False


def costly(argv: list[str]) -> bool:
    """True when the argv accepts a value above the cap of a setting whose cost grows with it (a wild number
    may land inside the allowed range): such a case is dropped, not run."""
    for i, tok in enumerate(argv):
        if not tok.startswith("--"):
            continue
        name, eq, raw = tok[2:].partition("=")
        name = name.replace("-", "_")
        if name == "vary" and eq:
            vname, _, values = raw.partition("=")
            vname = vname.strip().replace("-", "_")
            if vname in CAP and any(_over_cap(vname, v) for v in values.split(",")):
                return True
        elif name in CAP:
            if eq and _over_cap(name, raw) or not eq and i + 1 < len(argv) and _over_cap(name, argv[i + 1]):
                return True
    return False


def invoke(capsys, argv: list[str], kind: str, big: bool = False) -> tuple[int, str, str]:
    """Run one command line in-process; any exception that escapes main() fails the test."""
    if not big and costly(argv):
        assume(False)
    CASES[kind] += 1
    capsys.readouterr()
    t0 = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as e:         # argparse's own refusals and --help
        code = e.code
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    CODES[f"{kind}: {code}"] += 1
    check_contract(argv, code, out, err)
    assert seconds < 10, f"{argv} took {seconds:.1f} s"
    return code, out, err


PROGRESS = re.compile(r"^$|^\[[#.]+\] ")


def check_contract(argv: list[str], code, out: str, err: str) -> None:
    where = f"argv={argv!r}\nstdout={out[-500:]!r}\nstderr={err[-2000:]!r}"
    assert code in (0, 1, 2), where
    assert "Traceback" not in err and "Traceback" not in out, where
    # notes ("initlab: note: in_features follows the data ...") say what a run did with a flag; they are not errors
    # nor is the progress bar, which a run on a terminal leaves where it stopped ("\r[####....] 1/2 epoch ...")
    lines = [ln for ln in err.splitlines() if not ln.startswith("initlab: note: ") and not PROGRESS.match(ln)]
    if code == 2:
        errors = [ln for ln in lines if ln.startswith("initlab: error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], where
        if argv[0] == "sweep":
            # a sweep reports each run as it ends; a refusal that only a later point meets follows those lines
            assert all(ln.startswith("[") for ln in lines[:-1]), where
        else:
            assert len(lines) == 1, where
        assert out == "", where
    if code == 1:
        # a run that went non-finite (its JSON says so), or a run-time failure in one line
        if lines:
            assert len(lines) == 1 and lines[0].startswith("initlab: error:"), where
            assert not any(f"initlab: error: {name}:" in lines[0] for name in INTERNAL), where
        elif "--json" in argv:
            doc = strict_json(out)
            assert "nonfinite" in [r["stopped"] for r in doc.get("runs", [doc])], where
        else:           # written as to a terminal: the tables, then where the run stopped
            assert "non-finite" in out, where
    if code == 0 and "--json" in argv and "-h" not in argv and "--help" not in argv:
        doc = strict_json(out)
        assert isinstance(doc, dict), where


@pytest.fixture(autouse=True)
def in_scratch_folder(monkeypatch):
    # a fuzzed argv may abbreviate --save-config or --out; whatever it writes lands in the scratch folder
    scratch = os.path.join(D, "cwd")
    os.makedirs(scratch, exist_ok=True)
    monkeypatch.chdir(scratch)


@pytest.fixture(scope="module", autouse=True)
def memory_ceiling():
    """A fuzzed case that gets past a memory estimate it should not have passed fails here as an allocation
    error (and so as a failed test) instead of exhausting the machine. CUDA maps huge address ranges: not there."""
    import resource

    if torch.cuda.is_available() or not os.path.exists("/proc/self/statm"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    ceiling = mapped + 8 * 2 ** 30
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(scope="module", autouse=True)
def warm(memory_ceiling):
    # the first probe and training of a process pay torch's one-off start-up costs; keep them out of the deadlines
    with open(os.devnull, "w") as null:
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = null
        try:
            main(["probe", *BASE["probe"], "--json"])
            main(["train", *BASE["train"], "--json"])
        finally:
            sys.stdout, sys.stderr = old


# -- one field at a time, every field ---------------------------------------------------------------------------

EXAMPLES = {"probe": 120, "train": 100, "sweep": 60, "jacobian": 60, "theory": 60}


@pytest.mark.parametrize("cmd", list(EXAMPLES))
def test_every_field_alone(cmd, capsys):
    @settings(max_examples=EXAMPLES[cmd], **SETTINGS)
    @given(one_field(cmd), st.booleans(), st.data())
    def case(named, as_json, data):
        name, args = named
        argv = [cmd, *BASE[cmd], *args]
        if cmd == "sweep":
            argv += ["--vary=seed=0"]
        if as_json or cmd == "sweep":
            argv.append("--json")
        invoke(capsys, argv, f"{cmd} field")

    case()


@pytest.mark.parametrize("cmd", ["probe", "train", "jacobian", "theory", "sweep"])
def test_hostile_values_for_every_field(cmd, capsys):
    """Not left to chance: each field of each command meets each of these values."""
    hostile = ["", "nan", "-inf", "-1", "1e308", str(2 ** 64), "💥 x,y", "a\x00\n"]
    if cmd == "sweep":      # the same flags and config path as train: the values that differ in kind suffice
        hostile = ["", "nan", "-1", "💥"]
    for name in fields_of(cmd):
        for v in hostile:
            argv = [cmd, *BASE[cmd], f"{flag(name)}={v}", "--json"]
            if cmd == "sweep":
                argv.append("--vary=seed=0")
            invoke(capsys, argv, f"{cmd} hostile")


# -- several fields at once: where settings meet (batch norm and batch 1, Nesterov without momentum, ...) --------

@pytest.mark.parametrize("cmd", ["probe", "train", "jacobian", "theory"])
def test_fields_together(cmd, capsys):
    @settings(max_examples=60, **SETTINGS)
    # mostly accepted values, so that cases get past the first field to where settings meet
    @given(st.lists(st.one_of(one_field(cmd, 0), one_field(cmd, 0), one_field(cmd, 0), one_field(cmd)), min_size=2,
                    max_size=6), st.sampled_from([None, *PRESETS]))
    def case(pairs, preset):
        argv = [cmd, *BASE[cmd]]
        if preset is not None and cmd in ("probe", "train"):
            argv.append(f"--preset={preset}")
        for _, args in pairs:
            argv += args
        invoke(capsys, argv + ["--json"], f"{cmd} together")

    case()


@st.composite
def vary_item(draw) -> str:
    name = draw(st.one_of(st.sampled_from(list(FIELDS)), st.sampled_from(["", "bogus", "depth ", "poly-w"]),
                          st.text(max_size=6)))
    if name.strip().replace("-", "_") in FIELDS:
        info = FIELDS[name.strip().replace("-", "_")]
        strategy = accepted(info.name) if info.kind is not bool else st.sampled_from(["true", "false", "2"])
        values = draw(st.lists(st.one_of(strategy, strategy, WILD), min_size=1, max_size=2))
    else:
        values = draw(st.lists(WILD, max_size=2))
    sep = ";" if name.strip().replace("-", "_") == "poly_w" else ","
    return name + draw(st.sampled_from(["=", "=", ":", ""])) + sep.join(values)


def test_sweep_vary_metric_train(capsys):
    @settings(max_examples=80, **SETTINGS)
    @given(st.lists(vary_item(), min_size=0, max_size=2), st.booleans(),
           st.one_of(st.none(), st.sampled_from(["train_loss", "chi1", "seconds"]), WILD))
    def case(vary, train, metric):
        argv = ["sweep", *BASE["sweep"], *[f"--vary={v}" for v in vary], "--json"]
        if train:
            argv.append("--train")
        if metric is not None:
            argv.append(f"--metric={metric}")
        invoke(capsys, argv, "sweep vary")

    case()


def test_jacobian_inputs_and_bins(capsys):
    small = st.integers(1, 8).map(str)
    edges = st.sampled_from(["0", "-1", "257", "1000", "1001", " 3", "3.0"])

    @settings(max_examples=60, **SETTINGS)
    @given(st.one_of(small, small, edges, WILD), st.one_of(small, small, edges, WILD))
    def case(inputs, bins):
        invoke(capsys, ["jacobian", *BASE["jacobian"], f"--inputs={inputs}", f"--bins={bins}", "--json"],
               "jacobian inputs/bins")

    case()


TOKENS = st.one_of(
    st.sampled_from(["probe", "train", "gain", "presets", "sweep", "theory", "jacobian", "widths", "--json",
                     "--help", "-h", "--vary", "--train", "--metric", "--inputs", "--bins", "--preset", "--", "-"]),
    st.sampled_from([flag(n) for n in FIELDS]),
    WILD,
)


def test_arbitrary_token_lists(capsys):
    """Whole argv lists from flags, names and junk: unknown commands, flags in the wrong place, missing values."""
    @settings(max_examples=150, **SETTINGS)
    @given(st.lists(TOKENS, min_size=1, max_size=6))
    def case(tokens):
        # `serve` starts a web server, `gain` and `widths` measure for seconds: their refusals are fuzzed apart
        assume(tokens[0] not in ("serve", "gain", "widths"))
        argv = tokens
        cmd = tokens[0]
        if cmd in BASE:      # keep the network tiny whatever the tokens ask for
            argv = [cmd, *BASE[cmd], *tokens[1:]] if cmd != "theory" else tokens
            if cmd == "sweep" and "--preset" in tokens:
                return
        invoke(capsys, argv, "token lists")

    case()


def test_gain_and_presets(capsys):
    code, out, _ = invoke(capsys, ["gain", "--json"], "gain")
    assert code == 0 and set(strict_json(out)) == set(spec.ACTIVATIONS)
    for argv in (["gain", "--bogus"], ["gain", "--json=1"], ["gain", "tanh"], ["presets", "--bogus"],
                 ["presets", "x", "y"], ["gain", "--json", "--json", "💥"]):
        code, _, _ = invoke(capsys, argv, "gain")
        assert code == 2


# -- huge networks: refused by the memory estimate, nothing allocated -------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read resident memory")
def test_huge_networks_are_refused_before_allocating(capsys):
    @settings(max_examples=40, **SETTINGS)
    @given(st.sampled_from(["probe", "train", "jacobian"]), st.integers(2 ** 17, 2 ** 20), st.integers(3, 10_000),
           st.sampled_from(["8", "1", "4096"]))
    def case(cmd, width, depth, batch):
        before = rss_mb()
        argv = [cmd, f"--depth={depth}", f"--width={width}", "--device=cpu", "--json"]
        if cmd != "jacobian":
            argv += [f"--batch={batch}", "--n-rows=20", "--epochs=1"][: 1 if cmd == "probe" else 3]
        code, _, err = invoke(capsys, argv, "huge network", big=True)
        # the MLP's estimate names the width; the Jacobian's own (its reverse pass) may refuse first
        refusal = f"initlab: error: width: '{width}' is not allowed; a network that fits in memory"
        assert code == 2 and (err.startswith(refusal)
                              or cmd == "jacobian" and err.startswith(f"initlab: error: width: '{width}' is not "
                                                                      f"allowed; a narrower or shallower net"))
        assert "GiB is free" in err or "GiB on cpu, " in err
        assert rss_mb() - before < 64, "the refusal came after allocating"

    case()


# -- the spec loader: arbitrary TOML ----------------------------------------------------------------------------

toml_string = spec.toml_string      # the writer --save-config uses: any key or text, quoted and escaped


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_document(doc: dict) -> str:
    """TOML text for a dict: plain keys first, then one [table] per dict value."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{toml_string(k)}]")
            lines += [f"{toml_string(k2)} = {toml_value(v2)}" for k2, v2 in v.items()]
    return "\n".join(lines) + "\n"


SCALARS = st.one_of(st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1), st.integers(-5, 300), st.floats(),
                    st.sampled_from([10 ** 400, -(10 ** 400), 2 ** 64, 2 ** 63]),
                    st.booleans(), st.text(max_size=10), st.sampled_from([*NAMES, *SPECIAL]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=2)),
                      max_leaves=4)
KEYS = st.one_of(st.sampled_from(list(FIELDS)), st.sampled_from(["preset", "model", "train", "Depth", "lr "]),
                 st.text(max_size=8))


def toml_accepted(name: str):
    """A TOML-typed value the field allows (or nearly), so that documents also reach whole valid configs."""
    f = FIELDS[name]
    if f.kind is bool:
        return st.booleans()
    if f.kind is tuple:
        return st.lists(st.one_of(st.floats(-10, 10), st.integers(-5, 5)), min_size=1, max_size=3)
    if f.kind is int:
        return st.integers(int(f.low), int(CAP.get(name, f.high)))
    if f.kind is float:
        return st.one_of(st.floats(f.low, f.high), st.integers(int(f.low), int(min(f.high, 100))))
    return accepted(name)


DOCS = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=5),
    st.dictionaries(st.sampled_from(list(FIELDS)), VALUES, max_size=4),
    st.sampled_from(list(FIELDS)).flatmap(lambda n: st.fixed_dictionaries({n: st.one_of(toml_accepted(n),
                                                                                         VALUES)})),
    st.lists(st.sampled_from(list(FIELDS)), max_size=5, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({n: toml_accepted(n) for n in names})),
    st.dictionaries(st.sampled_from(["model", "init", "train", "data"]),
                    st.dictionaries(st.sampled_from(list(FIELDS)), VALUES, max_size=3), max_size=2),
)


def check_loaded(path: str) -> Config | None:
    """load_toml ends in a valid Config or a one-line SpecError naming its field; nothing else escapes."""
    try:
        cfg, raw = spec.load_toml(path)
    except SpecError as e:
        text = str(e)
        assert "\n" not in text and text.startswith(f"{e.field}: "), text
        return None
    spec.validate(cfg)
    assert set(raw) <= set(FIELDS)
    return cfg


def test_toml_documents(tmp_path):
    path = str(tmp_path / "exp.toml")
    loaded = Counter()

    @settings(max_examples=250, **SETTINGS)
    @given(DOCS)
    def case(doc):
        CASES["toml document"] += 1
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(toml_document(doc))
        # read as the loader does, in the document's order (plain keys first, then the tables): the first key that
        # is unknown, a table inside a table, or given a second time is the one named
        items = [(k, k, v) for k, v in doc.items() if not isinstance(v, dict)]
        items += [(f"{k}.{k2}", k2, v2) for k, v in doc.items() if isinstance(v, dict) for k2, v2 in v.items()]
        flat, problem = {}, None
        for where, key, value in items:
            if isinstance(value, dict) or (key not in FIELDS and key != "preset") or key in flat:
                problem = where
                break
            flat[key] = value
        flat.pop("preset", None)
        try:
            cfg, _ = spec.load_toml(path)
        except SpecError as e:
            assert "\n" not in str(e) and str(e).startswith(f"{e.field}: "), str(e)
            if problem is not None:      # an unknown or repeated key is named, never ignored
                assert e.field == "config" and e.value == problem, str(e)
            loaded["refused"] += 1
            return
        assert problem is None, f"{problem} was ignored"
        spec.validate(cfg)
        for k, v in flat.items():        # each key's value, as its field reads it
            assert getattr(cfg, k) == spec.parse_value(k, v)
            if FIELDS[k].kind in (int, float) and not isinstance(v, str) and v is not None:
                assert getattr(cfg, k) == v
        loaded["config"] += 1

    case()
    assert loaded["config"] > 10 and loaded["refused"] > 10, loaded


def test_toml_text_and_bytes(tmp_path):
    path = str(tmp_path / "exp.toml")

    @settings(max_examples=150, **SETTINGS)
    @given(st.one_of(st.text(max_size=60), st.binary(max_size=60),
                     st.lists(st.sampled_from(["depth = 3", "[model]", "width = 4", "depth = ", "=", "[[x]]",
                                               "lr = 1e400", "width = 0x10", 'data = "poly"', "seed = -0",
                                               "\xff", "gain = nan", "epochs = 1979-05-27", "bias = True",
                                               "lr = 1" + "0" * 400, "seed = 1" + "0" * 5000]),
                              max_size=4).map("\n".join)))
    def case(doc):
        CASES["toml text"] += 1
        with open(path, "wb") as fh:
            fh.write(doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass"))
        check_loaded(path)

    case()


# -- TOML files that cannot be read ------------------------------------------------------------------------------

def refusal(path: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec.load_toml(path)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_file_and_directory(tmp_path):
    e = refusal(str(tmp_path / "nope.toml"))
    assert e.field == "config" and "no such file" in str(e)
    e = refusal(str(tmp_path))
    assert e.field == "config" and "not a directory" in str(e)


def test_invalid_toml_names_the_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("depth = 3\nwidth = = 4\n")
    e = refusal(str(p))
    assert e.field == "config" and "valid TOML" in str(e) and "line 2" in str(e)


def test_unknown_keys_are_named(tmp_path):
    p = tmp_path / "typo.toml"
    p.write_text("depth = 3\n[model]\nwidht = 4\n")
    e = refusal(str(p))
    assert e.field == "config" and e.value == "model.widht" and "'model.widht'" in str(e)


def test_a_table_inside_a_table_and_a_key_given_twice_are_named(tmp_path):
    p = tmp_path / "nested.toml"
    p.write_text("[model]\ndepth = 3\n[model.more]\nwidth = 4\n")
    e = refusal(str(p))
    assert e.field == "config" and e.value == "model.more" and "table inside a table" in str(e)
    p.write_text("[model]\ndepth = 3\n[train]\ndepth = 4\n")
    e = refusal(str(p))
    assert e.field == "config" and e.value == "train.depth" and "given twice" in str(e)


def test_unreadable_file(tmp_path):
    if os.geteuid() != 0:
        p = tmp_path / "secret.toml"
        p.write_text("depth = 3\n")
        p.chmod(0)
        e = refusal(str(p))
        assert e.field == "config" and "permission denied" in str(e)
        return
    # root reads any file: a forked child drops to an unprivileged user and meets the permission check for real
    folder = tempfile.mkdtemp(prefix="initlab-perm-")
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "secret.toml")
        with open(path, "w") as fh:
            fh.write("depth = 3\n")
        os.chmod(path, 0)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:        # the child: never returns into pytest
            try:
                os.close(read_fd)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    spec.load_toml(path)
                    msg = "loaded"
                except SpecError as e:
                    msg = str(e)
                os.write(write_fd, msg.encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as fh:
            msg = fh.read().decode()
        os.waitpid(pid, 0)
    finally:
        shutil.rmtree(folder)
    if not msg:
        pytest.skip("could not switch to an unprivileged user")
    assert msg == f"config: {path!r} is not allowed; a readable file (permission denied)"


# -- the console script itself -----------------------------------------------------------------------------------

def test_console_script_refusals_are_one_line(tmp_path):
    exe = shutil.which("initlab") or os.path.join(os.path.dirname(sys.executable), "initlab")
    if not os.path.isfile(exe):
        pytest.skip("the initlab console script is not installed")
    bad = tmp_path / "bad.toml"
    bad.write_text("depth = [\n")
    cases = [
        ["probe", "--depth=nan", f"--config={tmp_path / 'missing.toml'}"],
        ["train", f"--config={bad}", "--lr=-inf", "--vary=x"],
        ["sweep", "--vary=bogus=1"],
        ["theory", "--activation=💥"],
        ["probe", "--width=300000", "--depth=3", "--json"],
        ["nonsense"],
    ]
    procs = [subprocess.Popen([exe, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"}) for argv in cases]
    for argv, p in zip(cases, procs):
        out, err = p.communicate(timeout=120)
        CASES["console script"] += 1
        lines = err.decode("utf-8", "replace").splitlines()
        assert p.returncode == 2, (argv, err)
        assert len(lines) == 1 and lines[0].startswith("initlab: error:"), (argv, err)
        assert out == b"", (argv, out)


# -- the count ---------------------------------------------------------------------------------------------------

def test_zz_cases_were_tried():
    """Runs last in this file: the fuzzing above really ran, and how much."""
    total = sum(CASES.values())
    print(f"\nfuzz cases tried: {total} ({', '.join(f'{k} {v}' for k, v in sorted(CASES.items()))}); "
          f"exit codes by command {dict(sorted(CODES.items()))}")
    if len(CASES) < 10:
        pytest.skip("run with the rest of this file to count the cases")
    assert total > 2000, CASES
