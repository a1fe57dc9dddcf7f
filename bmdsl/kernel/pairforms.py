"""The norm-pair table: what each (C, R) pair of the D-norm (Sahiner et al. 2024, eq. (15))
can do, declared once on its entry (docs/theory.md sec. 4), with its numeric forms.

An entry (`PairRule`) carries its closed forms when the pair is tractable (`form`: ||Z||_D,
||G||_D* with its attainers, the CVXPY expression), the linf side(s) an NP-hard pair may
enumerate, its prox key (certificates/prox.py, trainer/runtime/dprox.py) and its note.
Here too: the exact CVXPY form of ||Z||_D (closed form, or enumeration of the linf ball's
vertices), its bracket for the hard pairs (brackets.py) and the ReLU-exactness rule
(`relu_exact`). bmdsl (atoms/pairs.py, derive/dnorm.py) and the emitted CVXPY module both
use these definitions. Adding a pair is one line in `PAIR_TABLE` (with a `PairForm` if it
has closed forms).
"""
from dataclasses import dataclass

import numpy as np

from .brackets import hard_pair_brackets
from .norms import NORMS


@dataclass(frozen=True)
class DualNormValue:
    """value with exactness "exact" | "upper" ("lower" only from cone_dual_norm_lower); u, v
    attain u^T G v == value (u in B_C, v in B_R, K u >= 0 for cones) when it is exact."""
    value: float
    exactness: str
    method: str
    u: object = None
    v: object = None


@dataclass(frozen=True)
class NormExpression:
    """A convex cvxpy expression for ||Z||_D; exactness "exact" | "lower" | "upper" means
    (its minimum over the auxiliary variables in ``constraints``) is = / <= / >= ||Z||_D."""
    expr: object
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


class Rows(PairForm):
    """C = l1: the atoms are +-e_i v^T, so the D-norm is a sum of row norms."""
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


class Cols(PairForm):
    """R = l1: the atoms are u (+-e_j)^T, so the D-norm is a sum of column norms."""
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


class Spectral(PairForm):
    """C = R = l2: sigma_max and its dual, the nuclear norm."""
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


ROWS = Rows()
COLS = Cols()
SPECTRAL = Spectral()


@dataclass(frozen=True)
class PairRule:
    """How a (C, R) pair is computed. method: rows | cols | spectral | hard; `form` holds the
    closed forms (None for hard pairs); for hard pairs ``enum_sides`` lists the linf
    side(s) whose ball vertices {+-1}^k may be enumerated. ``prox``: the key of the prox
    of tau ||.||_D and of the factorization of Z into BM units (certificates/prox.py in
    numpy, trainer/runtime/dprox.py in torch), None where there is no cheap prox (the
    solvers that need one then do not apply). ``euclidean``: C = R = l2 (unit Euclidean
    balls): the D-norm is the nuclear norm, the SDP of the cone norm is the constrained
    nuclear norm, Theorem 3.5 (eq. (21)) applies."""
    method: str
    enum_sides: tuple = ()
    note: str = ""
    prox: object = None
    form: object = None
    euclidean: bool = False

    @property
    def text(self) -> tuple:
        return self.form.text if self.form is not None else GAUGE_TEXT


# one top-level name per entry: an emitted module pastes only its model's entry
ROWS_RULE = PairRule("rows", prox="rows", form=ROWS,
                     note="C = l1: ||G||_D* = max_i ||row_i G||_R*, ||Z||_D = sum_i ||row_i Z||_R")
COLS_RULE = PairRule("cols", prox="cols", form=COLS,
                     note="R = l1: ||G||_D* = max_j ||col_j G||_C*, ||Z||_D = sum_j ||col_j Z||_C")
SPECTRAL_RULE = PairRule("spectral", note="sigma_max(G) / nuclear norm ||Z||_*",
                         prox="spectral", form=SPECTRAL, euclidean=True)
