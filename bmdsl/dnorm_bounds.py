"""Bounds on the D-norm (Sahiner et al. 2024, eq. (15)) and its dual for the NP-hard pairs
(l2, linf), (linf, l2), (linf, linf) (docs/theory.md sec. 4): closed-form and SDP upper
bounds on ||G||_D*, and a CVXPY bracket (lower, upper) of ||Z||_D. Each bound states why
it holds; `bmdsl.dnorm` calls these when enumeration is too large.
"""
from __future__ import annotations

import warnings

import numpy as np

from .conic import DEFAULT_SOLVER
from .pairs import NormExpression, NormPair

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
    import cvxpy as cp
    pair = NormPair(C, R)
    if pair.tractable:
        ne = NormExpression(pair.rule.form.cvxpy(Z, C, R), "exact", pair.rule.note)
        return ne, ne
    p, q = Z.shape
    nuc = cp.normNuc(Z)
    # ---- upper: a subset of the atoms gives a larger gauge.
    if (C, R) == ("linf", "linf"):
        Z1, Z2, Z3 = (cp.Variable((p, q)) for _ in range(3))
        up = NormExpression(
            cp.normNuc(Z1) + cp.sum(cp.max(cp.abs(Z2), axis=1))
            + cp.sum(cp.max(cp.abs(Z3), axis=0)),
            "upper", "B_2, B_1 are inside B_inf so (l2,l2), (l1,linf), (linf,l1) atoms are "
            "atoms; the gauge is subadditive, so the infimal convolution of ||.||_*, "
            "sum_i ||row_i||_inf, sum_j ||col_j||_inf is >= ||Z||_D", (Z1 + Z2 + Z3 == Z,))
    else:
        up = NormExpression(nuc, "upper", "B_2 is inside B_inf, so every nuclear-norm atom "
                            "u v^T (||u||_2, ||v||_2 <= 1) is a D-atom: ||Z||_D <= ||Z||_*")
    # ---- lower: any norm N >= ||.||_D* has dual N* <= ||.||_D.
    if lower == "sdp" or (lower == "auto" and p + q <= sdp_cap):
        P, Q = cp.Variable((p, p), symmetric=True), cp.Variable((q, q), symmetric=True)
        phi = {"l2": cp.trace, "linf": lambda X: cp.max(cp.diag(X))}
        lo = NormExpression(
            0.5 * (phi[C](P) + phi[R](Q)), "lower",
            "SDP relaxation: Z = sum t_i u_i v_i^T gives P = sum t_i u_i u_i^T, Q = sum t_i "
            "v_i v_i^T with [[P,Z],[Z^T,Q]] PSD and tr P (l2) / max diag P (linf) <= sum t_i",
            (cp.bmat([[P, Z], [Z.T, Q]]) >> 0,))
        return lo, up
    terms = {("l2", "linf"): [nuc / np.sqrt(q), cp.max(cp.norm(Z, 2, axis=0))],
             ("linf", "l2"): [nuc / np.sqrt(p), cp.max(cp.norm(Z, 2, axis=1))],
             ("linf", "linf"): [nuc / np.sqrt(p * q), cp.max(cp.abs(Z)),
                                cp.max(cp.norm(Z, 2, axis=1)) / np.sqrt(q),
                                cp.max(cp.norm(Z, 2, axis=0)) / np.sqrt(p)]}[(C, R)]
    lo = NormExpression(cp.maximum(*terms) if len(terms) > 1 else terms[0], "lower",
                        "duals of the closed-form upper bounds on ||G||_D* (B_inf in sqrt(k) "
                        "B_2; triangle inequality over rows/columns); each is <= ||Z||_D")
    return lo, up
