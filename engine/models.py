"""Network builders: the configurable MLP, built on the chosen device with the chosen initialisation."""
from __future__ import annotations

import torch
from torch import nn

from . import activations
from .inits import apply_init
from .spec import Config, layer_sizes


class Block(nn.Module):
    """One layer as the probe sees it: Linear, then optional norm, activation, dropout, residual add."""

    def __init__(self, n_in: int, n_out: int, cfg: Config, with_activation: bool):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out, bias=cfg.bias)
        norm = cfg.norm if with_activation else "none"
        self.norm = {"none": nn.Identity, "batch": lambda: nn.BatchNorm1d(n_out),
                     "layer": lambda: nn.LayerNorm(n_out)}[norm]()
        self.act = activations.module(cfg.activation, cfg.slope) if with_activation else nn.Identity()
        self.activation_name = cfg.activation if with_activation else "identity"
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.residual = cfg.residual and n_in == n_out
        # set by stats.Capture for one pass: called with (x, z, pre-activation, activation output, block output);
        # one call per block is far cheaper than three forward hooks, whose registration alone costs more
        self.tap = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        pre = self.norm(z)
        act = self.act(pre)
        a = self.drop(act)
        out = x + a if self.residual else a
        if self.tap is not None:
            self.tap(x, z, pre, act, out)
        return out


class MLP(nn.Module):
    """in_features -> (depth - 1) hidden layers of width -> out_features, one Block per Linear."""

    def __init__(self, cfg: Config, check=None):
        super().__init__()
        sizes = layer_sizes(cfg)
        last = cfg.depth - 1
        check = check or (lambda: None)
        blocks = []
        for i in range(cfg.depth):
            check()     # torch's default init draws each layer as it is built: a deep net's build can be cancelled
            blocks.append(Block(sizes[i], sizes[i + 1], cfg, with_activation=(i < last or cfg.last_activation)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x

    def set_training(self, mode: bool) -> None:
        """self.train(mode) for a net of modules that keep nn.Module's own train(): the flag is set directly, since
        nn.Module.__setattr__'s checks on each of some fifty modules cost a fifth of a millisecond per switch. The
        list of modules is taken once: the net's structure does not change after it is built."""
        mods = self.__dict__.get("_flag_modules")
        if mods is None:
            mods = list(self.modules())
            if any(type(m).train is not nn.Module.train for m in mods):
                mods = ()       # a module with its own train() gets it called
            object.__setattr__(self, "_flag_modules", mods)
        if not mods:
            self.train(mode)
            return
        for m in mods:
            object.__setattr__(m, "training", mode)


def parameter_count(cfg: Config) -> int:
    sizes = layer_sizes(cfg)
    n = sum(a * b + (b if cfg.bias else 0) for a, b in zip(sizes[:-1], sizes[1:]))
    if cfg.norm != "none":
        n += 2 * cfg.width * cfg.depth
    return n


def build_mlp(cfg: Config, device: torch.device, sample: torch.Tensor | None = None, check=None) -> MLP:
    """The MLP on device, initialised. torch's default init is drawn on the CPU while the layers are built, in
    order, exactly as a hand-written nn.Linear stack would (so a seed gives the same net on every device); other
    schemes skip that draw and fill the weights once, on the device."""
    if cfg.init == "default":
        return MLP(cfg, check).to(device)
    with torch.device("meta"):
        model = MLP(cfg)
    model = model.to_empty(device=device)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
            m.reset_parameters()
    apply_init(model, cfg, sample, check)
    return model
