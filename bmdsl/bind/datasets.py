"""Built-in default data and the data-file loader.

Every generator is small, float64 and deterministic: the same arguments give the same
arrays (numpy.random.default_rng(seed)), so golden checks and examples are reproducible
without shipping data files.  Samples are ordered class by class (blocks), class sizes
differ by at most one (the first n % classes classes get one more).
"""
from __future__ import annotations

import csv
import os

import numpy as np

from .csvread import csv_arrays, read_table
from .datafile import DataFileError, data_limit, regular_file, require
from .npyread import read_npy, read_npz

__all__ = ["DataFileError", "load_data", "save_data", "spiral", "spiral_scalar", "images",
           "sequences"]


def _class_sizes(n: int, classes: int) -> np.ndarray:
    if classes < 1 or n < classes:
        raise ValueError(f"need n >= classes >= 1, got n={n}, classes={classes}")
    return np.full(classes, n // classes) + (np.arange(classes) < n % classes)


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def spiral(n: int = 150, classes: int = 3, seed: int = 0, noise: float = 0.2) -> dict:
    """Class-balanced interleaved spiral in [-0.5, 0.5]^2 (paper Fig. 3, appendix C.1).

    Class j's i-th of n_j points (u = i / (n_j - 1) in [0, 1]) sits at radius
    0.5 * (0.1 + 0.9 u) and angle 4 (j + u) * 3 / classes + noise * N(0, 1) (radians):
    `classes` arms winding 4 * 3 / classes radians each, as in the CS231n generator the
    figure resembles.  The radius starts at 0.05 so no point is the origin (without a
    bias an input at 0 has a zero prediction whatever the weights).
    Returns X [n, 2] and one-hot Y [n, classes].
    """
    rng = np.random.default_rng(seed)
    xs, labels = [], []
    for j, nj in enumerate(_class_sizes(n, classes)):
        u = np.linspace(0.0, 1.0, nj) if nj > 1 else np.zeros(1)
        radius = 0.5 * (0.1 + 0.9 * u)
        angle = 4.0 * (j + u) * 3.0 / classes + noise * rng.standard_normal(nj)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        labels.append(np.full(nj, j))
    labels = np.concatenate(labels)
    return {"X": np.concatenate(xs), "Y": _one_hot(labels, classes)}


def spiral_scalar(n: int = 40, seed: int = 0, noise: float = 0.2) -> dict:
    """Two-class spiral (as `spiral`, classes=2) with scalar targets Y [n] in {-1, +1}."""
    data = spiral(n, classes=2, seed=seed, noise=noise)
    return {"X": data["X"], "Y": data["Y"] @ np.array([1.0, -1.0])}


def images(n: int = 16, channels: int = 1, height: int = 6, width: int = 6,
           classes: int = 2, seed: int = 0, noise: float = 0.1) -> dict:
    """Images whose class is where a bright blob is: strip c of `classes` vertical strips.

    Class c puts a Gaussian blob (amplitude 1, width 1 pixel) at a random row and a
    random column inside the c-th strip (left vs right half for two classes), the same
    blob in every channel, plus noise * N(0, 1) per pixel.  A CNN with pooling learns it.
    Returns I [n, channels, height, width] and one-hot Y [n, classes].
    """
    if width < classes:
        raise ValueError(f"width {width} is too small for {classes} strips")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), _class_sizes(n, classes))
    edges = np.linspace(0, width, classes + 1)
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    out = np.empty((n, channels, height, width))
    for i, c in enumerate(labels):
        r0 = rng.uniform(0, height - 1)
        c0 = rng.uniform(edges[c], edges[c + 1] - 1) if edges[c + 1] - edges[c] > 1 else edges[c]
        blob = np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / 2.0)
        out[i] = blob + noise * rng.standard_normal((channels, height, width))
    return {"I": out, "Y": _one_hot(labels, classes)}


