"""The convex objective at a lifted point: F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||_D (16).

||Z_k||_D is computed exactly where that is tractable:
* no cone: `bmdsl.derive.dnorm.d_norm` (closed form; an SOCP over sign vectors for enumerable
  NP-hard pairs);
* ReLU cone with q = 1 or R = l1: every extreme point of B_R is a signed basis vector, so
  the atoms are u (+-e_j)^T with u in K_k and ||Z_k||_{D,K} = sum_j min ||a_j||_C + ||b_j||_C
  over z_j = a_j - b_j, K_k a_j >= 0, K_k b_j >= 0 (Pilanci & Ergen 2020, eq. (5); a small SOCP);
* otherwise (the constrained nuclear norm (4), or an NP-hard pair beyond enumeration) it
  is not tractable: certify the BM factors instead, whose regularizer is an upper bound.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..atoms.conic import DEFAULT_SOLVER
from ..core.errors import BmdslError


def _cone_gauge(Z: np.ndarray, K: np.ndarray, C: str) -> float:
    import cvxpy as cp
    from ..atoms.norms import NORMS
    p, q = Z.shape
    A, B = cp.Variable((p, q)), cp.Variable((p, q))
    norm = NORMS[C]
    prob = cp.Problem(cp.Minimize(cp.sum(norm.cvxpy(A, axis=0)) + cp.sum(norm.cvxpy(B, axis=0))),
                      [A - B == Z, K @ A >= 0, K @ B >= 0])
    with warnings.catch_warnings():   # the status is checked (and reported) instead
        warnings.simplefilter("ignore")
        prob.solve(solver=DEFAULT_SOLVER)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise BmdslError(f"the cone-constrained norm of Z_k could not be computed "
                         f"(solver status {prob.status})")
    return float(prob.value)


def regularizer_lifted(bound, Z: np.ndarray) -> tuple[float, str]:
    """(beta sum_k ||Z_k||_D, how it was computed)."""
    from ..derive.dnorm import NormPair, d_norm
    if not bound.cone:
        try:
            total = sum(d_norm(Z[k], bound.C, bound.R) for k in range(bound.P))
        except ValueError as exc:
            raise BmdslError(str(exc), hint="certify the BM factors (U, V) instead: their "
                             "regularizer bounds ||Z||_D for every norm pair") from None
        how = "closed form" if NormPair(bound.C, bound.R).tractable else "SOCP (enumeration)"
        return bound.beta * float(total), how
    if not NormPair(bound.C, bound.R).relu_exact(bound.q):
        raise BmdslError(
            "the ReLU-cone norm of a lifted point with q > 1 is the constrained nuclear norm "
            "(4), which is NP-hard to evaluate",
            hint="certify the BM factors with certify(bound, U, V): their regularizer is an "
                 "upper bound on it")
    from .dualnorms import cone_rows
    M, signs = cone_rows(bound)
    total = sum(_cone_gauge(Z[k], signs[k][:, None] * M, bound.C) for k in range(bound.P))
    return bound.beta * float(total), "SOCP (cone-constrained group norm, Pilanci & Ergen 2020 (5))"


def objective_lifted(bound, Z: np.ndarray) -> tuple[float, str]:
    Z = np.asarray(Z, dtype=float).reshape(bound.P, bound.p, bound.q)
    reg, how = regularizer_lifted(bound, Z)
    return float(bound.loss.value(bound.predict_lifted(Z), bound.Y)) + reg, how
