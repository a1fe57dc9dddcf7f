"""Is the convex program exactly tractable for this (C, R, activation)? (docs/theory.md sec. 4)

The (C, R) part comes from the norm-pair table in `dnorm`; the activation adds the ReLU
cones: with the cone on the left factor, the norm stays tractable when every right atom
is a signed basis vector (q = 1, or R = l1): then ||Z||_{D,K} = min sum_j ||a_j||_C + ||b_j||_C
over Z = sum_j (a_j - b_j) e_j^T with a_j, b_j in K (Pilanci & Ergen 2020, eq. (5)). Otherwise it is the
constrained nuclear norm (4), NP-hard: bracketed by a relaxation and a restriction.
"""
from __future__ import annotations

from ..atoms.activations import get_activation
from ..atoms.norms import NORMS


def relu_exact(C: str, R: str, q) -> bool | None:
    """True/False when decidable now; None when it depends on a size bound by data (the
    pair's rule, `pairs.NormPair.relu_exact`)."""
    from ..atoms.pairs import NormPair
    return NormPair(C, R).relu_exact(q)


def pair_status(C: str, R: str) -> str:
    """The (C, R) row of the norm-pair table (docs/theory.md sec. 4), in words."""
    from .dnorm import NormPair
    pair = NormPair(C, R)
    if pair.tractable:
        return f"exact ({pair.rule.note})"
    return (f"NP-hard norm pair ({pair.rule.note}): exact by enumerating the linf side when "
            f"it is small, otherwise bracketed by a relaxation and a restriction")


def convex_status(model) -> str:
    C, R = model.regularizer.C, model.regularizer.R
    pair = pair_status(C, R)
    if not get_activation(model.activation.name).cone:
        return pair
    exact = relu_exact(C, R, model.q)
    if exact:
        atoms = "R = " + R if NORMS[R].basis_extremes else "q = 1"
        return ("exact (ReLU with " + atoms +
                "; cone-constrained group norm, Pilanci & Ergen 2020 eq. (5))")
    bracket = ("bracketed: lower bound by the SDP/copositive relaxation of the constrained "
               "norm, upper bound by decoupled outputs (docs/cvxpy.md)")
    if exact is None:
        return f"exact if q = {model.q} equals 1 (set by the data); otherwise {bracket}"
    return f"NP-hard for ReLU with q = {model.q} > 1 and R = {R}; {bracket}"