def sequences(n: int = 8, tokens: int = 4, features: int = 3, outputs: int = 2,
              seed: int = 0, noise: float = 0.1) -> dict:
    """Sequences labelled by a random linear self-attention teacher (paper eq. (8)).

    X_i ~ N(0, 1) [s, d]; teacher A [d, d] ~ N(0, 1/d), B [d, c] ~ N(0, 1/d);
    Y_i = (X_i A X_i^T) X_i B, scaled to unit variance, plus noise * N(0, 1), and the
    sum scaled to unit variance again.  Returns X [n, s, d] and Y [n, s, c].
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, tokens, features))
    A = rng.standard_normal((features, features)) / np.sqrt(features)
    B = rng.standard_normal((features, outputs)) / np.sqrt(features)
    Y = np.einsum("nse,ef,ntf,ntg,gc->nsc", X, A, X, X, B)
    Y = Y / Y.std() + noise * rng.standard_normal(Y.shape)
    return {"X": X, "Y": Y / Y.std()}


# ----------------------------------------------------------------------- data files

READERS = (".npz", ".npy", ".csv")


def load_data(path, names=None, *, name=None, tensors=None, target=None,
              max_bytes=None) -> dict[str, np.ndarray]:
    """Arrays (float64) by name from .npz, .npy or .csv, checked before they are read.

    * .npz: every array, under its name (members NAME.npy, as numpy.savez writes them).
    * .npy: one unnamed array, so the caller must say its name: name="X" (or names="X").
    * .csv: a header row is required; see `bmdsl.bind.csvread` for tensor headers (X[0], X[1],
      Y) and ordinary ones (x0, x1, y: the `target` columns, default the last, become the
      target, the rest the input).  `tensors` are the model's data tensors, the target
      last (e.g. ("X", "Y")); `name` asks for one array (a whole ordinary table is NAME).
    The path must be a regular file; the declared arrays (npy headers, zip sizes, CSV rows)
    must fit `max_bytes` (default `datafile.data_limit()`, $BMDSL_MAX_DATA_BYTES); pickle
    is never used and only bool, integer and float arrays are accepted.  If `names` (or
    `name`) is given, each must be present.  Errors are DataFileError naming the file, the
    member or the line and column, what is wrong and what is accepted.
    """
    path = os.fspath(path)
    wanted = [names] if isinstance(names, str) else list(names or [])
    if name is not None and name not in wanted:
        wanted.append(name)
    size = regular_file(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in READERS:
        raise DataFileError(path, f"unsupported file type {ext or '(no extension)'!r}",
                            hint="use .npz (numpy.savez), .npy (numpy.save) or .csv (a header "
                                 "row, one sample per row)")
    limit = data_limit(max_bytes)
    require(path, "the file", size, limit, verb="is {} on disk")
    try:
        if ext == ".npz":
            out = read_npz(path, limit, only={name} if name is not None else None)
        elif ext == ".npy":
            if len(wanted) != 1:
                raise DataFileError(path, "a .npy file holds one unnamed array",
                                    hint='pass its name: --data X=FILE.npy, or '
                                         'load_data(path, names="X")')
            out = {wanted[0]: read_npy(path, size, limit)}
        else:
            out = csv_arrays(path, read_table(path, limit), name=name, tensors=tensors,
                             target=_columns(target))
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"not UTF-8 text (byte {exc.start}): is it a CSV file?",
                            hint="a .csv file is text: a header row, then one sample per "
                                 "row") from None
    except OSError as exc:
        raise DataFileError(path, f"cannot read ({exc.strerror or exc})") from None
    missing = [k for k in wanted if k not in out]
    if missing:
        raise DataFileError(path, f"missing {', '.join(missing)}; found "
                            f"{', '.join(sorted(out)) or 'nothing'}")
    return out


def _columns(target) -> tuple[str, ...] | None:
    """target=["y"], ("y0", "y1") or "y0,y1" -> column names."""
    if not target:
        return None
    return tuple(c.strip() for c in target.split(",")) if isinstance(target, str) else \
        tuple(target)


def save_data(path, arrays: dict) -> None:
    """Write arrays by name to .npz, or to .csv in the layout `load_data` reads back."""
    path = os.fspath(path)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    if path.lower().endswith(".npz"):
        np.savez(path, **arrays)
        return
    if not path.lower().endswith(".csv"):
        raise DataFileError(path, "save_data writes .npz or .csv")
    n = {a.shape[0] for a in arrays.values()}
    if len(n) != 1:
        raise ValueError(f"arrays have different sample counts {sorted(n)}")
    header, cols = [], []
    for name, a in arrays.items():
        for ix in np.ndindex(*a.shape[1:]):
            header.append(f"{name}[{','.join(map(str, ix))}]" if ix else name)
            cols.append(a[(slice(None), *ix)])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([[repr(float(x)) for x in row] for row in np.stack(cols, axis=1)])
