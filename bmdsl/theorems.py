"""Which of the paper's guarantees apply to a model, and at what threshold.

Each entry states its hypothesis as a predicate over the model (and the sizes, once data
is bound); `holds` is True, False, or None when it depends on sizes not yet bound.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy


@dataclass(frozen=True)
class Theorem:
    name: str
    reference: str  # the paper's numbering
    statement: str
    hypothesis: str
    holds: bool | None
    detail: str


def _compare(m: int, threshold, sizes: dict | None) -> tuple[bool | None, str]:
    value = threshold
    if sizes:
        value = threshold.subs({sympy.Symbol(k, positive=True, integer=True): v
                                for k, v in sizes.items()})
    if value.is_number:
        ok = m >= int(value)
        return ok, f"m = {m} {'>=' if ok else '<'} {threshold} = {int(value)}"
    return None, f"m = {m} versus {threshold} (sizes bound by data)"


def is_self_attention(model) -> bool:
    """Structural test: in some first-layer term the same data tensor appears on both sides
    of the weight (X W1 X^T), as in self-attention (eq. (8))."""
    for term in model.layer.terms:
        data = [f.name for f in term.factors if f.role == "data"]
        if any(data.count(name) >= 2 for name in data):
            return True
    return False


def theorems_for(model, sizes: dict | None = None) -> tuple[Theorem, ...]:
    m = model.units.value
    p, q = model.p, model.q
    act = model.activation.name
    C, R = model.regularizer.C, model.regularizer.R
    out = []
    holds, detail = _compare(m, p + q, sizes)
    out.append(Theorem(
        "no spurious local minima", "Theorem 3.3",
        "every local minimum of the BM factorization is global (and a rank-deficient local "
        "minimum is global for twice-differentiable F)", "m >= p + q", holds, detail))
    out.append(Theorem(
        "optimality certificate", "Theorem 3.4, eq. (20)",
        "at a stationary point, (p_BM - p*)/p* <= max_k (||G_k||_D* / beta - 1)_+",
        "a stationary point of BM; F non-negative", True,
        "checked at run time against the stationarity residual"))
    if (C, R) == ("l2", "l2") and act != "relu":
        out.append(Theorem(
            "full rank implies global", "Theorem 3.5, eq. (21)",
            "a stationary point with rank(U_k) = rank(V_k) = min(p, q) is a global minimizer",
            "C = R = l2 (no cone constraints)", True, "rank checked at run time"))
    if act == "linear" and is_self_attention(model):
        holds, detail = _compare(m, p + q, sizes)
        d2dc = f"d^2 + dc = {p + q}"
        out.append(Theorem(
            "linear self-attention has no spurious local minima", "Corollary 3.10",
            "with enough heads every local minimum of (26) is global",
            f"heads m >= {d2dc}", holds, detail))
    return tuple(out)
