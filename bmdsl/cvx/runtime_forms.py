"""Losses, vector norms and the D-norm (15) in cvxpy: a stand-alone copy for emitted modules.

The same forms as bmdsl.atoms.losses (cvxpy part), bmdsl.atoms.norms and bmdsl.derive.dnorm (d_norm_cvxpy,
d_norm_cvxpy_bounds), written with numpy + cvxpy only, because the emitted module must run
without bmdsl. tests/test_cvx_emit.py checks that both give the same optima.
F is a sum over entries (squared = 0.5 ||Yhat - Y||^2); class axis last.
"""
from collections import namedtuple

import numpy as np
import cvxpy as cp

from ..kernel.brackets import hard_pair_brackets
from .program import Forms
from .relu import relu_is_exact

NormExpression = namedtuple("NormExpression", "expr exactness note constraints")


def _squared(e, y):
    return 0.5 * cp.sum_squares(e - y)


def _cross_entropy(e, y):
    return cp.sum(cp.log_sum_exp(e, axis=1)) - cp.sum(cp.multiply(y, e))


def _logistic(e, y):
    return cp.sum(cp.logistic(-cp.multiply(y, e)))


def _huber(e, y, delta=1.0):
    return 0.5 * cp.sum(cp.huber(e - y, float(delta)))  # cvxpy's huber is twice ours


# name -> (cvxpy form f(yhat [rows, last], Y [rows, last], **params), parameter names).
# The emitted module's copy of the `cvxpy` forms of bmdsl/kernel/lossforms.py, until the CVXPY
# emitter pastes that file (tests/test_registries.py checks that the two agree); a loss
# without a line here is refused by `bmdsl compile --target cvxpy` with a clear error.
LOSS_FORMS = {"squared": (_squared, ()), "cross_entropy": (_cross_entropy, ()),
              "logistic": (_logistic, ()), "huber": (_huber, ("delta",))}


def vector_norm(name):
    """Entrywise (never operator) p-norm along an axis."""
    p = {"l1": 1, "l2": 2, "linf": "inf"}[name]
    return lambda expr, axis=None: cp.pnorm(expr, p, axis=axis)


# (C, R) -> (kind, l_inf sides that may be enumerated): the emitted module's copy of
# bmdsl/atoms/pairs.py's PAIR_TABLE (tests/test_registries.py checks that they agree), as
# relu.relu_is_exact is of NormPair.relu_exact, until the CVXPY emitter pastes the kernel.
PAIR_KINDS = {("l1", "l1"): ("rows", ()), ("l1", "l2"): ("rows", ()), ("l1", "linf"): ("rows", ()),
              ("l2", "l1"): ("cols", ()), ("linf", "l1"): ("cols", ()),
              ("l2", "l2"): ("spectral", ()), ("l2", "linf"): ("hard", ("R",)),
              ("linf", "l2"): ("hard", ("C",)), ("linf", "linf"): ("hard", ("C", "R"))}


def enum_side(C, R, p, q):
    sides = [(s, p if s == "C" else q) for s in PAIR_KINDS[(C, R)][1]]
    return min(sides, key=lambda t: t[1])


def dnorm_is_exact(C, R, p, q, enum_cap):
    return PAIR_KINDS[(C, R)][0] != "hard" or enum_side(C, R, p, q)[1] <= enum_cap


def sign_vectors(k):
    """{+-1}^k up to a global sign (first entry +1)."""
    bits = (np.arange(2 ** (k - 1))[:, None] >> np.arange(k - 1)[None, :]) & 1
    return np.hstack([np.ones((2 ** (k - 1), 1)), 1.0 - 2.0 * bits])


def dnorm(Z, C, R, enum_cap=12):
    """||Z||_D exactly: closed forms, or min sum ||a_s|| over Z = sum_s a_s s^T (sign vectors)."""
    kind = PAIR_KINDS[(C, R)][0]
    if kind == "rows":
        return NormExpression(cp.sum(vector_norm(R)(Z, axis=1)), "exact", "rows", ())
    if kind == "cols":
        return NormExpression(cp.sum(vector_norm(C)(Z, axis=0)), "exact", "cols", ())
    if kind == "spectral":
        return NormExpression(cp.normNuc(Z), "exact", "nuclear", ())
    side, k = enum_side(C, R, *Z.shape)
    if k > enum_cap:
        raise ValueError(f"({C}, {R}) is NP-hard and k = {k} > enum_cap = {enum_cap}")
    S = sign_vectors(k)
    if side == "R":
        A = cp.Variable((Z.shape[0], S.shape[0]))
        return NormExpression(cp.sum(vector_norm(C)(A, axis=0)), "exact", "enumeration",
                              (A @ S == Z,))
    B = cp.Variable((S.shape[0], Z.shape[1]))
    return NormExpression(cp.sum(vector_norm(R)(B, axis=1)), "exact", "enumeration",
                          (S.T @ B == Z,))


def dnorm_bounds(Z, C, R, sdp_cap=60):
    """(lower, upper) convex bounds on ||Z||_D, as dnorm.d_norm_cvxpy_bounds."""
    if PAIR_KINDS[(C, R)][0] != "hard":
        ne = dnorm(Z, C, R, 0)
        return ne, ne
    lo, up = hard_pair_brackets(Z, C, R, sum(Z.shape) <= sdp_cap)
    return NormExpression(lo[0], "lower", *lo[1:]), NormExpression(up[0], "upper", *up[1:])


def with_offset(form, c):
    """F_b(e) = min_b F(e + 1 b^T): the free output bias (one per channel, last axis) as
    one more variable (bmdsl/atoms/offset.py); e, y are [rows, c]."""
    def loss(e, y):
        b = cp.Variable(c, name="output_bias")
        return form(e + np.ones((y.shape[0], 1)) @ cp.reshape(b, (1, c), order="C"), y)
    return loss


def standalone_forms(loss_name, loss_params, offset_channels=None):
    """The `Forms` (program.py) of this module: no bmdsl needed; `offset_channels` = c for
    a model with a free output bias (`bias output`)."""
    form, _ = LOSS_FORMS[loss_name]
    params = dict(loss_params)
    loss = lambda e, y: form(e, y, **params)   # noqa: E731
    if offset_channels:
        loss = with_offset(loss, offset_channels)
    return Forms(loss=loss, vnorm=vector_norm, dnorm=dnorm,
                 dnorm_bounds=dnorm_bounds, dnorm_is_exact=dnorm_is_exact,
                 relu_exact=lambda C, R, q: relu_is_exact(R, q),
                 euclidean=lambda C, R: PAIR_KINDS[(C, R)][0] == "spectral")
