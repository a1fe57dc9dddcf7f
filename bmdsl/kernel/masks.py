"""Activation patterns D_k = 1[A(h_k) >= 0] of sampled gates (Sahiner et al. 2024,
eq. (3)): the gates and the de-duplication, shared so every runner sees the same masks."""
import numpy as np


def sample_gates(w1_shape, count, seed):
    """`count` N(0, 1) gates [count, *w1_shape] from numpy.random.default_rng(seed) in one
    standard_normal call (a larger count extends a smaller one)."""
    return np.random.default_rng(seed).standard_normal((int(count),) + tuple(w1_shape))


def unique_masks(masks):
    """(masks[kept], kept): the first occurrence of each distinct mask, in order; the
    all-zero mask is kept."""
    masks = np.asarray(masks, dtype=np.float64)
    if masks.shape[0] == 0:
        return masks, np.zeros(0, dtype=np.int64)
    packed = np.packbits(masks.reshape(masks.shape[0], -1) > 0.5, axis=1)
    first = {}
    for i, row in enumerate(packed):              # hashing rows beats np.unique(axis=0)
        first.setdefault(row.tobytes(), i)
    kept = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    return masks[kept], kept
