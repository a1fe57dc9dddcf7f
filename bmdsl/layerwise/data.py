"""Image data for layerwise training: the built-in digits, or a user's .npz.

* `digits()`: scikit-learn's `load_digits` (1797 real 8 x 8 grey images of the digits
  0-9, shipped inside scikit-learn: nothing is downloaded), scaled to [0, 1].
* `read_images(path)`: an .npz with `x_train` [n, channels, height, width] and integer
  labels `y_train` [n] (0 .. c-1), and optionally `x_test`, `y_test` of the same layout
  (e.g. CIFAR-10 [n, 3, 32, 32], Fashion-MNIST [n, 1, 28, 28]; scale pixels to [0, 1]).
  A 3-axis array [n, height, width] is read as one channel. Read by the checked reader
  of bmdsl.bind.datasets (regular file, size limit, no pickle).
"""
from __future__ import annotations

import numpy as np

from ..bind.datafile import DataFileError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def digits() -> tuple[dict, None]:
    """({"images", "labels"}, None): all 1797 digits; split them with `split`."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return {"images": d.images[:, None].astype(np.float64) / 16.0,
            "labels": d.target.astype(np.int64)}, None


def read_images(path) -> tuple[dict, dict | None]:
    """(train, test or None), each {"images" [n, ch, h, w], "labels" [n]}."""
    from ..bind.datasets import load_data
    arrays = load_data(path)
    unknown = sorted(set(arrays) - set(KEYS))
    if "x_train" not in arrays or "y_train" not in arrays or unknown:
        raise DataFileError(path, f"a layerwise data file holds {', '.join(KEYS)} (the test "
                            f"pair optional); found {', '.join(sorted(arrays)) or 'nothing'}",
                            hint="numpy.savez(path, x_train=images [n, channels, height, "
                                 "width], y_train=labels [n], x_test=..., y_test=...)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataFileError(path, "x_test and y_test come together (or neither)")
    train = _pair(path, arrays["x_train"], arrays["y_train"], "train")
    test = _pair(path, arrays["x_test"], arrays["y_test"], "test") \
        if "x_test" in arrays else None
    if test is not None and test["images"].shape[1:] != train["images"].shape[1:]:
        raise DataFileError(path, f"x_test images are {list(test['images'].shape[1:])}, "
                            f"x_train {list(train['images'].shape[1:])}; they must agree")
    return train, test


def _pair(path, x, y, part) -> dict:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataFileError(path, f"x_{part} has {x.ndim} axes {list(x.shape)}; images are "
                            f"[n, channels, height, width]",
                            hint="for [n, height, width, channels] use x.transpose(0, 3, 1, 2)")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataFileError(path, f"y_{part} has shape {list(y.shape)}; it must be one class "
                            f"label per image: [{x.shape[0]}]")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataFileError(path, f"x_{part} or y_{part} holds NaN or inf")
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise DataFileError(path, f"y_{part} must hold whole class labels 0, 1, ..., c-1")
    return {"images": x, "labels": y.astype(np.int64)}


def split(data: dict, fraction: float, seed: int = 0) -> tuple[dict, dict]:
    """A seeded split: round(fraction n) test images (numpy default_rng(seed))."""
    n = data["labels"].shape[0]
    n_test = int(round(fraction * n))
    order = np.random.default_rng(seed).permutation(n)
    test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
    take = lambda idx: {k: v[idx] for k, v in data.items()}  # noqa: E731
    return take(train_idx), take(test_idx)


def one_hot(labels, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]
