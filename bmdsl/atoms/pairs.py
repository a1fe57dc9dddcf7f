"""The norm-pair table: what each (C, R) pair of the D-norm (Sahiner et al. 2024, eq. (15))
can do, declared once on its entry (docs/theory.md sec. 4).

An entry (`PairRule`) carries its closed forms when the pair is tractable (`form`: ||Z||_D,
||G||_D* with its attainers, the CVXPY expression), the linf side(s) an NP-hard pair may
enumerate, its prox key (certificates/prox.py, trainer/runtime/dprox.py) and its note.
`NormPair` adds what follows from the two vector norms (bmdsl.atoms.norms): `euclidean`,
`smooth_regularizer` and the ReLU-exactness rule `relu_exact(q)`. Code asks the pair,
never its names. Adding a pair is one line in `PAIR_TABLE` (with a `PairForm` if it has
closed forms).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .norms import NORMS, get_norm

__all__ = ["PairForm", "PairRule", "NormPair", "PAIR_TABLE", "DualNormValue",
           "NormExpression", "ROWS", "COLS", "SPECTRAL"]


@dataclass(frozen=True)
class DualNormValue:
    """value with exactness "exact" | "upper" ("lower" only from cone_dual_norm_lower); u, v
    attain u^T G v == value (u in B_C, v in B_R, K u >= 0 for cones) when it is exact;
    `method`: how it was computed (a pair rule's method, or a search's name)."""
    value: float
    exactness: str
    method: str
    u: Optional[np.ndarray] = None
    v: Optional[np.ndarray] = None


@dataclass(frozen=True)
class NormExpression:
    """A convex cvxpy expression for ||Z||_D; exactness "exact" | "lower" | "upper" means
    (its minimum over the auxiliary variables in ``constraints``) is = / <= / >= ||Z||_D."""
    expr: Any
    exactness: str
    note: str
    constraints: tuple = ()


class PairForm:
    """Closed forms of a tractable pair: `dual(G, C, R)` -> DualNormValue (exact, with
    attainers), `value(Z, C, R)` = ||Z||_D, `cvxpy(Z, C, R)` its CVXPY expression; `text`:
    ||Z||_D and ||G||_D* for the derivation (text, LaTeX, text, LaTeX)."""
    name = ""
    text = ("", "", "", "")


# the derivation's words for a pair without closed forms (NP-hard)
GAUGE_TEXT = ("gauge of conv{u v^T : ||u||_C <= 1, ||v||_R <= 1}", r"\|Z\|_{\mathcal{D}}",
              "max_{||u||_C <= 1, ||v||_R <= 1} u^T G v", r"\max_{u \in B_C, v \in B_R} u^\top G v")


class _Rows(PairForm):
    # C = l1: the atoms are +-e_i v^T, so the D-norm is a sum of row norms
    name = "rows"
    text = ("sum_i ||row_i(Z)||_R", r"\sum_i \|Z_{i,:}\|_{R}",
            "max_i ||row_i(G)||_R*", r"\max_i \|G_{i,:}\|_{R^*}")

    def dual(self, G, C, R):
        vals = NORMS[R].dual_norm.numpy(G, axis=1)
        i = int(np.argmax(vals))
        return DualNormValue(float(vals[i]), "exact", "rows", np.eye(G.shape[0])[i],
                             NORMS[R].ball_argmax(G[i]))

    def value(self, Z, C, R):
        return float(NORMS[R].numpy(Z, axis=1).sum())

    def cvxpy(self, Z, C, R):
        import cvxpy as cp
        return cp.sum(NORMS[R].cvxpy(Z, axis=1))


class _Cols(PairForm):
    # R = l1: the atoms are u (+-e_j)^T, so the D-norm is a sum of column norms
    name = "cols"
    text = ("sum_j ||col_j(Z)||_C", r"\sum_j \|Z_{:,j}\|_{C}",
            "max_j ||col_j(G)||_C*", r"\max_j \|G_{:,j}\|_{C^*}")

    def dual(self, G, C, R):
        vals = NORMS[C].dual_norm.numpy(G, axis=0)
        j = int(np.argmax(vals))
        return DualNormValue(float(vals[j]), "exact", "cols", NORMS[C].ball_argmax(G[:, j]),
                             np.eye(G.shape[1])[j])

    def value(self, Z, C, R):
        return float(NORMS[C].numpy(Z, axis=0).sum())

    def cvxpy(self, Z, C, R):
        import cvxpy as cp
        return cp.sum(NORMS[C].cvxpy(Z, axis=0))


class _Spectral(PairForm):
    # C = R = l2: sigma_max and its dual, the nuclear norm
    name = "spectral"
    text = ("||Z||_* (nuclear norm)", r"\|Z\|_*", "sigma_max(G)", r"\sigma_{\max}(G)")

    def dual(self, G, C, R):
        U, s, Vt = np.linalg.svd(G)
        return DualNormValue(float(s[0]), "exact", "spectral", U[:, 0], Vt[0])

    def value(self, Z, C, R):
        return float(np.linalg.svd(Z, compute_uv=False).sum())

    def cvxpy(self, Z, C, R):
        import cvxpy as cp
        return cp.normNuc(Z)


ROWS, COLS, SPECTRAL = _Rows(), _Cols(), _Spectral()


@dataclass(frozen=True)
class PairRule:
    """How a (C, R) pair is computed. method: rows | cols | spectral | hard; `form` holds the
    closed forms (None for hard pairs); for hard pairs ``enum_sides`` lists the linf
    side(s) whose ball vertices {+-1}^k may be enumerated. ``prox``: the key of the prox
    of tau ||.||_D and of the factorization of Z into BM units (certificates/prox.py in
    numpy, trainer/runtime/dprox.py in torch), None where there is no cheap prox (the
    solvers that need one then do not apply)."""
    method: str
    enum_sides: tuple = ()
    note: str = ""
    prox: Optional[str] = None
    form: Optional[PairForm] = None
    # C = R = l2 (unit Euclidean balls): the D-norm is the nuclear norm, the SDP of the
    # cone norm is the constrained nuclear norm, Theorem 3.5 (eq. (21)) applies
    euclidean: bool = False

    @property
    def text(self) -> tuple:
        return self.form.text if self.form is not None else GAUGE_TEXT


_ROWS = PairRule("rows", prox="rows", form=ROWS,
                 note="C = l1: ||G||_D* = max_i ||row_i G||_R*, ||Z||_D = sum_i ||row_i Z||_R")
_COLS = PairRule("cols", prox="cols", form=COLS,
                 note="R = l1: ||G||_D* = max_j ||col_j G||_C*, ||Z||_D = sum_j ||col_j Z||_C")
# The single classification table (docs/theory.md sec. 4).  (l1, l1) uses rows: max |G_ij|.
PAIR_TABLE: dict[tuple[str, str], PairRule] = {
    ("l1", "l1"): _ROWS, ("l1", "l2"): _ROWS, ("l1", "linf"): _ROWS,
    ("l2", "l1"): _COLS, ("linf", "l1"): _COLS,
    ("l2", "l2"): PairRule("spectral", note="sigma_max(G) / nuclear norm ||Z||_*",
                           prox="spectral", form=SPECTRAL, euclidean=True),
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
        if NORMS[self.R].basis_extremes:
            return True
        if isinstance(q, (int, np.integer)):
            return int(q) == 1
        import sympy
        q = sympy.sympify(q)
        return bool(q == 1) if q.is_number else None

    def enum_side(self, p: int, q: int) -> tuple[str, int]:
        """The linf side to enumerate (the smaller one for (linf, linf)) and its dimension."""
        sides = [(s, p if s == "C" else q) for s in self.rule.enum_sides]
        return min(sides, key=lambda t: t[1])
