"""Units of a recovered network as stacked BM factors U [P, m, *w1], V [P, m, *w2].

`bmdsl.cvx.recover` returns units (u_r, v_r) each gated by a pattern k_r; `certify` wants
them grouped by pattern, m per pattern, zero-padded (zero units change neither the
prediction nor the regularizer, and they are stationary).
"""
from __future__ import annotations

import numpy as np

from ..core.errors import DataError


def stack_units(bound, units, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(np.asarray(units.pattern, dtype=np.int64), minlength=bound.P)
    need = int(counts.max()) if counts.size else 0
    m = max(need, 1) if m is None else m
    if m < need:
        raise DataError(f"pattern {int(np.argmax(counts))} has {need} units, more than m = {m}")
    U = np.zeros((bound.P, m) + bound.w1_shape)
    V = np.zeros((bound.P, m) + bound.w2_shape)
    slot = np.zeros(bound.P, dtype=np.int64)
    for u, v, k in zip(units.first, units.second, units.pattern):
        U[k, slot[k]], V[k, slot[k]] = u, v
        slot[k] += 1
    return U, V
