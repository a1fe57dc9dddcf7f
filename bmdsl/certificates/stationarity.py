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
from .conennls import cone_nnls
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


def _cone_multipliers(r, M, signs, active, samples=None):
    """For each pattern k and unit j: mu >= 0 on the active rows minimizing
    ||r_kj - K_k^T mu||, K_k = diag(signs_k) M (exact NNLS, all units at once, on this
    process's rows: conennls.py). Returns (mu [P, m, rows], K^T mu [P, m, p])."""
    P, m, p = r.shape
    w, mu = cone_nnls(M, np.repeat(signs, m, axis=0), -r.reshape(P * m, p), samples,
                      allowed=active.reshape(P * m, -1))
    return mu.reshape(active.shape), (w + r.reshape(P * m, p)).reshape(P, m, p)


def bm_residual(bound, U, V, G, samples=None) -> tuple[float, str]:
    """(relative residual, kind) at the BM point (U, V), G = [P, p, q] the G_k; the cone
    rows are those of `samples.local`, reduced over the processes (samples.py)."""
    P, m = bound.P, U.shape[1]
    u, v = np.asarray(U).reshape(P, m, -1), np.asarray(V).reshape(P, m, -1)
    aU = np.einsum("kjq,kpq->kjp", v, G)      # G_k v_kj
    aV = np.einsum("kjp,kpq->kjq", u, G)      # G_k^T u_kj
    rU = _reg_subgradient(bound.C, u, aU, bound.beta)
    rV = _reg_subgradient(bound.R, v, aV, bound.beta)
    tU, tV = aU + rU, aV + rV
    kind, extra = "BM gradient (min-norm subgradient)", 0.0
    if bound.cone:
        local = bound if samples is None else samples.local
        M, signs = cone_rows(local)
        slack = local.cone_slack(U).reshape(P, m, -1)
        scale = np.linalg.norm(M, axis=1)[None, None] * np.linalg.norm(u, axis=-1)[..., None]
        active = slack <= ACTIVE_TOL * scale
        mu, KTmu = _cone_multipliers(tU, M, signs, active, samples)
        tU = tU - KTmu
        # complementarity <mu, slack> over the units, in gradient units (divided by ||u||)
        unorm = np.linalg.norm(u, axis=-1)
        inner = np.sum(mu * slack, axis=-1)
        inner = inner if samples is None else np.asarray(samples.total(inner))
        comp = np.abs(inner) / np.where(unorm > 0, unorm, 1.0)
        extra = float(np.linalg.norm(comp))
        kind = "KKT of the cone-constrained BM (19) (multipliers on near-active rows)"
    num = float(np.sqrt(np.sum(tU ** 2) + np.sum(tV ** 2) + extra ** 2))
    den = float(np.sqrt(np.sum(aU ** 2) + np.sum(aV ** 2)) +
                np.sqrt(np.sum(rU ** 2) + np.sum(rV ** 2)))
    return (0.0 if num == 0.0 else num / max(den, 1e-300)), kind


def cone_violation(bound, U, V, samples=None) -> float:
    """Violation of the ReLU cones (19), measured where it matters, in the network: unit
    (u, v) differs from a ReLU unit by max(-(K_k u)_i, 0) ||v||_2 on row i, which we divide
    by ||M_i|| max_kj ||u_kj|| ||v_kj|| (the largest unit).  Scale-invariant, and units at
    solver-noise scale (recovered as a / sqrt(||a||)) do not dominate it.  0 when the cones
    hold and without cones. The rows are those of `samples.local`, the largest over the
    processes (samples.py)."""
    if not bound.cone:
        return 0.0
    local = bound if samples is None else samples.local
    P, m = bound.P, U.shape[1]
    M, _ = cone_rows(local)
    nu = np.linalg.norm(np.asarray(U).reshape(P, m, -1), axis=-1)
    nv = np.linalg.norm(np.asarray(V).reshape(P, m, -1), axis=-1)
    top = float((nu * nv).max())
    if top == 0.0:
        return 0.0
    rows = np.linalg.norm(M, axis=1)
    slack = local.cone_slack(U).reshape(P, m, -1)
    rel = -slack * nv[..., None] / (np.where(rows > 0, rows, 1.0) * top)
    most = float(rel.max())
    return float(max(most if samples is None else samples.most(most), 0.0))
