"""The D-norm of Sahiner et al. 2024, eq. (15), its dual, and the ReLU-cone variant.

For p x q matrices (p = size of w1, q = size of w2) and vector norms C, R:

    ||G||_D* = max_{||u||_C<=1, ||v||_R<=1} u^T G v                     (dual of (15))
    ||Z||_D  = gauge of conv{u v^T : u in B_C, v in B_R}                   (eq. (15))

The certificate of Theorem 3.4 (eq. (20)) needs ||G||_D* or an UPPER bound on it; the ReLU
version (text after (20), and (108)) restricts u to the cone {u : K u >= 0}.  Every value
returned here says whether it is exact or an upper bound; a lower bound is only ever
returned by ``cone_dual_norm_lower`` and is labelled ``kind="lower"``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .conic import DEFAULT_SOLVER
from .norms import NORMS, get_norm

__all__ = ["PairRule", "NormPair", "PAIR_TABLE", "DualNormValue", "NormExpression",
           "dual_norm", "d_norm", "d_norm_cvxpy", "d_norm_cvxpy_bounds"]


@dataclass(frozen=True)
class PairRule:
    """How a (C, R) pair is computed. kind: rows | cols | spectral | hard; for hard pairs
    ``enum_sides`` lists the linf side(s) whose ball vertices {+-1}^k may be enumerated.
    ``prox``: the key of the prox of tau ||.||_D and of the factorization of Z into BM
    units (certificates/prox.py in numpy, trainer/runtime/dprox.py in torch), None where
    there is no cheap prox (the solvers that need one then do not apply)."""
    kind: str
    enum_sides: tuple = ()
    note: str = ""
    prox: Optional[str] = None


_ROWS = PairRule("rows", prox="rows", note="C = l1: ||G||_D* = max_i ||row_i G||_R*, "
                              "||Z||_D = sum_i ||row_i Z||_R")
_COLS = PairRule("cols", prox="cols", note="R = l1: ||G||_D* = max_j ||col_j G||_C*, "
                              "||Z||_D = sum_j ||col_j Z||_C")
# The single classification table (docs/theory.md sec. 4).  (l1, l1) uses rows: max |G_ij|.
PAIR_TABLE: dict[tuple[str, str], PairRule] = {
    ("l1", "l1"): _ROWS, ("l1", "l2"): _ROWS, ("l1", "linf"): _ROWS,
    ("l2", "l1"): _COLS, ("linf", "l1"): _COLS,
    ("l2", "l2"): PairRule("spectral", note="sigma_max(G) / nuclear norm ||Z||_*",
                           prox="spectral"),
    ("l2", "linf"): PairRule("hard", ("R",), "max_{s in {+-1}^q} ||G s||_2 (NP-hard)"),
    ("linf", "l2"): PairRule("hard", ("C",), "max_{s in {+-1}^p} ||G^T s||_2 (NP-hard)"),
    ("linf", "linf"): PairRule("hard", ("C", "R"), "||G||_{inf->1} (NP-hard)"),
}


@dataclass(frozen=True)
class NormPair:
    C: str
    R: str

    def __post_init__(self):
        get_norm(self.C), get_norm(self.R)  # KeyError listing the accepted names

    @property
    def rule(self) -> PairRule:
        return PAIR_TABLE[(self.C, self.R)]

    @property
    def tractable(self) -> bool:
        return self.rule.kind != "hard"

    def enum_side(self, p: int, q: int) -> tuple[str, int]:
        """The linf side to enumerate (the smaller one for (linf, linf)) and its dimension."""
        sides = [(s, p if s == "C" else q) for s in self.rule.enum_sides]
        return min(sides, key=lambda t: t[1])


@dataclass(frozen=True)
class DualNormValue:
    """value with kind "exact" | "upper" ("lower" only from cone_dual_norm_lower); u, v
    attain u^T G v == value (u in B_C, v in B_R, K u >= 0 for cones) when kind is exact."""
    value: float
    kind: str
    method: str
    u: Optional[np.ndarray] = None
    v: Optional[np.ndarray] = None


@dataclass(frozen=True)
class NormExpression:
    """A convex cvxpy expression for ||Z||_D; direction "exact" | "lower" | "upper" means
    (its minimum over the auxiliary variables in ``constraints``) is = / <= / >= ||Z||_D."""
    expr: Any
    direction: str
    note: str
    constraints: tuple = ()


def _sign_vectors(k: int) -> np.ndarray:
    # Vertices of the linf ball up to a global sign: s and -s give the same |value|.
    bits = (np.arange(2 ** (k - 1))[:, None] >> np.arange(k - 1)[None, :]) & 1
    return np.hstack([np.ones((2 ** (k - 1), 1)), 1.0 - 2.0 * bits])


def _sdp_maxquad(M: np.ndarray) -> float:
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


def _cheap_upper(G: np.ndarray, C: str, R: str) -> float:
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


def _sdp_upper(G: np.ndarray, C: str, R: str) -> float:
    if (C, R) == ("l2", "linf"):   # max_s ||G s||_2^2 = max_s s^T (G^T G) s
        return float(np.sqrt(max(_sdp_maxquad(G.T @ G), 0.0)))
    if (C, R) == ("linf", "l2"):
        return float(np.sqrt(max(_sdp_maxquad(G @ G.T), 0.0)))
    p, q = G.shape                 # s^T G t = x^T [[0, G/2], [G^T/2, 0]] x with x = (s, t)
    M = np.zeros((p + q, p + q))
    M[:p, p:], M[p:, :p] = G / 2, G.T / 2
    return float(max(_sdp_maxquad(M), 0.0))


def dual_norm(G, C: str, R: str, *, method: str = "auto", enum_cap: int = 12,
              sdp_cap: int = 48) -> DualNormValue:
    """||G||_D* = max_{u in B_C, v in B_R} u^T G v (dual of eq. (15); used in eq. (20)).

    method: "auto" (closed form if tractable; else enumeration if the linf side has
    dimension k <= enum_cap, else the SDP bound if its size <= sdp_cap, else the cheap
    bound), "enum" (force enumeration), "sdp" or "bound" (force that upper bound)."""
    G = np.atleast_2d(np.asarray(G, dtype=float))
    pair = NormPair(C, R)
    Cn, Rn = NORMS[C], NORMS[R]
    p, q = G.shape
    kind = pair.rule.kind
    if method not in ("auto", "enum", "sdp", "bound"):
        raise ValueError(f"unknown method {method!r}; use auto, enum, sdp or bound")
    if kind == "rows":
        vals = Rn.dual_norm.numpy(G, axis=1)
        i = int(np.argmax(vals))
        return DualNormValue(float(vals[i]), "exact", "rows", np.eye(p)[i],
                             Rn.ball_argmax(G[i]))
    if kind == "cols":
        vals = Cn.dual_norm.numpy(G, axis=0)
        j = int(np.argmax(vals))
        return DualNormValue(float(vals[j]), "exact", "cols", Cn.ball_argmax(G[:, j]),
                             np.eye(q)[j])
    if kind == "spectral":
        U, s, Vt = np.linalg.svd(G)
        return DualNormValue(float(s[0]), "exact", "spectral", U[:, 0], Vt[0])
    side, k = pair.enum_side(p, q)
    if method == "enum" and k > 24:
        raise ValueError(f"refusing to enumerate 2^{k - 1} sign vectors; use sdp or bound")
    if method == "enum" or (method == "auto" and k <= enum_cap):
        S = _sign_vectors(k)
        if side == "R":            # v = s;  max_u u^T G s = ||G s||_C*
            vals = Cn.dual_norm.numpy(G @ S.T, axis=0)
            b = int(np.argmax(vals))
            return DualNormValue(float(vals[b]), "exact", "enum", Cn.ball_argmax(G @ S[b]),
                                 S[b])
        vals = Rn.dual_norm.numpy(G.T @ S.T, axis=0)   # u = s;  max_v s^T G v = ||G^T s||_R*
        b = int(np.argmax(vals))
        return DualNormValue(float(vals[b]), "exact", "enum", S[b], Rn.ball_argmax(G.T @ S[b]))
    cheap = _cheap_upper(G, C, R)
    size = p + q if (C, R) == ("linf", "linf") else (q if C == "l2" else p)
    if method == "sdp" or (method == "auto" and size <= sdp_cap):
        sdp = _sdp_upper(G, C, R)   # both are upper bounds: keep the smaller
        return DualNormValue(min(sdp, cheap), "upper", "sdp" if sdp <= cheap else "bound")
    return DualNormValue(cheap, "upper", "bound")


def _enum_cvxpy(Z, pair: NormPair, k: int, side: str):
    """Exact lifted form: conv{u v^T} = conv{u s^T : u in B_C, s in {+-1}^q} when R = linf
    (v is a convex combination of sign vectors), so ||Z||_D = min sum_s ||a_s||_C over
    Z = sum_s a_s s^T (symmetric for the C side)."""
    import cvxpy as cp
    S = _sign_vectors(k)
    if side == "R":
        A = cp.Variable((Z.shape[0], S.shape[0]))
        return cp.sum(NORMS[pair.C].cvxpy(A, axis=0)), [A @ S == Z]
    B = cp.Variable((S.shape[0], Z.shape[1]))
    return cp.sum(NORMS[pair.R].cvxpy(B, axis=1)), [S.T @ B == Z]


def _exact_cvxpy(Z, pair: NormPair, enum_cap: int) -> Optional[NormExpression]:
    import cvxpy as cp
    kind = pair.rule.kind
    if kind == "rows":
        return NormExpression(cp.sum(NORMS[pair.R].cvxpy(Z, axis=1)), "exact", pair.rule.note)
    if kind == "cols":
        return NormExpression(cp.sum(NORMS[pair.C].cvxpy(Z, axis=0)), "exact", pair.rule.note)
    if kind == "spectral":
        return NormExpression(cp.normNuc(Z), "exact", pair.rule.note)
    side, k = pair.enum_side(*Z.shape)
    if k > enum_cap:
        return None
    expr, cons = _enum_cvxpy(Z, pair, k, side)
    return NormExpression(expr, "exact", f"enumeration of {2 ** (k - 1)} sign vectors "
                          f"of the {side} side; exact after minimizing over the auxiliary "
                          "variables in `constraints`", tuple(cons))


def d_norm(Z, C: str, R: str, *, enum_cap: int = 12) -> float:
    """||Z||_D of eq. (15) for tractable pairs (closed form) and enumerable hard pairs (SOCP)."""
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    pair = NormPair(C, R)
    kind = pair.rule.kind
    if kind == "rows":
        return float(NORMS[R].numpy(Z, axis=1).sum())
    if kind == "cols":
        return float(NORMS[C].numpy(Z, axis=0).sum())
    if kind == "spectral":
        return float(np.linalg.svd(Z, compute_uv=False).sum())
    import cvxpy as cp   # only here: importing it costs ~1.7 s (measured), the closed forms
    ne = _exact_cvxpy(Z, pair, enum_cap)   # above run in every certificate
    if ne is None:
        raise ValueError(f"||Z||_D for (C, R) = ({C}, {R}) is NP-hard and the linf side has "
                         f"dimension {pair.enum_side(*Z.shape)[1]} > enum_cap={enum_cap}; use "
                         "d_norm_cvxpy_bounds for a lower/upper bracket or raise enum_cap")
    prob = cp.Problem(cp.Minimize(ne.expr), list(ne.constraints))
    prob.solve(solver=DEFAULT_SOLVER)
    return float(prob.value)


def d_norm_cvxpy(Z, C: str, R: str, *, enum_cap: int = 12,
                 allow_bound: Optional[str] = None) -> NormExpression:
    """Convex cvxpy form of ||Z||_D (eq. (15)); exact for tractable and enumerable pairs.
    Beyond the cap raises ValueError unless allow_bound="lower"|"upper" picks that side of
    ``d_norm_cvxpy_bounds`` (so a relaxation is never emitted silently)."""
    pair = NormPair(C, R)
    ne = _exact_cvxpy(Z, pair, enum_cap)
    if ne is not None:
        return ne
    if allow_bound not in ("lower", "upper"):
        raise ValueError(f"no exact tractable form of ||Z||_D for ({C}, {R}) at this size "
                         f"(enum_cap={enum_cap}); pass allow_bound='lower' or 'upper' or "
                         "call d_norm_cvxpy_bounds")
    lo, up = d_norm_cvxpy_bounds(Z, C, R)
    return lo if allow_bound == "lower" else up


def d_norm_cvxpy_bounds(Z, C: str, R: str, *, lower: str = "auto",
                        sdp_cap: int = 60) -> tuple[NormExpression, NormExpression]:
    """(lower, upper) convex expressions bracketing ||Z||_D for hard pairs (any size);
    for tractable pairs both are the exact expression."""
    from .kernel.brackets import hard_pair_brackets   # cvxpy is imported on demand
    pair = NormPair(C, R)
    if pair.tractable:
        ne = _exact_cvxpy(Z, pair, 0)
        return ne, ne
    lo, up = hard_pair_brackets(Z, C, R, lower == "sdp" or (
        lower == "auto" and sum(Z.shape) <= sdp_cap))
    return NormExpression(lo[0], "lower", *lo[1:]), NormExpression(up[0], "upper", *up[1:])
