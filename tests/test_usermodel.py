"""The probe of a user's own model: statistics against direct computations, and its refusals.

Also warnings, the loss, --layers, the one-line refusals of `initlab probe --model`, one transfer per probe, the job.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import textwrap
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from initlab.engine.anyprobe import probe_model, run_user_probe
from initlab.engine.events import Failed, Finished, LayerStats, LogLine
from initlab.engine.jobs import UserProbeJob
from initlab.engine.session import Session
from initlab.engine.spec import SpecError
from initlab.engine.usermodel import load_model, make_spec
from initlab.tui.cli import main

CPU = torch.device("cpu")

CNN = """
import torch
from torch import nn

def make():
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
"""

MODELS = """
import torch
from torch import nn
import torch.nn.functional as F

def transformer(norm_first=False):
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), torch.randn(3, 5, 16)

def transformer_pre():
    return transformer(True)

class WithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.head = nn.Linear(8, 3)
    def forward(self, x, y):
        logits = self.head(torch.tanh(self.body(x)))
        return logits, F.cross_entropy(logits, y)

def with_loss():
    return WithLoss(), (torch.randn(10, 6), torch.randint(0, 3, (10,)))

class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.shared = nn.Linear(8, 8)
        self.unused = nn.Linear(8, 8)
        self.spare = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.out = nn.Linear(8, 2)
    def forward(self, x):
        h = self.shared(torch.relu(self.inp(x)))
        return self.out(self.shared(h))

def twice():
    m = Twice()
    m.out.requires_grad_(False)
    return m, torch.randn(12, 4)

class Fused(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
    def forward(self, x):
        return F.linear(x, self.lin.weight, self.lin.bias)

def fused():
    return nn.Sequential(Fused(), nn.Tanh()), torch.randn(5, 4)

def dict_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 4)
            self.b = nn.Linear(2, 4)
        def forward(self, left, right):
            return self.a(left) * self.b(right)
    return Two(), {"left": torch.randn(7, 3), "right": torch.randn(7, 2)}

def with_loss_fn():
    m = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1))
    return m, torch.randn(9, 3), lambda out: (out - 0.5).pow(2).mean()

def frozen():
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    m.requires_grad_(False)
    return m, torch.randn(5, 3)

def frozen_ids():
    m = nn.Sequential(nn.Embedding(10, 4), nn.Tanh())
    m.requires_grad_(False)
    return m, torch.randint(0, 10, (5,))

def eval_frozen_transformer():
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    m = nn.Sequential(nn.Embedding(10, 16), nn.TransformerEncoder(layer, 2, enable_nested_tensor=False))
    m.eval().requires_grad_(False)
    return m, torch.randint(0, 10, (3, 5))

def fails():
    raise ValueError("no weights here")

def number():
    return 5

def bad_inputs():
    return nn.Linear(3, 3), "not a tensor"

def bad_loss():
    return nn.Linear(3, 3), torch.randn(4, 3), lambda out: out

not_callable = 3

def meta_inputs():
    return nn.Linear(2, 2), torch.randn(3, 2, device="meta")

def empty_dict():
    return nn.Linear(2, 2), {}

def dict_of_a_list():
    return nn.Linear(2, 2), {"p": [torch.randn(3, 2)]}

def no_rows():
    return nn.Linear(2, 2), torch.randn(0, 2)

class FrozenFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 2)
        self.a.requires_grad_(False)
    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))

def frozen_first():
    return FrozenFirst(), torch.randn(6, 4)

class LastStateOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.g = nn.GRU(3, 4)
        self.b = nn.Linear(4, 1)
    def forward(self, x):
        out, h = self.g(x)      # the row's output is `out`, which the loss never reaches
        return self.b(h[-1])

def last_state_only():
    return LastStateOnly(), torch.randn(6, 2, 3)
