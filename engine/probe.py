"""The probe: one forward and one backward pass of a freshly initialised MLP, reduced to per-layer statistics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from . import device as devices
from .models import build_mlp
from .spec import Config, validate
from .stats import Capture, collect
from .verdict import first_nonfinite, verdict


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found, in plain Python numbers."""

    config: dict[str, Any]
    device: str
    torch: str
    layers: list[dict[str, Any]]
    first_nonfinite_layer: int | None
    verdict: dict[str, Any]
    loss: float | None
    input_std: float
    distributions: list[dict[str, list[float]]] | None = None
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "device": self.device, "torch": self.torch, "layers": self.layers,
                "first_nonfinite_layer": self.first_nonfinite_layer, "verdict": self.verdict, "loss": self.loss,
                "input_std": self.input_std, "distributions": self.distributions}


def layer_rows(model, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prefix each layer's statistics with its index, name and fans."""
    rows = []
    for i, (b, d) in enumerate(zip(model.blocks, layers)):
        name = f"blocks.{i}.linear+{b.activation_name}"
        rows.append({"index": i, "name": name, "fan_in": b.linear.in_features, "fan_out": b.linear.out_features,
                     **d})
    return rows


def probe_loss(cfg: Config, out: torch.Tensor) -> torch.Tensor:
    """MSE against the target, or sum(out * g) with g ~ N(0, 1) drawn from the seeded stream."""
    if cfg.loss == "mse":
        return torch.nn.functional.mse_loss(out, torch.full_like(out, cfg.target))
    g = torch.randn(out.shape, dtype=out.dtype).to(out.device)
    return (out * g).sum()


def run_probe(cfg: Config, distributions: bool = True, check: Callable[[], None] | None = None) -> ProbeResult:
    """Seed, build and initialise the net, draw the input batch, run forward and backward, reduce on device.
    `check` (which raises to cancel) is called between the stages and at every layer of the forward pass, so that a
    very deep probe stops when asked."""
    check = check or (lambda: None)
    validate(cfg)
    dev = devices.resolve(cfg.device)
    devices.check_fits(cfg, dev)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = build_mlp(cfg, dev, check=check)
    model.train()
    check()
    # drawn on the CPU, then moved, so that a seed gives the same batch on every device
    x = torch.randn(cfg.batch, cfg.in_features).to(dev)
    with Capture(model.blocks, check=check, backward_check=True) as cap:
        out = model(x)
        loss = probe_loss(cfg, out)
        check()
        loss.backward()
        check()
        layers, extras, dists = collect(cap, model.blocks, [loss, x.float().std(correction=0)],
                                        with_distributions=distributions, check=check)
    rows = layer_rows(model, layers)
    loss_v, input_std = extras
    return ProbeResult(
        config=cfg.to_dict(), device=str(dev), torch=str(torch.__version__), layers=rows,
        first_nonfinite_layer=first_nonfinite(rows), verdict=verdict(rows, input_std, cfg.batch),
        loss=loss_v if cfg.loss == "mse" else None, input_std=input_std, distributions=dists,
        seconds=time.perf_counter() - t0, names=[r["name"] for r in rows])


def random_matrix_run(n: int = 4, steps: int = 100, seed: int = 0, draws: int = 1000) -> dict:
    """M = N(0,1) n x n, then steps times M = M @ N(0,1): the Frobenius norm after each product and the largest
    |entry| at the end; and the spread of that largest entry over `draws` independent products drawn from the same
    seed (its 10%, 50% and 90% quantiles), so that one seed's figure can be read against what the experiment gives
    in general. One transfer."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    norms = []
    for _ in range(steps):
        m = m @ torch.randn(n, n, generator=g, dtype=torch.float64)
        norms.append(m.norm())
    many = torch.randn(draws, n, n, generator=g, dtype=torch.float64)
    for _ in range(steps):
        many = many @ torch.randn(draws, n, n, generator=g, dtype=torch.float64)
    # quantiles of log10, so that draws spread over ten decades are ranked, not summed
    logs = many.abs().flatten(1).amax(1).log10()
    q = 10 ** torch.quantile(logs, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    host = torch.cat([torch.stack(norms), m.abs().amax().reshape(1), q]).tolist()
    return {"norms": host[:steps], "max_entry": host[steps], "draws": draws,
            "max_entry_p10": host[steps + 1], "max_entry_median": host[steps + 2], "max_entry_p90": host[steps + 3]}
