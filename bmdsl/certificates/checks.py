"""Run-time checks of the paper's guarantees at a given BM point.

`bmdsl.derive.theorems.theorems_for` states each hypothesis that depends on the model and sizes
only; here we add what depends on the point: stationarity (Theorem 3.4), the ranks of the
factors (Theorem 3.5, eq. (21); Theorem 3.3's rank-deficient clause; Corollary 3.10,
eq. (27)).  Ranks are numerical: singular values above RANK_TOL times the largest singular
value of all factors of that kind (so a negligible pattern does not count as full rank).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..derive.theorems import theorems_for

RANK_TOL = 1e-6


@dataclass(frozen=True)
class TheoremCheck:
    """status: "certifies global optimum" | "hypothesis holds" | "hypothesis fails" |
    "not applicable" | "undecided"."""
    reference: str
    name: str
    hypothesis: str
    status: str
    detail: str


def _ranks(blocks: np.ndarray) -> np.ndarray:
    """Numerical rank of each matrix in a stack [P, a, b]."""
    s = np.linalg.svd(blocks, compute_uv=False)
    top = float(s.max()) if s.size else 0.0
    return (s > RANK_TOL * top).sum(axis=-1) if top > 0 else np.zeros(len(blocks), int)


def _status(holds) -> str:
    return {True: "hypothesis holds", False: "hypothesis fails", None: "undecided"}[holds]


def check_theorems(bound, U, V, *, stationary: bool, residual: float,
                   thm34_bound: float) -> tuple[TheoremCheck, ...]:
    P, m = bound.P, U.shape[1]
    u = np.asarray(U).reshape(P, m, bound.p).transpose(0, 2, 1)      # U_k: [p, m]
    v = np.asarray(V).reshape(P, m, bound.q).transpose(0, 2, 1)      # V_k: [q, m]
    stat = f"stationarity residual {residual:.2e}"
    out = []
    for th in theorems_for(bound.model, bound.sizes):
        ref = th.reference.split(",")[0]
        if ref == "Theorem 3.3":
            deficient = int((_ranks(np.concatenate([u, v], axis=1)) < m).sum())
            smooth = bound.loss.twice_differentiable
            detail = (f"{th.detail}; any local minimum is global, but local minimality of "
                      f"this point is not verified ({stat}); [U_k; V_k] rank-deficient in "
                      f"{deficient} of {P} patterns")
            if deficient == P and smooth:
                detail += " (a rank-deficient local minimum is global: F is C^2)"
            out.append(TheoremCheck(ref, th.name, th.hypothesis, _status(th.holds), detail))
        elif ref == "Theorem 3.4":
            ok = "holds" if stationary else "fails"
            out.append(TheoremCheck(ref, th.name, th.hypothesis, f"hypothesis {ok}",
                                    f"{stat}; bound (20) = {thm34_bound:.3e}" if stationary
                                    else f"{stat}: not a stationary point, (20) not applicable"))
        elif ref == "Theorem 3.5":
            full = min(bound.p, bound.q)
            ok = (_ranks(u) == full) & (_ranks(v) == full)
            n_ok = int(ok.sum())
            detail = (f"rank(U_k) = rank(V_k) = min(p, q) = {full} in {n_ok} of {P} patterns; "
                      f"{stat}")
            status = "certifies global optimum" if (n_ok == P and stationary) else \
                "hypothesis fails"
            out.append(TheoremCheck(ref, th.name, th.hypothesis, status, detail))
        elif ref == "Corollary 3.10":
            R = np.concatenate([u, v], axis=1)                       # eq. (27), P = 1
            deficient = bool((_ranks(R) < m).all())
            clause = " (a rank-deficient local minimum is global: F is C^2)" \
                if deficient and bound.loss.twice_differentiable else ""
            out.append(TheoremCheck(ref, th.name, th.hypothesis, _status(th.holds),
                                    f"{th.detail}; R of eq. (27) is "
                                    f"{'rank-deficient' if deficient else 'full rank'}"
                                    f"{clause}; local minimality not verified ({stat})"))
    return tuple(out)
