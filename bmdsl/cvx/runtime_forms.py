"""The loss and the D-norm (15) in CVXPY for the emitted module, from the kernel.

The loss is its kernel class's `cvxpy` form (bmdsl/kernel/lossforms.py), the D-norm, its
bracket and the ReLU rule are the norm-pair table's (bmdsl/kernel/pairforms.py): the same
definitions bmdsl runs in-process, pasted (only this model's entries) into the module.
F is a sum over entries (squared = 0.5 ||Yhat - Y||^2); class axis last.
"""
import numpy as np
import cvxpy as cp

from ..kernel.lossforms import LOSS_KERNELS
from ..kernel.norms import NORMS
from ..kernel.pairforms import (PAIR_TABLE, NormExpression, cvxpy_exact, dnorm_cvxpy,
                                dnorm_cvxpy_bounds, relu_exact)
from .program import Forms


def closed_form(form):
    """||Z||_D (15) by a tractable pair's closed form (kernel/pairforms.py): exact, as
    pairforms.dnorm_cvxpy writes it, without the table (the emitter names the entry)."""
    return lambda Z, C, R, enum_cap=12: NormExpression(form.cvxpy(Z, C, R), "exact", form.name)


def dnorm_bounds(Z, C, R, sdp_cap=60):
    """(lower, upper) convex bounds on ||Z||_D, as dnorm.d_norm_cvxpy_bounds."""
    return dnorm_cvxpy_bounds(Z, C, R, sum(Z.shape) <= sdp_cap)


def vector_norm(name):
    """Entrywise (never operator) norm along an axis, from the norm registry."""
    return NORMS[name].cvxpy


def with_offset(form, c):
    """F_b(e) = min_b F(e + 1 b^T): the free output bias (one per channel, last axis) as
    one more variable (bmdsl/atoms/offset.py); e, y are [rows, c]."""
    def loss(e, y):
        b = cp.Variable(c, name="output_bias")
        return form(e + np.ones((y.shape[0], 1)) @ cp.reshape(b, (1, c), order="C"), y)
    return loss


def output_channels(shapes):
    """c of the free output bias (`bias output`): the last axis of y, 1 for a vector y."""
    return shapes["y"][-1] if len(shapes["y"]) > 1 else 1


def standalone_forms(spec, shapes):
    """The `Forms` (program.py) of this module from the kernel's entries; `shapes` for the
    free output bias (`bias output`)."""
    name, params = spec["loss"]
    kernel = LOSS_KERNELS[name](**params)
    loss = lambda e, y: kernel.cvxpy(cp, e, y)   # noqa: E731
    if spec["bias"]["output"]:
        loss = with_offset(loss, output_channels(shapes))
    # the cone's split needs C's norm and the ReLU rule, a hard pair its brackets; the
    # emitted module keeps only what its model can call (the others are None); dnorm is
    # only called where dnorm_is_exact holds (program._plain), so it is never None
    return Forms(loss=loss, vnorm=vector_norm if spec['activation']['cone'] else None,
                 dnorm=closed_form(PAIR_TABLE[spec['C'], spec['R']].form)
                 if PAIR_TABLE[spec['C'], spec['R']].form is not None else dnorm_cvxpy,
                 dnorm_is_exact=(lambda *args: True)
                 if PAIR_TABLE[spec['C'], spec['R']].form is not None else cvxpy_exact,
                 dnorm_bounds=None if PAIR_TABLE[spec['C'], spec['R']].form is not None
                 else dnorm_bounds, relu_exact=relu_exact if spec['activation']['cone'] else None,
                 euclidean=(lambda C, R: PAIR_TABLE[C, R].euclidean)
                 if spec['activation']['cone'] else None)
