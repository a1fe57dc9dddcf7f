"""Losses F(Yhat) (a SUM over entries, never a mean) and the vector norms C, R in torch.

The losses are the classes of bmdsl/kernel/lossforms.py (their `torch` forms; emitted trainers
paste that file before this one); a norm is its entry's declared numeric form, scale *
||x||_p, which the SPEC carries (`spec["norms"]`, from bmdsl.atoms.norms' `runtime_form`);
tests check that the two agree. Nothing here branches on a loss's or a norm's name.
"""
import torch

from ...kernel.lossforms import LOSS_KERNELS

def plain_squared(spec):
    """F is 1/2 ||Yhat - Y||^2 itself, a quadratic with identity Hessian in Yhat (what the
    Gram path, ALS, the cone interior point and the Gauss-Newton shortcut rely on); not with
    a free output offset (offset.py), whose F_b has the centering projection as Hessian."""
    kernel = LOSS_KERNELS.get(spec["loss"])
    return bool(kernel is not None and kernel.quadratic) and \
        not (spec.get("bias") or {}).get("output")


def torch_loss(name, params=()):
    """F(yhat, y) -> scalar tensor for a registered loss name and its parameters."""
    kernel = LOSS_KERNELS[name](**dict(params))
    return lambda yh, y: kernel.torch(torch, yh, y)


def loss_prox(spec):
    """(v, y, t, x0) -> prox_{tF}(v) of the runtime's copy of the loss (its kernel class's
    `torch_prox`), or None: a loss that declares none, or F_b with a free output offset."""
    kernel = LOSS_KERNELS.get(spec["loss"])
    if kernel is None or kernel.torch_prox is None or (spec.get("bias") or {}).get("output"):
        return None
    made = kernel(**dict(spec["loss_params"]))
    return lambda v, y, t, x0=None: made.torch_prox(torch, v, y, t, x0)


def norm(form, x):
    """||x|| = scale * ||x||_p over the last axis (x [..., k]) for a norm's declared form
    {"order": p, "scale": scale}."""
    return form["scale"] * torch.linalg.vector_norm(x, ord=float(form["order"]), dim=-1)


def norm_sq(form, x):
    """||x||^2 over the last axis; p = 2 as a plain sum of squares (smooth everywhere)."""
    if float(form["order"]) == 2.0:
        return form["scale"] ** 2 * (x * x).sum(-1)
    return norm(form, x) ** 2


def euclidean(form):
    """The norm is ||x||_2 itself (p = 2, scale 1)."""
    return float(form["order"]) == 2.0 and form["scale"] == 1.0


def regularizer(beta, C, R, U, V):
    """(beta/2) sum_{k,j} (||u_kj||_C^2 + ||v_kj||_R^2) for U [P, m, *w1], V [P, m, *w2];
    C, R are the norms' declared forms (`spec["norms"]`)."""
    u = U.reshape(U.shape[0], U.shape[1], -1)
    v = V.reshape(V.shape[0], V.shape[1], -1)
    return 0.5 * beta * (norm_sq(C, u).sum() + norm_sq(R, v).sum())