L2_LINF = PairRule("hard", ("R",), "max_{s in {+-1}^q} ||G s||_2 (NP-hard)")
LINF_L2 = PairRule("hard", ("C",), "max_{s in {+-1}^p} ||G^T s||_2 (NP-hard)")
LINF_LINF = PairRule("hard", ("C", "R"), "||G||_{inf->1} (NP-hard)")
# The single classification table (docs/theory.md sec. 4).  (l1, l1) uses rows: max |G_ij|.
PAIR_TABLE = {("l1", "l1"): ROWS_RULE, ("l1", "l2"): ROWS_RULE, ("l1", "linf"): ROWS_RULE,
              ("l2", "l1"): COLS_RULE, ("linf", "l1"): COLS_RULE, ("l2", "l2"): SPECTRAL_RULE,
              ("l2", "linf"): L2_LINF, ("linf", "l2"): LINF_L2, ("linf", "linf"): LINF_LINF}


def relu_exact(C, R, q):
    """The ReLU program is exactly the cone-constrained group norm when every right atom
    is a signed basis vector: R's ball has only +-e_j as extreme points, or q = 1
    (Pilanci & Ergen 2020, eq. (5)). q: an int (NormPair.relu_exact also takes symbols)."""
    return bool(NORMS[R].basis_extremes) or int(q) == 1


def sign_vectors(k):
    """{+-1}^k up to a global sign (first entry +1): s and -s give the same |value|."""
    bits = (np.arange(2 ** (k - 1))[:, None] >> np.arange(k - 1)[None, :]) & 1
    return np.hstack([np.ones((2 ** (k - 1), 1)), 1.0 - 2.0 * bits])


def enum_side(C, R, p, q):
    """The linf side to enumerate (the smaller one for (linf, linf)) and its dimension."""
    sides = [(s, p if s == "C" else q) for s in PAIR_TABLE[C, R].enum_sides]
    return min(sides, key=lambda t: t[1])


def cvxpy_exact(C, R, p, q, enum_cap):
    """Whether ||Z||_D of a p x q matrix has an exact CVXPY form within `enum_cap`."""
    if PAIR_TABLE[C, R].form is not None:
        return True
    return enum_side(C, R, p, q)[1] <= enum_cap


def dnorm_cvxpy(Z, C, R, enum_cap=12):
    """||Z||_D (15) in CVXPY exactly: the closed form, or min sum_s ||a_s|| over
    Z = sum_s a_s s^T with s the sign vectors of the linf side (conv{u v^T} = conv{u s^T}
    when R = linf); None when that side's dimension exceeds `enum_cap`."""
    import cvxpy as cp
    rule = PAIR_TABLE[C, R]
    if rule.form is not None:
        return NormExpression(rule.form.cvxpy(Z, C, R), "exact", rule.note)
    side, k = enum_side(C, R, *Z.shape)
    if k > enum_cap:
        return None
    S = sign_vectors(k)
    if side == "R":
        A = cp.Variable((Z.shape[0], S.shape[0]))
        expr, cons = cp.sum(NORMS[C].cvxpy(A, axis=0)), (A @ S == Z,)
    else:
        B = cp.Variable((S.shape[0], Z.shape[1]))
        expr, cons = cp.sum(NORMS[R].cvxpy(B, axis=1)), (S.T @ B == Z,)
    return NormExpression(expr, "exact", f"enumeration of {2 ** (k - 1)} sign vectors of the "
                          f"{side} side; exact after minimizing over the auxiliary variables "
                          "in `constraints`", cons)


def dnorm_cvxpy_bounds(Z, C, R, sdp):
    """(lower, upper) NormExpressions bracketing ||Z||_D: the exact form twice for a
    tractable pair, else brackets.py's (the lower one the SDP relaxation when `sdp`)."""
    rule = PAIR_TABLE[C, R]
    if rule.form is not None:
        ne = NormExpression(rule.form.cvxpy(Z, C, R), "exact", rule.note)
        return ne, ne
    lo, up = hard_pair_brackets(Z, C, R, sdp)
    return NormExpression(lo[0], "lower", *lo[1:]), NormExpression(up[0], "upper", *up[1:])
