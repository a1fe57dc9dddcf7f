"""Bounds on the D-norm (Sahiner et al. 2024, eq. (15)) and its dual for the NP-hard pairs
(l2, linf), (linf, l2), (linf, linf) (docs/theory.md sec. 4): closed-form and SDP upper
bounds on ||G||_D*, and a CVXPY bracket (lower, upper) of ||Z||_D. Each bound states why
it holds; `bmdsl.derive.dnorm` calls these when enumeration is too large.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..atoms.conic import DEFAULT_SOLVER
from ..atoms.pairs import NormExpression, NormPair

__all__ = ["sdp_maxquad", "cheap_upper", "sdp_upper", "d_norm_cvxpy_bounds"]


def sdp_maxquad(M: np.ndarray) -> float:
    """Upper bound on max_{x in {+-1}^k} x^T M x by the SDP relaxation max tr(MW), diag W=1,
    W PSD, solved in its dual form min sum(y) s.t. Diag(y) >= M.  The solver's y is then
    repaired: for ANY y, tr(MW) <= sum(y) + k lambda_max(M - Diag y) when diag W = 1, so
    the returned number is a valid bound however inaccurate the solve was."""
    import cvxpy as cp
    k = M.shape[0]
    y = cp.Variable(k)
    prob = cp.Problem(cp.Minimize(cp.sum(y)), [cp.diag(y) - M >> 0])
    try:
        with warnings.catch_warnings():   # accuracy does not matter: y is repaired below
            warnings.simplefilter("ignore")
            prob.solve(solver=DEFAULT_SOLVER)
        yv = y.value if y.value is not None else np.zeros(k)
    except cp.SolverError:
        yv = np.zeros(k)  # y = 0 still yields the (looser) valid bound k lambda_max(M)
    return float(np.sum(yv) + k * np.linalg.eigvalsh(M - np.diag(yv))[-1])


def cheap_upper(G: np.ndarray, C: str, R: str) -> float:
    """Closed-form upper bounds for hard pairs; each term has a one-line reason."""
    p, q = G.shape
    smax = np.linalg.norm(G, 2) if G.size else 0.0
    cols, rows = np.linalg.norm(G, axis=0).sum(), np.linalg.norm(G, axis=1).sum()
    if (C, R) == ("l2", "linf"):   # B_inf in sqrt(q) B_2;  ||Gs||_2 <= sum_j |s_j| ||g_j||
        return float(min(np.sqrt(q) * smax, cols))
    if (C, R) == ("linf", "l2"):   # B_inf in sqrt(p) B_2;  ||G^T s||_2 <= sum_i ||row_i||
        return float(min(np.sqrt(p) * smax, rows))
    # (linf, linf): both inclusions; |s^T G t| <= sum |G_ij|; ||x||_1 <= sqrt(q) ||x||_2.
    return float(min(np.sqrt(p * q) * smax, np.abs(G).sum(), np.sqrt(q) * rows,
                     np.sqrt(p) * cols))


def sdp_upper(G: np.ndarray, C: str, R: str) -> float:
    if (C, R) == ("l2", "linf"):   # max_s ||G s||_2^2 = max_s s^T (G^T G) s
        return float(np.sqrt(max(sdp_maxquad(G.T @ G), 0.0)))
    if (C, R) == ("linf", "l2"):
        return float(np.sqrt(max(sdp_maxquad(G @ G.T), 0.0)))
    p, q = G.shape                 # s^T G t = x^T [[0, G/2], [G^T/2, 0]] x with x = (s, t)
    M = np.zeros((p + q, p + q))
    M[:p, p:], M[p:, :p] = G / 2, G.T / 2
    return float(max(sdp_maxquad(M), 0.0))


def d_norm_cvxpy_bounds(Z, C: str, R: str, *, lower: str = "auto",
                        sdp_cap: int = 60) -> tuple[NormExpression, NormExpression]:
    """(lower, upper) convex expressions bracketing ||Z||_D for hard pairs (any size);
    for tractable pairs both are the exact expression."""
    from ..kernel.pairforms import dnorm_cvxpy_bounds   # cvxpy is imported on demand
    NormPair(C, R)                                      # KeyError naming accepted norms
    return dnorm_cvxpy_bounds(Z, C, R, lower == "sdp" or (lower == "auto" and
                                                          sum(Z.shape) <= sdp_cap))
