"""How stationary a BM point is: the hypothesis of Theorem 3.4.

For f(U, V) = F(sum_k L_k(U_k V_k^T)) + (beta/2) sum_kj (||u_kj||_C^2 + ||v_kj||_R^2)
(eq. (14), (18), (19)) the gradient of the loss part is G_k v_kj for u_kj and G_k^T u_kj
for v_kj, G_k = L_k^*(grad F) (appendix A.7).  The regularizer may be non-smooth (C or R in
{l1, linf}); we take the element of its subdifferential that makes the total smallest (the
distance of 0 to the subdifferential of f).  With the ReLU cones K_k u_kj >= 0 (eq. (19))
the residual is the KKT one: the u-gradient minus the best K_k^T mu, mu >= 0 on the
(near-)active rows, plus the complementarity error.

The number reported is RELATIVE: ||residual|| / (||loss part|| + ||regularizer part||),
in [0, 1] up to the cone term; 0 at a stationary point (0/0 := 0, e.g. U = V = 0).
"""
from __future__ import annotations

import numpy as np

from ..atoms.norms import get_norm
from .dualnorms import cone_rows
from .prox import project_simplex

# |x_i| <= ZERO_TOL max|x| counts as a zero (l1) or a tied maximum (linf): an
# epsilon-subdifferential, since iterative solvers never produce exact zeros or ties.
ZERO_TOL = 1e-6
# Cone rows with slack <= ACTIVE_TOL ||M_i|| ||u|| are active (may carry a multiplier).
ACTIVE_TOL = 1e-4


def _sub_l2(x, a, c):
    return c * x


def _sub_l1(x, a, c):
    # d(||x||_1^2 / 2) = ||x||_1 sign(x), any value in [-1, 1] where x_i = 0.
    n1 = np.abs(x).sum(axis=-1, keepdims=True)
    zero = np.abs(x) <= ZERO_TOL * np.abs(x).max(axis=-1, keepdims=True)
    return np.where(zero, np.clip(-a, -c * n1, c * n1), c * n1 * np.sign(x))


def _sub_linf(x, a, c):
    # d(||x||_inf^2 / 2) = m conv{sign(x_i) e_i : |x_i| = m}, m = ||x||_inf; minimize
    # ||a + c m sum_i lam_i s_i e_i|| over the simplex: lam = projection of -s a / (c m).
    m = np.abs(x).max(axis=-1, keepdims=True)
    s = np.where(x >= 0, 1.0, -1.0)
    active = np.abs(x) >= (1.0 - ZERO_TOL) * m
    cm = c * m
    b = -s * a / np.where(cm > 0, cm, 1.0)
    top = np.where(active, b, -np.inf).max(axis=-1, keepdims=True)
    lam = project_simplex(np.where(active, b, top - 2.0))   # inactive rows end at 0
    return np.where(cm > 0, cm * s * lam, 0.0)


# The chosen subgradient of (c/2)||x||_p^2 for each order p, row-wise, given the smooth
# part a; a norm scale ||x||_p (its registry entry's declared form) scales c by scale^2.
REG_SUBGRADIENT = {2.0: _sub_l2, 1.0: _sub_l1, float("inf"): _sub_linf}


def _reg_subgradient(name, x, a, c):
    norm = get_norm(name)
    return REG_SUBGRADIENT[norm.p](x, a, c * norm.scale ** 2)


def nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min ||A x - b||_2 s.t. x >= 0 (Lawson & Hanson 1974, active-set method)."""
    n = A.shape[1]
    x, passive = np.zeros(n), np.zeros(n, dtype=bool)
    if n == 0:
        return x
    tol = 10 * np.finfo(float).eps * max(A.shape) * max(np.abs(A).sum(axis=0).max(), 1e-300)
    for _ in range(3 * n):
        w = A.T @ (b - A @ x)
        if passive.all() or w[~passive].max() <= tol:
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        for _ in range(3 * n):
            s = np.zeros(n)
            s[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if s[passive].min() > 0:
                x = s
                break
            neg = passive & (s <= 0)
            alpha = np.min(x[neg] / np.maximum(x[neg] - s[neg], 1e-300))
            x = x + alpha * (s - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


def _cone_multipliers(r, M, signs, active):
    """For each pattern k and unit j: mu >= 0 on the active rows minimizing
    ||r_kj - K_k^T mu||, K_k = diag(signs_k) M (exact NNLS; active sets are small)."""
    mu = np.zeros(active.shape)
    for k, j in zip(*np.nonzero(active.any(axis=-1))):
        rows = np.flatnonzero(active[k, j])
        KA = signs[k, rows][:, None] * M[rows]
        mu[k, j, rows] = nnls(KA.T, r[k, j])
    return mu, np.einsum("kjn,np->kjp", signs[:, None] * mu, M)


def bm_residual(bound, U, V, G) -> tuple[float, str]:
    """(relative residual, kind) at the BM point (U, V), G = [P, p, q] the G_k."""
    P, m = bound.P, U.shape[1]
    u, v = np.asarray(U).reshape(P, m, -1), np.asarray(V).reshape(P, m, -1)
    aU = np.einsum("kjq,kpq->kjp", v, G)      # G_k v_kj
    aV = np.einsum("kjp,kpq->kjq", u, G)      # G_k^T u_kj
    rU = _reg_subgradient(bound.C, u, aU, bound.beta)
    rV = _reg_subgradient(bound.R, v, aV, bound.beta)
    tU, tV = aU + rU, aV + rV
    kind, extra = "BM gradient (min-norm subgradient)", 0.0
    if bound.cone:
        M, signs = cone_rows(bound)
        slack = bound.cone_slack(U).reshape(P, m, -1)
        scale = np.linalg.norm(M, axis=1)[None, None] * np.linalg.norm(u, axis=-1)[..., None]
        active = slack <= ACTIVE_TOL * scale
        mu, KTmu = _cone_multipliers(tU, M, signs, active)
        tU = tU - KTmu
        # complementarity <mu, slack> over the units, in gradient units (divided by ||u||)
        unorm = np.linalg.norm(u, axis=-1)
        comp = np.abs(np.sum(mu * slack, axis=-1)) / np.where(unorm > 0, unorm, 1.0)
        extra = float(np.linalg.norm(comp))
        kind = "KKT of the cone-constrained BM (19) (multipliers on near-active rows)"
    num = float(np.sqrt(np.sum(tU ** 2) + np.sum(tV ** 2) + extra ** 2))
    den = float(np.sqrt(np.sum(aU ** 2) + np.sum(aV ** 2)) +
                np.sqrt(np.sum(rU ** 2) + np.sum(rV ** 2)))
    return (0.0 if num == 0.0 else num / max(den, 1e-300)), kind


def cone_violation(bound, U, V) -> float:
    """Violation of the ReLU cones (19), measured where it matters, in the network: unit
    (u, v) differs from a ReLU unit by max(-(K_k u)_i, 0) ||v||_2 on row i, which we divide
    by ||M_i|| max_kj ||u_kj|| ||v_kj|| (the largest unit).  Scale-invariant, and units at
    solver-noise scale (recovered as a / sqrt(||a||)) do not dominate it.  0 when the cones
    hold and without cones."""
    if not bound.cone:
        return 0.0
    P, m = bound.P, U.shape[1]
    M, _ = cone_rows(bound)
    nu = np.linalg.norm(np.asarray(U).reshape(P, m, -1), axis=-1)
    nv = np.linalg.norm(np.asarray(V).reshape(P, m, -1), axis=-1)
    top = float((nu * nv).max())
    if top == 0.0:
        return 0.0
    rows = np.linalg.norm(M, axis=1)
    slack = bound.cone_slack(U).reshape(P, m, -1)
    rel = -slack * nv[..., None] / (np.where(rows > 0, rows, 1.0) * top)
    return float(max(rel.max(), 0.0))
