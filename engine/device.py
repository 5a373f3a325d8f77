"""Device choice and memory checks: auto, cpu, cuda, cuda:N, mps; refuse what does not exist or will not fit."""
from __future__ import annotations

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


def estimate_bytes(cfg: Config, training: bool = False) -> int:
    """A generous estimate of what a probe or training of the MLP allocates, in bytes (float32)."""
    from .models import parameter_count

    params = parameter_count(cfg)
    per_param = 4 * (4 if training else 2)        # weight, gradient (+ optimiser state and a copy)
    acts = cfg.batch * (cfg.in_features + cfg.width * cfg.depth + cfg.out_features) * 4 * 6
    return params * per_param + acts


def check_fits(cfg: Config, device: torch.device, training: bool = False) -> None:
    """Refuse, before allocating, a network whose estimate is over the device's free memory."""
    need = estimate_bytes(cfg, training)
    free = free_bytes(device)
    if need > 0.9 * free:
        raise SpecError(
            "width", cfg.width,
            f"a network that fits in memory (depth {cfg.depth} x width {cfg.width} with batch {cfg.batch} needs "
            f"about {need / 2**30:.1f} GiB on {device}, {free / 2**30:.1f} GiB is free): lower width, depth or batch")
