"""Reading an .npz of arrays without pickle, every failure a ValueError naming the file."""
import numpy as np


def read_npz(path, what="data", keys=None):
    """{name: array} of the file (only `keys` when given)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files if keys is None or k in keys}
    except FileNotFoundError:
        raise ValueError(f"{what} {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} {path} is not a readable .npz ({exc})") from None
