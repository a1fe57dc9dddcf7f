"""Data for the emitted modules without bmdsl: an .npz read without pickle, and each array
checked against its declaration; every failure a ValueError saying what is wrong."""
import zipfile

import numpy as np


def read_npz(path, what="data", keys=None):
    """{name: array} of the file (only `keys` when given)."""
    try:
        zipfile.ZipFile(path).close()   # else np.load reads a .npy, or offers pickle for text
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files if keys is None or k in keys}
    except FileNotFoundError:
        raise ValueError(f"{what} {path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{what} {path} is not a readable .npz ({exc})") from None


def numeric(data, name, dims, short=False, what="the data"):
    """data[name] as float64, checked against its declaration name[*dims]: present, numbers
    (bool, integer, float), those axes (`short`: one axis fewer gets a last axis of 1), not
    empty, finite; else a ValueError saying what is wrong."""
    if name not in data:
        raise ValueError(f"{what} lack '{name}' [{', '.join(dims)}] (found: {sorted(data)})")
    a = np.asarray(data[name])
    a = a[..., None] if short and a.ndim == len(dims) - 1 else a
    why = (a.dtype.kind not in "biuf" and f"is not an array of numbers (dtype {a.dtype})"
           or a.ndim != len(dims) and f"has axes {list(a.shape)}, not [{', '.join(dims)}]"
           or a.size == 0 and "is empty" or not np.isfinite(a).all() and "contains NaN or inf")
    if why:
        raise ValueError(f"'{name}' {why}")
    return np.asarray(a, dtype=np.float64)
