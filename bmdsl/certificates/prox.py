"""Proximal maps of tau ||.||_D for the tractable (C, R) pairs, batched over patterns.

Used only to refine a primal point cheaply (proximal gradient on the convex program (16))
so that grad F at the refined point gives a better dual candidate; a wrong prox would
cost tightness, never validity, because every dual candidate is scaled by its exactly
computed dual norms.  One entry per `prox` key of `bmdsl.atoms.pairs.PAIR_TABLE`'s entries (the same keys as the
torch versions in trainer/runtime/dprox.py, which also factor Z into BM units):

* spectral (l2, l2): singular value soft-thresholding (prox of the nuclear norm);
* rows (C = l1):  ||Z||_D = sum_i ||row_i||_R, so the prox acts row by row;
* cols (R = l1):  ||Z||_D = sum_j ||col_j||_C, column by column;
* hard pairs and the ReLU cones have no cheap prox: no refinement (None).

The prox of a vector norm N is Moreau's identity x - tau P(x / tau), P the projection
onto the unit ball of the dual norm N*.
"""
from __future__ import annotations

import numpy as np

from ..derive.dnorm import NormPair
from ..atoms.norms import NORMS


def project_simplex(b: np.ndarray, radius: float | np.ndarray = 1.0) -> np.ndarray:
    """Euclidean projection of each row (last axis) onto {x >= 0, sum x = radius}
    (sort-based: x = max(b - tau, 0) with tau from the largest prefix that stays positive).
    Rows are shifted to max 0 first (the projection is shift-invariant): at |b| ~ 1e16 the
    unshifted prefix test b_(1) - (b_(1) - radius) rounds to 0 and tau to 0/0."""
    b = np.asarray(b, dtype=float)
    b = b - b.max(axis=-1, keepdims=True)
    radius = np.broadcast_to(np.asarray(radius, dtype=float), b.shape[:-1])
    srt = -np.sort(-b, axis=-1)
    css = np.cumsum(srt, axis=-1) - radius[..., None]
    idx = np.arange(1, b.shape[-1] + 1)
    rho = np.sum(srt - css / idx > 0, axis=-1, keepdims=True)   # >= 1 always
    tau = np.take_along_axis(css, rho - 1, axis=-1) / rho
    return np.maximum(b - tau, 0.0)


def _project_l1_ball(x: np.ndarray) -> np.ndarray:
    inside = np.abs(x).sum(axis=-1, keepdims=True) <= 1.0
    return np.where(inside, x, np.sign(x) * project_simplex(np.abs(x), 1.0))


# Projection onto the unit ball of a norm, by the norm's name (rows on the last axis).
BALL_PROJECTION = {
    "l2": lambda x: x / np.maximum(1.0, np.linalg.norm(x, axis=-1, keepdims=True)),
    "linf": lambda x: np.clip(x, -1.0, 1.0),
    "l1": _project_l1_ball,
}


def prox_vector_norm(x: np.ndarray, name: str, tau: float) -> np.ndarray:
    """prox of tau ||.||_name on each row (last axis): x - tau P_{B_*}(x / tau)."""
    if tau <= 0:
        return x
    return x - tau * BALL_PROJECTION[NORMS[name].dual](x / tau)


def _svt(Z: np.ndarray, tau: float) -> np.ndarray:
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    return np.einsum("kpr,kr,krq->kpq", U, np.maximum(s - tau, 0.0), Vt)


_PROX = {
    "spectral": lambda Z, tau, C, R: _svt(Z, tau),
    "rows": lambda Z, tau, C, R: prox_vector_norm(Z, R, tau),
    "cols": lambda Z, tau, C, R: np.swapaxes(prox_vector_norm(np.swapaxes(Z, 1, 2), C, tau), 1, 2),
}


def d_norm_prox(C: str, R: str):
    """(Z [P, p, q], tau) -> prox_{tau sum_k ||Z_k||_D}(Z), or None for a pair without a
    cheap prox (its PAIR_TABLE entry's `prox` is None)."""
    key = NormPair(C, R).rule.prox
    if key is None:
        return None
    rule = _PROX[key]
    return lambda Z, tau: rule(Z, tau, C, R)
