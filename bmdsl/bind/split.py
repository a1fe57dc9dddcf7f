"""A seeded train/test split of a model's data along its sample axis.

    train, test = split_data(model, data, fraction=0.2, seed=0)

The sample axis is the target's first axis (n); every data tensor that declares n is cut
along it with the same permutation (numpy.random.default_rng(seed)); tensors without n
(e.g. given gates) go to both parts; a tensor with n twice (a graph S[n, n]) is refused.
The test part has round(fraction * n) samples.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import BmdslError, DataError


def split_data(model, data: dict, fraction: float, seed: int = 0) -> tuple[dict, dict]:
    axes = sample_axes(model, data)
    n = np.shape(data[model.target.name])[axes[model.target.name]]
    test_idx, train_idx = split_indices(n, fraction, seed)
    n_dim = model.target.dims[0]
    train, test = dict(data), dict(data)
    for name, axis in axes.items():
        arr = np.asarray(data[name])
        if arr.ndim <= axis or arr.shape[axis] != n:
            raise DataError(f"'{name}' has {arr.shape[axis] if arr.ndim > axis else 'no'} "
                            f"samples on its axis {axis} ({n_dim}), the target {n}")
        train[name] = np.take(arr, train_idx, axis=axis)
        test[name] = np.take(arr, test_idx, axis=axis)
    return train, test


def split_indices(n: int, fraction: float, seed: int = 0):
    """(test rows, training rows) of n samples, each sorted: the first round(fraction n)
    of numpy.random.default_rng(seed).permutation(n) are the test rows."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
            not math.isfinite(fraction) or not 0 < fraction < 1:
        raise BmdslError(f"the test fraction must be a number strictly between 0 and 1, not "
                         f"{fraction!r}")
    n_test = int(round(fraction * n))
    if n_test < 1 or n_test > n - 1:
        raise BmdslError(f"a test fraction of {fraction:g} of {n} samples leaves "
                         f"{n_test} test and {n - n_test} training samples; both need at "
                         f"least one")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_test]), np.sort(order[n_test:])


def sample_axes(model, data) -> dict:
    """NAME -> the sample axis of each tensor of `data` that has one (names given: every
    model tensor); a tensor with it twice is refused (a split cannot cut it)."""
    n_dim = model.target.dims[0]
    axes = {}
    for t in (*model.inputs, model.target):
        if t.dims.count(n_dim) > 1:
            raise BmdslError(f"'{t.name}' has the sample axis {n_dim} {t.dims.count(n_dim)} "
                             f"times (samples interact, as in a graph): a random split "
                             f"cannot cut it", hint="give held-out data with --test-data")
        if t.name in data and n_dim in t.dims:
            axes[t.name] = t.dims.index(n_dim)
    if model.target.name not in axes:
        raise DataError(f"the data lacks the target '{model.target.name}'; a split needs it")
    return axes