"""


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(textwrap.dedent(MODELS))
    return str(path)


@pytest.fixture
def cnn(tmp_path):
    path = tmp_path / "cnn.py"
    path.write_text(textwrap.dedent(CNN))
    return str(path)


def probe(target: str, shape: str | None = None, layers: str | None = None, seed: int = 0):
    return run_user_probe(make_spec(target, shape, layers, seed, "cpu"))


def moments(t: torch.Tensor) -> dict[str, float]:
    t = t.detach().double()
    return {"mean": t.mean().item(), "std": t.std(correction=0).item(), "min": t.min().item(),
            "max": t.max().item()}


def close(a, b, rel=1e-6, abs_=1e-9):
    return a == pytest.approx(b, rel=rel, abs=abs_)


# statistics against direct computation ---------------------------------------------------------------------------

def test_cnn_statistics_match_a_direct_computation(cnn):
    res = probe(cnn + ":make", "4,3,8,8", seed=3)
    assert [r["kind"] for r in res.layers] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert [r["name"] for r in res.layers] == ["0", "1", "2", "3", "4", "5"]
    assert res.warnings == [] and res.loss_source == "signal"

    # the same seeded stream: the factory, then the input batch, then the backward signal g
    torch.manual_seed(3)
    m = runpy.run_path(cnn)["make"]()
    x = torch.randn(4, 3, 8, 8)
    conv, bn, _, pool, flat, lin = m
    outs = [conv(x)]
    outs.append(bn(outs[-1]))
    outs.append(torch.relu(outs[-1]))      # not in place, so that the BatchNorm output keeps its values
    outs.append(pool(outs[-1]))
    outs.append(flat(outs[-1]))
    outs.append(lin(outs[-1]))
    for t in outs:
        t.retain_grad()
    g = torch.randn(outs[-1].shape)
    (outs[-1] * g).sum().backward()

    for row, t in zip(res.layers, outs):
        d = moments(t)
        assert close(row["a_mean"], d["mean"], abs_=1e-7) and close(row["a_std"], d["std"])
        assert close(row["a_min"], d["min"]) and close(row["a_max"], d["max"])
        assert row["shape"] == list(t.shape) and row["nonfinite_frac"] == 0.0 and row["calls"] == 1
        assert close(row["grad_z_std"], t.grad.double().std(correction=0).item())
        assert close(row["grad_z_rms"], t.grad.double().pow(2).mean().sqrt().item())
    # the BatchNorm row is the pre-ReLU output although ReLU(inplace=True) overwrote that tensor afterwards
    assert res.layers[1]["a_min"] < 0
    for row, mod in ((res.layers[0], conv), (res.layers[1], bn), (res.layers[5], lin)):
        w, gw = mod.weight.detach().double(), mod.weight.grad.double()
        assert close(row["w_std"], w.std(correction=0).item(), abs_=1e-12)
        assert close(row["grad_w_std"], gw.std(correction=0).item())
        assert close(row["grad_w_absmean"], gw.abs().mean().item())
        assert close(row["grad_w_norm"], gw.norm().item())
    assert (res.layers[0]["fan_in"], res.layers[0]["fan_out"]) == (27, 54)
    assert (res.layers[5]["fan_in"], res.layers[5]["fan_out"]) == (96, 5)
    assert close(res.input_std, x.double().std(correction=0).item())
    assert [p["name"] for p in res.params] == [n for n, _ in m.named_parameters()]
    for p, (_, q) in zip(res.params, m.named_parameters()):
        assert close(p["grad_norm"], q.grad.double().norm().item())
        assert p["has_grad"] and p["requires_grad"] and p["numel"] == q.numel()
    assert res.verdict["kind"] == "stable"
    assert close(res.verdict["first_last_grad_ratio"],
                 conv.weight.grad.abs().double().mean().item() / lin.weight.grad.abs().double().mean().item())


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_rows_in_execution_order(models, norm_first):
    factory = "transformer_pre" if norm_first else "transformer"
    res = probe(f"{models}:{factory}", seed=1)
    names = [r["name"] for r in res.layers]
    first = [n.split(".", 2)[2] for n in names if n.startswith("layers.0.")]
    if norm_first:
        assert first == ["norm1", "self_attn", "dropout1", "norm2", "linear1", "dropout", "linear2", "dropout2"]
    else:
        assert first == ["self_attn", "dropout1", "norm1", "linear1", "dropout", "linear2", "dropout2", "norm2"]
    assert len(names) == 16 and len(set(names)) == 16
    # attention runs in one functional call: one row for it, a warning, and no 'never called' for out_proj
    kinds = Counter(w["kind"] for w in res.warnings)
    assert kinds == {"hidden_internals": 2}
    assert {w["module"] for w in res.warnings} == {"layers.0.self_attn", "layers.1.self_attn"}

    torch.manual_seed(1)
    enc, x = runpy.run_path(models)[factory]()
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for n, mod in enc.named_modules():
        if n in names:
            def keep(mod, inp, out, n=n):
                t = out[0] if isinstance(out, tuple) else out
                seen.setdefault(n, t.detach().clone())
                if t.requires_grad:
                    t.register_hook(lambda g, n=n: seen.setdefault(n + ":grad", g.clone()))
            hooks.append(mod.register_forward_hook(keep))
    out = enc(x)
    for h in hooks:
        h.remove()
    (out * torch.randn(out.shape)).sum().backward()
    for row in res.layers:
        d = moments(seen[row["name"]])
        assert close(row["a_std"], d["std"], rel=1e-5) and close(row["a_max"], d["max"], rel=1e-5)
        assert close(row["grad_z_std"], seen[row["name"] + ":grad"].double().std(correction=0).item(), rel=1e-5)
    lin1 = enc.layers[1].linear1.weight.grad.double()
    row = res.layers[names.index("layers.1.linear1")]
    assert close(row["grad_w_absmean"], lin1.abs().mean().item(), rel=1e-5)
    attn = res.layers[names.index("layers.0.self_attn")]
    assert attn["kind"] == "MultiheadAttention"
    assert close(attn["w_std"], enc.layers[0].self_attn.in_proj_weight.double().std(correction=0).item())


def test_hooks_keep_the_encoder_layer_off_its_fused_eval_path(models):
    # in eval mode without gradients TransformerEncoderLayer would run one fused kernel; torch skips that path
    # when hooks are attached, so every layer's internals still get rows
    res = probe(f"{models}:eval_frozen_transformer")
    names = [r["name"] for r in res.layers]
    assert {"1.layers.0.linear1", "1.layers.1.linear2", "1.layers.1.norm2"} <= set(names)
    assert [w["kind"] for w in res.warnings] == ["hidden_internals", "hidden_internals", "frozen_parameters",
                                                "no_backward"]


def test_a_functional_module_is_one_row_with_a_warning(models):
    res = probe(f"{models}:fused")
    assert [(r["name"], r["kind"]) for r in res.layers] == [("0", "Fused"), ("1", "Tanh")]
    assert [w["kind"] for w in res.warnings] == ["hidden_internals"]
    assert res.layers[0]["params"] == 20 and res.layers[0]["grad_w_absmean"] > 0


# the loss --------------------------------------------------------------------------------------------------------

def test_a_model_returning_logits_and_loss_is_probed_through_its_loss(models):
    res = probe(f"{models}:with_loss", seed=2)
    assert res.loss_source == "output[1]"
    torch.manual_seed(2)
    m, (x, y) = runpy.run_path(models)["with_loss"]()
    logits, loss = m(x, y)
    loss.backward()
    assert close(res.loss, loss.item())
    head = res.layers[[r["name"] for r in res.layers].index("head")]
    assert close(head["grad_w_norm"], m.head.weight.grad.double().norm().item())
    expected = (F.softmax(logits, 1) - F.one_hot(y, 3)) / 10
    assert close(head["grad_z_std"], expected.double().std(correction=0).item(), rel=1e-5)


def test_a_loss_fn_is_used_when_given(models):
    res = probe(f"{models}:with_loss_fn", seed=4)
    torch.manual_seed(4)
    m, x, loss_fn = runpy.run_path(models)["with_loss_fn"]()
    loss = loss_fn(m(x))
    loss.backward()
    assert res.loss_source == "loss_fn" and close(res.loss, loss.item())
    assert close(res.layers[0]["grad_w_std"], m[0].weight.grad.double().std(correction=0).item())


def test_dict_inputs_are_keyword_arguments(models):
    res = probe(f"{models}:dict_inputs")
    assert [r["name"] for r in res.layers] == ["a", "b"]
    assert res.inputs == [[7, 3], [7, 2]]


# warnings --------------------------------------------------------------------------------------------------------

def test_called_twice_unused_and_frozen_are_warned(models):
    res = probe(f"{models}:twice", seed=5)
    by_kind = {w["kind"]: w for w in res.warnings}
    assert set(by_kind) == {"called_more_than_once", "never_called", "frozen_parameters", "no_gradient"}
    w = by_kind["called_more_than_once"]
    assert w["module"] == "shared" and w["calls"] == 2 and "first call" in w["message"]
    never = [w["module"] for w in res.warnings if w["kind"] == "never_called"]
    assert never == ["unused", "spare"]        # the unused Sequential once, not each of its members
    assert by_kind["frozen_parameters"]["params"] == ["out.weight", "out.bias"]
    assert by_kind["no_gradient"]["params"] == ["unused.weight", "unused.bias", "spare.0.weight", "spare.0.bias"]
    assert [r["name"] for r in res.layers] == ["inp", "shared", "out"]
    assert res.layers[1]["calls"] == 2

    torch.manual_seed(5)
    m, x = runpy.run_path(models)["twice"]()
    h1 = m.shared(torch.relu(m.inp(x)))
    out = m.out(m.shared(h1))
    (out * torch.randn(out.shape)).sum().backward()
    shared = res.layers[1]
    assert close(shared["a_std"], h1.double().std(correction=0).item())       # the first call
    assert close(shared["grad_w_norm"], m.shared.weight.grad.double().norm().item())   # summed over both calls
    assert res.layers[2]["grad_w_absmean"] is None and res.layers[2]["grad_z_std"] > 0


def test_a_frozen_model_still_passes_the_backward_signal_from_its_inputs(models):
    res = probe(f"{models}:frozen", seed=6)
    assert [w["kind"] for w in res.warnings] == ["frozen_parameters"]
    assert res.loss_source == "signal" and all(p["grad_std"] is None for p in res.params)
    torch.manual_seed(6)
    m, x = runpy.run_path(models)["frozen"]()
    z = m[0](x)
    a = torch.tanh(z)
    g = torch.randn(a.shape)
    assert close(res.layers[0]["grad_z_std"], (g * (1 - a * a)).double().std(correction=0).item())


def test_a_model_with_nothing_to_differentiate_gives_forward_statistics(models):
    res = probe(f"{models}:frozen_ids")
    assert [w["kind"] for w in res.warnings] == ["frozen_parameters", "no_backward"]
    assert res.loss_source == "none" and all(r["grad_z_std"] is None for r in res.layers)
    assert res.layers[1]["a_std"] > 0 and res.input_std is None
    assert res.verdict["kind"] in ("stable", "vanishing", "exploding")


def test_layers_keeps_the_matching_modules(models):
    res = probe(f"{models}:transformer", layers=r"linear\d$")
    assert [r["name"] for r in res.layers] == ["layers.0.linear1", "layers.0.linear2", "layers.1.linear1",
                                              "layers.1.linear2"]
    assert {p["module"] for p in res.params} == {r["name"] for r in res.layers}
    assert len(res.params) == 8
    full = probe(f"{models}:transformer")
    row = next(r for r in full.layers if r["name"] == "layers.1.linear2")
    assert res.layers[3]["a_std"] == row["a_std"]


# one transfer (the sync_counter fixture is in conftest.py) ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factory,shape", [("cnn", "4,3,8,8"), ("transformer", None), ("twice", None),
                                           ("with_loss", None)])
def test_one_transfer_per_probe(models, cnn, sync_counter, factory, shape):
    target = f"{cnn}:make" if factory == "cnn" else f"{models}:{factory}"
    um = load_model(make_spec(target, shape, None, 0, "cpu"), CPU)
    sync_counter.clear()
    res = probe_model(um)
    assert dict(sync_counter) == {"tolist": 1}
    assert res.layers


# refusals --------------------------------------------------------------------------------------------------------

def one_line_refusal(capsys, *argv: str) -> str:
    code = main(["probe", *argv, "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == "" and err.startswith("initlab: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv,words", [
    (["--model", "{dir}/nowhere.py:make"], ["model:", "no such file"]),
    (["--model", "initlab_no_such_package.mod:make"], ["model:", "no module named 'initlab_no_such_package'"]),
    (["--model", "{models}"], ["model:", "FILE.py:FACTORY"]),
    (["--model", "{models}:absent"], ["model:", "a callable named 'absent'"]),
    (["--model", "{models}:not_callable"], ["model:", "it is an int"]),
    (["--model", "{models}:fails"], ["model:", "ValueError: no weights here"]),
    (["--model", "{models}:number"], ["model:", "returned an int"]),
    (["--model", "{models}:bad_inputs"], ["model:", "a tensor, a tuple of tensors or a dict"]),
    (["--model", "{models}:bad_loss"], ["model:", "a loss_fn returning a floating scalar", "shape [4, 3]"]),
    (["--model", "{cnn}:make", "--input-shape", "4,5,8,8"], ["model:", "forward runs on the inputs", "RuntimeError"]),
    (["--model", "{cnn}:make"], ["input_shape: none given", "the factory returned a module without inputs"]),
    (["--model", "{cnn}:make", "--input-shape", "4,x,8"], ["input_shape:", "positive integers"]),
    (["--model", "{cnn}:make", "--input-shape", "4,0,8,8"], ["input_shape:", "positive integers"]),
    (["--model", "{models}:transformer", "--layers", "("], ["layers:", "regular expression"]),
    (["--model", "{models}:transformer", "--layers", "^nothing$"], ["layers:", "matching a module name"]),
    (["--model", "{models}:transformer", "--layers", "a{{99999999999}}"], ["layers:", "regular expression"]),
    (["--model", "{models}:meta_inputs"], ["model:", "inputs holding values", "a meta tensor"]),
    (["--model", "{models}:empty_dict"], ["model:", "the factory gave an empty dict"]),
    (["--model", "{models}:dict_of_a_list"], ["model:", "a dict whose 'p' is a list of Tensor"]),
    (["--model", "{models}:no_rows"], ["model:", "inputs of at least one element", "shape [0, 2]"]),
    (["--model", "{models}:transformer", "--layers", r"self_attn\."],
     ["layers:", "a module the forward calls", "layers.0.self_attn.out_proj", "nn.MultiheadAttention"]),
    (["--model", "{models}:transformer", "--depth", "3"], ["depth:", "not with --model"]),
    (["--input-shape", "4,3"], ["input_shape:", "only with --model"]),
])
def test_every_bad_model_is_one_line_with_status_2(capsys, tmp_path, models, cnn, argv, words):
    err = one_line_refusal(capsys, *[a.format(dir=tmp_path, models=models, cnn=cnn) for a in argv])
    for w in words:
        assert w in err, err


def test_a_file_that_raises_on_import_is_refused(capsys, tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import torch\nraise ImportError('missing dependency xyz')\n")
    err = one_line_refusal(capsys, "--model", f"{path}:make")
    assert "ImportError: missing dependency xyz" in err


def test_a_package_module_factory_loads(capsys, tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg_initlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(CNN))
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["probe", "--model", "userpkg_initlab.nets:make", "--input-shape", "2,3,8,8", "--device", "cpu",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["layers"]) == 6 and doc["config"]["model"] == "userpkg_initlab.nets:make"
    assert {"layers", "params", "warnings", "verdict", "loss_source", "input_std"} <= set(doc)


def test_what_a_model_prints_goes_to_stderr_beside_json(capsys, tmp_path):
    path = tmp_path / "chatty.py"
    path.write_text(textwrap.dedent("""
        import torch
        from torch import nn
        print("loading chatty")
        class Chatty(nn.Module):
            def __init__(self):
                super().__init__()
                self.l = nn.Linear(8, 4)
            def forward(self, x):
                print("forward", tuple(x.shape))
                return self.l(x)
        def make():
            print("making")
            return Chatty()
    """))
    code = main(["probe", "--model", f"{path}:make", "--input-shape", "2,8", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["layers"][0]["name"] == "l"         # stdout: the one object and nothing else
    assert "loading chatty" in err and "making" in err and "forward (2, 8)" in err


def test_a_package_in_the_current_folder_loads_as_python_m_would(capsys, tmp_path, monkeypatch):
    pkg = tmp_path / "herepkg_initlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(CNN))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    code = main(["probe", "--model", "herepkg_initlab.nets:make", "--input-shape", "2,3,8,8", "--device", "cpu",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(json.loads(out)["layers"]) == 6 and str(tmp_path) not in sys.path      # the path is left as it was


def test_settings_of_the_built_in_mlp_are_refused_beside_a_model_from_a_config_file_too(capsys, tmp_path, cnn):
    conf = tmp_path / "mlp.toml"
    conf.write_text("depth = 5\n")
    err = one_line_refusal(capsys, "--model", f"{cnn}:make", "--input-shape", "2,3,8,8", "--config", str(conf))
    assert err.startswith("initlab: error: depth: 5 is not allowed; not with --model (it sets the built-in MLP)")
    assert err.strip().endswith("--seed and --device (depth is the --config file's)")
    err = one_line_refusal(capsys, "--model", f"{cnn}:make", "--input-shape", "2,3,8,8", "--depth", "5")
    assert "the --config file's" not in err
    keep = tmp_path / "keep.toml"
    keep.write_text("precious")
    err = one_line_refusal(capsys, "--model", f"{cnn}:make", "--input-shape", "2,3,8,8", "--save-config", str(keep))
    assert "save_config:" in err and keep.read_text() == "precious"


def test_probe_model_table_lists_modules_and_warnings(capsys, models):
    code = main(["probe", "--model", f"{models}:twice", "--device", "cpu"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "shared" in out and "verdict:" in out
    assert "warning: unused (Linear) was never called in the forward" in out


# the job ---------------------------------------------------------------------------------------------------------

def test_user_probe_job_runs_in_a_session_and_a_bad_model_fails_in_one_line(models):
    events: list = []
    s = Session(events.append)
    s.start(UserProbeJob(f"{models}:twice", None, None, 0, "cpu"))
    assert s.wait(30)
    fin = [e for e in events if isinstance(e, Finished)]
    assert len(fin) == 1 and [r["name"] for r in fin[0].result["layers"]] == ["inp", "shared", "out"]
    stats = [e for e in events if isinstance(e, LayerStats)]
    assert len(stats) == 1 and len(stats[0].layers) == 3
    assert any(isinstance(e, LogLine) and e.level == "warning" and "never called" in e.message for e in events)
    events.clear()
    s.start(UserProbeJob(f"{models}:fails", None, None, 0, "cpu"))
    assert s.wait(30)
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1 and "ValueError: no weights here" in failed[0].message
    assert "\n" not in failed[0].message
    events.clear()
    s.start(UserProbeJob(f"{models}:fused", "", "", "0", "cpu"))    # raw form values are accepted
    assert s.wait(30) and any(isinstance(e, Finished) for e in events)


def test_make_spec_refuses_in_one_line():
    with pytest.raises(SpecError) as e:
        make_spec("model.py:make", "1,2", None, -1, "cpu")
    assert e.value.field == "seed"
    with pytest.raises(SpecError) as e:
        make_spec(":make")
    assert e.value.field == "model"


def test_a_users_one_unit_output_on_one_input_is_not_read_as_vanished(tmp_path):
    """As for the built-in net: one value has no spread, so its std of 0 is no verdict (two inputs read it)."""
    path = tmp_path / "um.py"
    path.write_text("from torch import nn\n\ndef make():\n    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), "
                    "nn.Linear(8, 1))\n")
    one = probe(f"{path}:make", "1,4")
    assert one.layers[-1]["a_std"] == 0.0 and one.layers[-1]["shape"] == [1, 1]
    assert one.verdict["kind"] == "stable"
    assert probe(f"{path}:make", "2,4").verdict["kind"] == "stable"


def test_a_users_scalar_output_is_one_value_not_a_vanished_signal(tmp_path):
    path = tmp_path / "um.py"
    path.write_text("import torch\nfrom torch import nn\n\nclass Sum(nn.Module):\n    def forward(self, x):\n"
                    "        return x.sum()\n\ndef make():\n    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), "
                    "nn.Linear(8, 1), Sum())\n")
    res = probe(f"{path}:make", "16,4")
    assert res.layers[-1]["shape"] == [] and res.layers[-1]["a_std"] == 0.0
    assert res.verdict["kind"] == "stable"


def test_a_gradient_ratio_with_one_row_to_read_has_no_value(models):
    # a frozen first layer: one row has a weight gradient; a ratio of it to itself said "no gap" (1.0)
    res = probe(f"{models}:frozen_first")
    assert [r["grad_w_absmean"] is None for r in res.layers] == [True, False]
    assert res.verdict["first_last_grad_ratio"] is None and res.verdict["first_last_gradz_ratio"] is not None
    # a GRU whose output row gets no gradient (the loss reads its last state): one row has dL/dz
    res = probe(f"{models}:last_state_only")
    assert [r["grad_z_rms"] is None for r in res.layers] == [True, False]
    assert res.verdict["first_last_gradz_ratio"] is None
    g, b = res.layers
    assert res.verdict["first_last_grad_ratio"] == pytest.approx(g["grad_w_absmean"] / b["grad_w_absmean"])


def test_a_layers_refusal_offers_names_a_pattern_can_match(capsys, cnn):
    err = one_line_refusal(capsys, "--model", f"{cnn}:make", "--input-shape", "2,3,8,8", "--layers", "zzz")
    assert "such as 0, 1, 2" in err and "(model)" not in err


def test_an_edited_helper_and_another_folders_helper_of_the_same_name_are_read_afresh(tmp_path, monkeypatch):
    """The app probes in its own process: what a model file imports from its folder is not kept from one probe to
    the next (an edit would go unseen, and another folder's `layers.py` would be taken for this one's)."""
    for folder, width in (("a", 3), ("b", 7)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "layers.py").write_text(f"from torch import nn\ndef block(): return nn.Linear(4, {width})\n")
        (tmp_path / folder / "net.py").write_text("import layers\nfrom torch import nn\n"
                                                  "def make(): return nn.Sequential(layers.block())\n")
    shape = lambda where: run_user_probe(make_spec(f"{tmp_path / where}:make", "2,4")).layers[0]["shape"]
    assert shape("a/net.py") == [2, 3] and shape("b/net.py") == [2, 7]
    (tmp_path / "a" / "layers.py").write_text("from torch import nn\ndef block(): return nn.Linear(4, 5)\n")
    assert shape("a/net.py") == [2, 5]
    assert not (tmp_path / "a" / "__pycache__").exists()        # nothing written into the user's folder
    # a factory that imports its neighbour only when called
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "lazy.py").write_text("def make():\n    import helper_c\n    return helper_c.net()\n")
    (tmp_path / "c" / "helper_c.py").write_text("from torch import nn\ndef net(): return nn.Linear(4, 2)\n")
    assert shape("c/lazy.py") == [2, 2]
    # a package.module:FACTORY from the current folder, edited between two probes
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "m.py").write_text("from torch import nn\ndef make(): return nn.Linear(4, 3)\n")
    dotted = lambda: run_user_probe(make_spec("mypkg.m:make", "2,4")).layers[0]["shape"]
    assert dotted() == [2, 3]
    (tmp_path / "mypkg" / "m.py").write_text("from torch import nn\ndef make(): return nn.Linear(4, 9)\n")
    assert dotted() == [2, 9]
    assert "torch" in sys.modules and sys.modules["initlab.engine.spec"].SpecError is SpecError


def test_layers_naming_a_block_and_an_exit_in_the_forward_are_refused_in_one_line(tmp_path, capsys):
    f = tmp_path / "res.py"
    f.write_text(textwrap.dedent("""
        import sys
        from torch import nn

        class B(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1, self.l2 = nn.Linear(4, 4), nn.Linear(4, 4)
            def forward(self, x):
                return x + self.l2(self.l1(x))

        def make():
            return nn.Sequential(B(), B())

        class Quits(nn.Module):
            def forward(self, x):
                sys.exit(3)

        def quits():
            return Quits()
    """))
    with pytest.raises(SpecError, match=r"it matches 0, whose rows are its parts': a pattern such as '0\\.' "):
        run_user_probe(make_spec(f"{f}:make", "2,4", layers="^0$"))
    assert [r["name"] for r in run_user_probe(make_spec(f"{f}:make", "2,4", layers=r"^0\.")).layers] == ["0.l1", "0.l2"]
    assert main(["probe", "--model", f"{f}:quits", "--input-shape", "2,4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("a model whose forward runs on the inputs (it raised SystemExit: 3)") and "\n" not in err


def test_the_interpreters_own_modules_are_never_forgotten_though_the_users_folder_holds_them():
    import importlib
    import sysconfig

    from initlab.engine import usermodel

    stdlib = sysconfig.get_paths()["stdlib"]
    sys.modules.pop("wave", None)
    with usermodel._from_folder(os.path.dirname(stdlib)):     # a model loaded from above the interpreter's files
        importlib.import_module("wave")
    assert "wave" not in usermodel._OWN


def test_a_model_folders_module_named_as_the_standard_librarys_does_not_outlive_the_load(tmp_path):
    """A user's fractions.py, left in sys.modules, was every later `import fractions` (torch's sympy's too)."""
    import fractions

    (tmp_path / "fractions.py").write_text("X = 'mine'\n")
    (tmp_path / "net.py").write_text("import sys\nfrom torch import nn\nsys.modules.pop('fractions', None)\n"
                                     "import fractions\nMINE = fractions.X\n"
                                     "def make(): return nn.Linear(4, 2)\n")
    try:
        assert run_user_probe(make_spec(f"{tmp_path / 'net.py'}:make", "2,4")).layers[0]["shape"] == [2, 2]
        import importlib

        assert hasattr(importlib.import_module("fractions"), "Fraction")     # the standard library's again
    finally:
        sys.modules["fractions"] = fractions
