"""The D-norm of Sahiner et al. 2024, eq. (15), its dual, and the ReLU-cone variant.

For p x q matrices (p = size of w1, q = size of w2) and vector norms C, R:

    ||G||_D* = max_{||u||_C<=1, ||v||_R<=1} u^T G v                     (dual of (15))
    ||Z||_D  = gauge of conv{u v^T : u in B_C, v in B_R}                   (eq. (15))

The certificate of Theorem 3.4 (eq. (20)) needs ||G||_D* or an UPPER bound on it; the ReLU
version (text after (20), and (108)) restricts u to the cone {u : K u >= 0}.  Every value
returned here says whether it is exact or an upper bound; a lower bound is only ever
returned by ``cone_dual_norm_lower`` and is labelled ``exactness="lower"``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..atoms.conic import DEFAULT_SOLVER
from ..atoms.norms import NORMS
from ..atoms.pairs import PAIR_TABLE, DualNormValue, NormExpression, NormPair, PairRule
from ..kernel.pairforms import dnorm_cvxpy, sign_vectors

__all__ = ["PairRule", "NormPair", "PAIR_TABLE", "DualNormValue", "NormExpression",
           "dual_norm", "d_norm", "d_norm_cvxpy", "d_norm_cvxpy_bounds", "sign_vectors"]


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
    if method not in ("auto", "enum", "sdp", "bound"):
        raise ValueError(f"unknown method {method!r}; use auto, enum, sdp or bound")
    if pair.tractable:
        return pair.rule.form.dual(G, C, R)
    side, k = pair.enum_side(p, q)
    if method == "enum" and k > 24:
        raise ValueError(f"refusing to enumerate 2^{k - 1} sign vectors; use sdp or bound")
    if method == "enum" or (method == "auto" and k <= enum_cap):
        S = sign_vectors(k)
        if side == "R":            # v = s;  max_u u^T G s = ||G s||_C*
            vals = Cn.dual_norm.numpy(G @ S.T, axis=0)
            b = int(np.argmax(vals))
            return DualNormValue(float(vals[b]), "exact", "enum", Cn.ball_argmax(G @ S[b]),
                                 S[b])
        vals = Rn.dual_norm.numpy(G.T @ S.T, axis=0)   # u = s;  max_v s^T G v = ||G^T s||_R*
        b = int(np.argmax(vals))
        return DualNormValue(float(vals[b]), "exact", "enum", S[b], Rn.ball_argmax(G.T @ S[b]))
    from .dnorm_bounds import cheap_upper, sdp_upper
    cheap = cheap_upper(G, C, R)
    size = p + q if (C, R) == ("linf", "linf") else (q if C == "l2" else p)
    if method == "sdp" or (method == "auto" and size <= sdp_cap):
        sdp = sdp_upper(G, C, R)   # both are upper bounds: keep the smaller
        return DualNormValue(min(sdp, cheap), "upper", "sdp" if sdp <= cheap else "bound")
    return DualNormValue(cheap, "upper", "bound")


def _exact_cvxpy(Z, pair: NormPair, enum_cap: int) -> Optional[NormExpression]:
    return dnorm_cvxpy(Z, pair.C, pair.R, enum_cap)   # the kernel's form (pairforms.py)


def d_norm(Z, C: str, R: str, *, enum_cap: int = 12) -> float:
    """||Z||_D of eq. (15) for tractable pairs (closed form) and enumerable hard pairs (SOCP)."""
    Z = np.atleast_2d(np.asarray(Z, dtype=float))
    pair = NormPair(C, R)
    if pair.tractable:
        return pair.rule.form.value(Z, C, R)
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
    from .dnorm_bounds import d_norm_cvxpy_bounds
    lo, up = d_norm_cvxpy_bounds(Z, C, R)
    return lo if allow_bound == "lower" else up


def d_norm_cvxpy_bounds(Z, C: str, R: str, **options):
    """(lower, upper) convex expressions bracketing ||Z||_D (dnorm_bounds.py)."""
    from .dnorm_bounds import d_norm_cvxpy_bounds as bounds
    return bounds(Z, C, R, **options)
