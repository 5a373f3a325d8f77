"""The verdict on a probe: stable, vanishing, exploding or nonfinite, read from the forward and backward signals."""
from __future__ import annotations

import math
from typing import Any

# Three orders of magnitude across the net is where a signal has vanished or exploded; one order past the
# reference marks the layer where it starts.
LIMIT = 3.0
ONSET = 1.0


def _log(x: float | None) -> float | None:
    if x is None or not math.isfinite(x) or x <= 0:
        return None
    return math.log10(x)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return a / b


def first_nonfinite(layers: list[dict[str, Any]]) -> int | None:
    for i, d in enumerate(layers):
        v = d.get("nonfinite_frac")
        if v is not None and v > 0:
            return i
        if any(d.get(k) is not None and not math.isfinite(d[k]) for k in ("a_std", "a_mean")):
            return i
    return None


def _one_value(d: dict[str, Any], batch: int | None) -> bool:
    """Whether the layer's output is a single number: its shape says so (a user's module), or the batch and fan_out."""
    shape = d.get("shape")
    if isinstance(shape, (list, tuple)) and all(isinstance(k, int) for k in shape):     # [] is a 0-d scalar
        return math.prod(shape) == 1
    return batch is not None and batch * d.get("fan_out", 0) == 1


def verdict(layers: list[dict[str, Any]], input_std: float | None, batch: int | None = None) -> dict[str, Any]:
    """Forward: each layer's a_std against the input's std. Backward: each layer's dL/dz RMS against the last
    layer's. Both are read, so a net that is dead both ways (first and last weight gradients alike) still shows.
    A layer whose output is one value (one unit seen on a batch of one: by its shape, or by `batch` and its fan_out)
    is not read forward: one value has no spread."""
    out: dict[str, Any] = {
        "kind": "stable", "from_layer": None, "note": None,
        "first_last_grad_ratio": ratio(layers[0].get("grad_w_absmean"), layers[-1].get("grad_w_absmean")),
        # RMS, as the backward verdict reads it: a one-value output layer has a dL/dz but no spread
        "first_last_gradz_ratio": ratio(layers[0].get("grad_z_rms"), layers[-1].get("grad_z_rms")),
    }
    bad = first_nonfinite(layers)
    grads_bad = [i for i, d in enumerate(layers)
                 if any(d.get(k) is not None and not math.isfinite(d[k]) for k in ("grad_z_std", "grad_w_std"))]
    if bad is not None or grads_bad:
        out["kind"] = "nonfinite"
        out["from_layer"] = bad if bad is not None else max(grads_bad)
        return out
    ref_f = _log(input_std)
    fwd = [_log(d.get("a_std")) for d in layers]
    one_value = [_one_value(d, batch) for d in layers]
    ref_b = _log(layers[-1].get("grad_z_rms"))
    bwd = [_log(d.get("grad_z_rms")) for d in layers]
    # A log of None means the std is exactly 0: as vanished as it gets.
    f_dev = [(0.0 if one else -math.inf if v is None else v - ref_f)
             for v, one in zip(fwd, one_value)] if ref_f is not None else []
    b_dev = [(-math.inf if v is None else v - ref_b) for v in bwd] if ref_b is not None else []
    worst_f = min(f_dev, key=lambda v: -abs(v)) if f_dev else 0.0
    worst_b = min(b_dev, key=lambda v: -abs(v)) if b_dev else 0.0
    if max(abs(worst_f), abs(worst_b)) < LIMIT:
        # the layers each signal crossed to its worst: from the input (forward), from the last layer (backward)
        steps_f = f_dev.index(worst_f) + 1 if f_dev else 0
        steps_b = len(b_dev) - 1 - b_dev.index(worst_b) if b_dev else 0
        out["note"] = drift_note(worst_f, worst_b, steps_f, steps_b)
        return out
    if abs(worst_f) >= abs(worst_b):
        out["kind"] = "vanishing" if worst_f < 0 else "exploding"
        out["from_layer"] = next(i for i, v in enumerate(f_dev) if abs(v) >= ONSET)
    else:
        out["kind"] = "vanishing" if worst_b < 0 else "exploding"
        # the backward signal decays towards the input: it starts at the last layer already past the onset
        out["from_layer"] = max(i for i, v in enumerate(b_dev) if abs(v) >= ONSET)
    return out


def stable_text(v: dict[str, Any]) -> str:
    """What a stable verdict says: its drift note, or that nothing moved an order of magnitude."""
    return v.get("note") or "no layer's signal vanishes or explodes"


def drift_note(worst_f: float, worst_b: float, steps_f: int = 0, steps_b: int = 0) -> str | None:
    """For a stable verdict: a signal that moved an order of magnitude or more, short of the verdict's three, is said
    (tanh with std 1/sqrt(n) decays twelvefold over 100 layers: the course's slow vanishing, which "stable" alone
    would hide), with its rate a layer over the layers it crossed to its worst: 383x over a short net's three steps is
    a steep fall all the same."""
    moved = [(name, v) for name, v in (("forward std", worst_f), ("backward dL/dz RMS", worst_b)) if abs(v) >= ONSET]
    if not moved:
        return None
    # over the layers the signal crossed to get there: steps_f from the input, steps_b from the last layer down
    steps = {"forward std": steps_f, "backward dL/dz RMS": steps_b}
    rate = lambda name, v: f" (about {10 ** (abs(v) / steps[name]):.3g}x a layer)" if steps[name] > 0 else ""
    said = [f"{name} {'falls' if v < 0 else 'grows'} {10 ** abs(v):.3g}x" for name, v in moved]
    if len(moved) == 1:
        text = f"the {said[0]} across the net{rate(*moved[0])}"
    else:
        text = f"the {said[0]}{rate(*moved[0])} and the {said[1]}{rate(*moved[1])} across the net"
    kinds = {"vanishing" if v < 0 else "exploding" for _, v in moved}
    return f"{text}: short of the {10 ** LIMIT:g}x read as {' or '.join(sorted(kinds, reverse=True))}"


def symmetry_note(layers: list[dict[str, Any]]) -> str | None:
    """A line naming the hidden layers whose units are copies of one another (fewer distinct rows of W than rows),
    or None: hidden units with equal weights in and out get equal gradients and stay copies, so the layer is as
    narrow as its count. The output layer is left out: each output has its own error, which sets its units apart."""
    narrow = [(i, d["distinct_units"], d["fan_out"]) for i, d in enumerate(layers[:-1])
              if isinstance(d.get("distinct_units"), int) and isinstance(d.get("fan_out"), int)
              and d["distinct_units"] < d["fan_out"]]
    if not narrow:
        return None
    (i, k, n), rest = narrow[0], narrow[1:4]
    shown = f"layer {i} has {k} distinct unit{'s' if k != 1 else ''} of {n}" + "".join(
        f", layer {j} {a} of {b}" for j, a, b in rest)
    extra = len(narrow) - 4
    more = f" and {extra} more layer{'s' if extra > 1 else ''}" if extra > 0 else ""
    return (f"symmetry: {shown}{more} (hidden units that are copies get equal gradients and stay copies: a layer is "
            f"as narrow as its distinct units)")
