"""Which settings a run reads: a sweep that varies one no point reads would draw the same run at every value."""
from __future__ import annotations

from typing import Iterable

from .spec import BUILTIN_DATA, FIELDS, Config, layer_sizes

# init parameter -> the schemes that read it
INIT_PARAMS = {
    "gain": ("xavier_uniform", "xavier_normal", "orthogonal"), "std": ("normal", "sparse"), "bound": ("uniform",),
    "value": ("constant",), "sigma_w": ("scaled_normal",), "sigma_b": ("scaled_normal",),
    "mode": ("kaiming_uniform", "kaiming_normal"), "sparsity": ("sparse",), "lsuv_tol": ("lsuv",),
}
PROBE_ONLY = ("loss", "target")                     # a training's loss follows its data
TRAIN_ONLY = ("data", "n_rows", "deg", "poly_w", "poly_bias", "classes", "standardize", "optimizer", "lr",
              "momentum", "nesterov", "weight_decay", "clip", "schedule", "epochs", "stats_every")
# the width check: the groups of settings it reads, less those it does not (each with why, for its refusal)
WIDTHS_GROUPS = ("model", "init", "probe", "train", "run")
WIDTHS_UNREAD = {"width": "the widths come from --widths", "epochs": "it trains --steps steps",
                 "stats_every": "it records every step", "schedule": "its few steps keep one learning rate",
                 "loss": "it fits N(0, 1) targets with MSE", "target": "it fits N(0, 1) targets with MSE"}
POLY_ONLY = ("deg", "poly_w", "poly_bias")
OPTIMISER_PARAMS = {"momentum": ("sgd", "rmsprop"), "nesterov": ("sgd",)}


def scale_of(init: str) -> str | None:
    """The setting that scales an init's weights (what to lower where a net explodes), or None for one it fixes."""
    name = next((p for p in ("sigma_w", "gain", "std", "bound", "value") if init in INIT_PARAMS[p]), None)
    return "the gain" if name == "gain" else name


def _who(names: tuple[str, ...]) -> str:
    return f"{', '.join(names)} {'does' if len(names) == 1 else 'do'}"


def unread(cfg: Config, name: str, train: bool, train_hint: str = "--train") -> str | None:
    """Why a run of cfg (a training if `train`, else a probe) does not read the setting `name`; None if it does.
    `train_hint`: how the caller's user asks for trainings instead (a flag, or the app's field)."""
    if name in INIT_PARAMS and cfg.init not in INIT_PARAMS[name]:
        return f"init {cfg.init} does not read {name}; init {_who(INIT_PARAMS[name])}"
    if name == "sigma_b" and not cfg.bias:
        return "a net without bias does not read sigma_b"
    if name == "slope" and cfg.activation != "leaky_relu":
        return f"activation {cfg.activation} does not read slope; leaky_relu does"
    if name == "last_activation" and cfg.activation == "identity" and cfg.norm == "none":
        # with a norm, last_activation also puts the norm after the last Linear
        return "activation identity without a norm leaves the last layer as it is, with or without last_activation"
    if name == "residual" and not train and not _has_square_layer(cfg):
        # a training's first and last fans follow its data: only a probe's are known here
        return "a residual add needs a layer whose fan_in equals its fan_out, and this net has none"
    if not train and name in TRAIN_ONLY:
        return f"a probe does not read {name}; a training does ({train_hint})"
    if train and name in PROBE_ONLY:
        return f"a training does not read {name}: its loss follows the data"
    if name == "target" and cfg.loss != "mse":
        return f"loss {cfg.loss} does not read target; mse does"
    if name == "width" and cfg.depth == 1:
        return "a net of one layer has no hidden width"
    if train and name in ("in_features", "out_features"):
        return f"a training's {name} follows its data"
    if train and name in POLY_ONLY and cfg.data != "poly":
        return f"data {cfg.data} does not read {name}; poly does"
    if train and name == "classes" and cfg.data != "blobs":
        return f"data {cfg.data} does not read classes; blobs does"
    if train and name == "n_rows" and cfg.data not in BUILTIN_DATA:
        return "a data file has its own rows"
    if train and name in OPTIMISER_PARAMS and cfg.optimizer not in OPTIMISER_PARAMS[name]:
        return f"optimizer {cfg.optimizer} does not read {name}; {_who(OPTIMISER_PARAMS[name])}"
    return None


def _has_square_layer(cfg: Config) -> bool:
    sizes = layer_sizes(cfg)
    return any(a == b for a, b in zip(sizes, sizes[1:]))


def read_nowhere(cfgs: Iterable[Config], name: str, train: bool, train_hint: str = "--train") -> str | None:
    """Why none of these runs (a sweep's points) reads `name`, varied across them; None when one of them does. A
    sweep's point keeps its end state: the steps sampled on the way are not part of it."""
    if name == "stats_every":
        return "a sweep's point reads its end state, not the steps sampled on the way"
    first = None
    for cfg in cfgs:        # lazily: a setting the first point reads costs one Config, not one per point
        why = unread(cfg, name, train, train_hint)
        if why is None:
            return None
        first = first or why
    return first



def read_by_widths(settings: dict) -> dict:
    """The settings (a Config's dict) that the width check reads."""
    return {k: v for k, v in settings.items()
            if k in FIELDS and FIELDS[k].group in WIDTHS_GROUPS and k not in WIDTHS_UNREAD}
