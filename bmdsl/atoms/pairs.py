"""The norm pairs of the D-norm (Sahiner et al. 2024, eq. (15)): the table of entries, each
declaring its capabilities, lives in the bmdsl-free kernel (bmdsl/kernel/pairforms.py: its
closed forms in numpy and CVXPY, the linf side(s) an NP-hard pair may enumerate, its prox
key, the ReLU-exactness rule) so that the emitted CVXPY module runs the same forms.
`NormPair` is bmdsl's view of one pair: what follows from the two vector norms
(`euclidean`, `smooth_regularizer`, `relu_exact(q)` also for symbolic q). Code asks the
pair, never its names. Adding a pair is one line in `PAIR_TABLE` (with a `PairForm` if it
has closed forms).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernel.pairforms import (COLS, GAUGE_TEXT, PAIR_TABLE, ROWS, SPECTRAL, DualNormValue,
                                NormExpression, PairForm, PairRule, enum_side,
                                relu_exact)
from .norms import NORMS, get_norm

__all__ = ["PairForm", "PairRule", "NormPair", "PAIR_TABLE", "DualNormValue",
           "NormExpression", "ROWS", "COLS", "SPECTRAL", "GAUGE_TEXT"]


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
        return self.rule.form is not None

    @property
    def euclidean(self) -> bool:
        return self.rule.euclidean

    @property
    def smooth_regularizer(self) -> bool:
        """(beta/2)(||u||_C^2 + ||v||_R^2) is twice differentiable everywhere (Newton)."""
        return NORMS[self.C].smooth_square and NORMS[self.R].smooth_square

    def relu_exact(self, q):
        """The ReLU program is exactly the cone-constrained group norm when every right atom
        is a signed basis vector: R's ball has only +-e_j as extreme points, or q = 1
        (Pilanci & Ergen 2020, eq. (5)). True/False, or None while q is a size not yet
        bound by data."""
        if NORMS[self.R].basis_extremes or isinstance(q, (int, np.integer)):
            return relu_exact(self.C, self.R, q)    # the rule, decided in the kernel
        import sympy
        q = sympy.sympify(q)
        return relu_exact(self.C, self.R, int(q)) if q.is_number else None

    def enum_side(self, p: int, q: int) -> tuple[str, int]:
        """The linf side to enumerate (the smaller one for (linf, linf)) and its dimension."""
        return enum_side(self.C, self.R, p, q)
