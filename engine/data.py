"""Training data: the course's polynomial regression, Gaussian blobs, or a user's .npz/.pt file; seeded splits."""
from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .spec import Config, SpecError, data_problem


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors, already on the device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str                   # "regression" or "classification"
    out_features: int

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])


def poly(cfg: Config, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """features ~ N(0, 1), one column per weight; labels = (features ** deg) @ w (+ bias) + 0.01 N(0, 1)."""
    w = list(cfg.poly_w)
    bias = 0.0
    if cfg.poly_bias:
        w, bias = w[:-1], w[-1]
    x = torch.randn(cfg.n_rows, len(w), generator=gen)
    y = torch.pow(x, cfg.deg) @ torch.tensor(w).reshape(-1, 1) + bias
    y = y + 0.01 * torch.randn(y.shape, generator=gen)
    if not bool(torch.isfinite(y).all()):
        # float32 labels; deg is at most 10, so N(0, 1) features to that power stay finite: the weights overflowed
        raise SpecError("poly_w", ",".join(f"{v:g}" for v in cfg.poly_w),
                        "weights (and bias) small enough that the labels stay finite in float32")
    return x, y


def blobs(cfg: Config, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """k Gaussian clouds in the plane: centres ~ N(0, 3^2), unit spread, labels 0..k-1."""
    centres = 3.0 * torch.randn(cfg.classes, 2, generator=gen)
    labels = torch.randint(0, cfg.classes, (cfg.n_rows,), generator=gen)
    x = centres[labels] + torch.randn(cfg.n_rows, 2, generator=gen)
    return x, labels


MAX_CLASSES = 1 << 20      # a label of a file sets the net's outputs: as many as a layer may be wide


def _file_error(path: str, why: str) -> SpecError:
    return SpecError("data", path, why)


def load_file(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """X and y from a .npz (numpy arrays) or .pt (a dict of tensors) file, checked for keys, shapes and dtypes."""
    if os.path.isdir(path):
        raise _file_error(path, "a .npz or .pt file, not a folder")
    if not os.path.isfile(path):      # the same words as the setting's own check (Config refuses it first)
        raise _file_error(path, data_problem(path) or "an existing .npz or .pt file")
    try:
        if path.endswith(".npz"):
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):     # a lone .npy array under a .npz name
                raise _file_error(path, "a .npz archive holding arrays X and y (this is a single array: save it with "
                                        "np.savez(path, X=X, y=y))")
            with z:
                keys = list(z.keys())
                if "X" not in keys or "y" not in keys:
                    raise _file_error(path, f"a file holding arrays X and y (found: {', '.join(keys) or 'none'})")
                arrays = []
                for name in ("X", "y"):
                    try:
                        arrays.append(z[name])
                    except ValueError:      # an object array: loading it would unpickle, which runs code
                        raise _file_error(path, f"{name} of a numeric dtype, not object") from None
                xa, ya = arrays
            for name, arr in (("X", xa), ("y", ya)):
                if arr.dtype.kind not in "fiub":
                    raise _file_error(path, f"{name} of a numeric dtype, not {arr.dtype}")
            x, y = torch.from_numpy(np.array(xa)), torch.from_numpy(np.array(ya))
        else:
            try:
                with warnings.catch_warnings():     # a plain pickle gets torch's two-line warning before our refusal
                    warnings.simplefilter("ignore")
                    obj = torch.load(path, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as e:
                # the safe load refuses any object but tensors and plain containers: name the one it met
                found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
                if found is None:
                    raise
                what = "numpy arrays" if found.group(1).startswith("numpy") else found.group(1)
                raise _file_error(path, f"X and y saved as torch tensors (this file holds {what}, which a safe load "
                                        f"refuses: save torch.from_numpy(X) or torch.tensor(X))") from None
            if not isinstance(obj, dict) or "X" not in obj or "y" not in obj:
                found = ", ".join(map(str, obj.keys())) if isinstance(obj, dict) else type(obj).__name__
                raise _file_error(path, f"a dict holding tensors X and y (found: {found or 'none'})")
            x, y = obj["X"], obj["y"]
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
                raise _file_error(path, "X and y as tensors")
            if x.layout != torch.strided or y.layout != torch.strided:
                raise _file_error(path, "X and y as dense tensors (not sparse)")
            for name, t in (("X", x), ("y", y)):
                if t.is_quantized:
                    raise _file_error(path, f"{name} of a float or integer dtype, not {t.dtype} (dequantize it)")
    except SpecError:
        raise
    except Exception as e:      # a corrupt or foreign file: one line, not a traceback
        raise _file_error(path, f"a readable .npz or .pt file ({type(e).__name__})") from None
    if x.device.type == "meta" or y.device.type == "meta":
        raise _file_error(path, "X and y holding values (these are meta tensors: shapes only)")
    x, y = x.detach(), y.detach()       # saved with requires_grad, they would join every step's graph
    if x.dim() != 2:
        raise _file_error(path, f"X of shape (rows, features), not {tuple(x.shape)}")
    if y.dim() not in (1, 2) or y.shape[0] != x.shape[0]:
        raise _file_error(path, f"y with one row per row of X ({x.shape[0]}), not shape {tuple(y.shape)}")
    if x.shape[0] < 2:
        raise _file_error(path, "at least 2 rows")
    if x.shape[1] < 1 or (y.dim() == 2 and y.shape[1] < 1):
        raise _file_error(path, f"X and y with at least one column (X {tuple(x.shape)}, y {tuple(y.shape)})")
    if x.is_complex() or x.dtype == torch.bool:
        raise _file_error(path, f"X of a float or integer dtype, not {x.dtype}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise _file_error(path, "finite values in X (as float32, |value| below 3.4e38)")
    if y.is_floating_point():
        y = y.float()       # trained in float32: a float64 label past its range is inf there
        if not torch.isfinite(y).all():
            raise _file_error(path, "finite values in y (as float32, |value| below 3.4e38)")
    elif not (y.is_complex() or y.dtype == torch.bool):
        if y.dim() == 2 and y.shape[1] == 1:        # a column of labels, as a float y may be
            y = y[:, 0]
        wide = y.double()      # torch has no min or max of its unsigned types past uint8; exact for these bounds
        if y.dim() != 1 or float(wide.min()) < 0 or float(wide.max()) >= MAX_CLASSES:
            raise _file_error(path, f"integer class labels as a 1-D y of values in [0, {MAX_CLASSES - 1}]")
        if float(wide.max()) < 1:
            raise _file_error(path, "class labels of at least two classes, 0 and 1 or more (this y is all 0: "
                                    "one output, a loss of 0 whatever the net)")
        y = y.long()
    else:
        raise _file_error(path, f"y of a float or integer dtype, not {y.dtype}")
    return x, y


def make(cfg: Config, device: torch.device) -> Dataset:
    """The configured data, split 70/30 by a seeded permutation, optionally standardised on the train split."""
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.data == "poly":
        x, y = poly(cfg, gen)
    elif cfg.data == "blobs":
        x, y = blobs(cfg, gen)
    else:
        x, y = load_file(cfg.data)
    classification = not y.is_floating_point()
    if not classification and y.dim() == 1:
        y = y.unsqueeze(1)
    y = y if classification else y.float()
    perm = torch.randperm(x.shape[0], generator=gen)
    n_train = max(1, int(x.shape[0] * 0.7))
    tr, te = perm[:n_train], perm[n_train:]
    if te.numel() == 0:
        te = tr[-1:]
    x_tr, x_te = x[tr], x[te]
    if cfg.standardize:
        if tr.numel() < 2:
            raise SpecError("standardize", "on", f"off for data of {x.shape[0]} rows (its train split of 1 row has "
                                                 "no spread to standardise by)")
        # in float64: a float32 mean of a constant column is off by a rounding, which a spread of 0 would blow up;
        # a column with no spread is centred and left at 0, not divided by it (population std, as every std here)
        wide = x_tr.double()
        mu, sd = wide.mean(0, keepdim=True), wide.std(0, correction=0, keepdim=True)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        x_tr, x_te = ((wide - mu) / sd).float(), ((x_te.double() - mu) / sd).float()
    if cfg.norm == "batch" and tr.numel() < 2:
        raise SpecError("norm", "batch", f"none or layer for data of {x.shape[0]} rows (a train split of 1 row gives "
                                         "batch norm one value per channel)")
    # blobs has cfg.classes outputs even when a small draw leaves a class out; a file's labels say how many
    out = (cfg.classes if cfg.data == "blobs" else int(y.max()) + 1) if classification else int(y.shape[1])
    return Dataset(x_tr.to(device), y[tr].to(device), x_te.to(device), y[te].to(device),
                   "classification" if classification else "regression", out)
