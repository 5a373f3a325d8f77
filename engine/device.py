"""Device choice and memory checks: auto, cpu, cuda, cuda:N, mps; refuse what does not exist or will not fit."""
from __future__ import annotations

from typing import Any

import torch

from .spec import Config, SpecError


def available_devices() -> list[tuple[str, str]]:
    """(device string, label) for every device present: cpu, each cuda:N with its name, mps."""
    out = [("cpu", "cpu")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"cuda:{i} {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("mps", "mps"))
    return out


def resolve(name: str) -> torch.device:
    """A torch.device for a configured name; SpecError('device', ...) when it is not on this machine."""
    present = [d for d, _ in available_devices()]
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        return torch.device("mps" if "mps" in present else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    wanted = "cuda:0" if name == "cuda" else name
    if wanted not in present:
        raise SpecError("device", name, "one of auto, " + ", ".join(present) + " on this machine")
    return torch.device(wanted)


def free_bytes(device: torch.device) -> int:
    """Memory free for new tensors on the device (CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


LAYER_OVERHEAD = 64 << 10   # bytes a layer costs whatever its size: its modules, autograd's nodes, its statistics


def estimate_bytes(cfg: Config, training: bool = False) -> int:
    """A generous estimate of what a probe or training of the MLP allocates, in bytes (float32). Measured on the
    CPU: a probe of 8,000 x 32 took some 100 KB a layer, of which the tensors below some 55 (the rest is each
    layer's fixed cost); one of 100 x 1024 some 10 bytes a weight."""
    from .models import parameter_count

    params = parameter_count(cfg)
    # weight, gradient, the reduction's share; a training's sampled step adds the optimiser's state (Adam's two),
    # a copy of the weights before the update and the update itself
    per_param = 6 * 4 if training else 10
    acts = cfg.batch * (cfg.in_features + cfg.width * (cfg.depth - 1) + cfg.out_features) * 4 * 6
    return params * per_param + acts + cfg.depth * LAYER_OVERHEAD


SIZE_FIELDS = ("width", "depth", "batch", "in_features", "out_features")


def check_fits(cfg: Config, device: torch.device, training: bool = False, fields: tuple[str, ...] = SIZE_FIELDS,
               names: dict[str, tuple[str, Any]] | None = None, fixed: tuple[str, Any] | None = None) -> None:
    """Refuse, before allocating, a network whose estimate is over the device's free memory. The refusal names
    the setting (of `fields`, those the command takes) that would shrink it and stands furthest above its default:
    the one that makes the net too big. `names` gives a field as the command calls it: field -> (name, value as
    given). `fixed` (name, value) is named instead when no setting of `fields` could make the net fit (a training
    whose data's features alone are too many)."""
    need = estimate_bytes(cfg, training)
    free = free_bytes(device)
    if need <= 0.9 * free:
        return
    sizes = f"{_sizes(cfg, 'batch' in fields)} needs about {need / 2**30:.1f} GiB on {device}, " \
            f"{free / 2**30:.1f} GiB is free"
    if fixed is not None and estimate_bytes(cfg.replace(**{f: 1 for f in fields}), training) > 0.9 * free:
        raise SpecError(fixed[0], fixed[1], f"a network that fits in memory ({sizes}); at width, depth and batch 1 "
                                            f"it would not: its in and out features are too many")
    # of the settings that would make the net smaller, the one furthest above its default is the one to name
    saved = {f: need - estimate_bytes(cfg.replace(**{f: max(1, getattr(cfg, f) // 2)}), training) for f in fields}
    usual = Config()
    field = max((f for f in fields if saved[f] > 0), key=lambda f: getattr(cfg, f) / getattr(usual, f),
                default=fields[0])
    names = names or {}
    shown, value = names.get(field, (field, getattr(cfg, field)))
    others = ", ".join(names.get(f, (f,))[0] for f in fields if f != field and saved[f] > 0)
    raise SpecError(shown, value, f"a network that fits in memory ({sizes}): lower {shown}"
                    + (f" (or {others})" if others else ""))


def _sizes(cfg: Config, batch: bool = True) -> str:
    hidden = f" x width {cfg.width}" if cfg.depth > 1 else ""
    return f"depth {cfg.depth}{hidden}, {cfg.in_features} in, {cfg.out_features} out" + \
        (f", batch {cfg.batch}" if batch else "")
