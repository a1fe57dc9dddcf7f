"""The loss registry's numpy value, gradient and terms as the callbacks the runtime's
lifted solvers take (`BMProblem.value_grad`, `terms_grad`), on torch tensors: bmdsl's
trainer hands them the registry entry (the stand-alone trainer autograds its torch form)."""
import numpy as np
import torch


def registry_value_grad(loss, Y):
    """(yhat, need_grad, target) -> (F(yhat), grad F(yhat) or None) from the loss
    registry's numpy value and grad; target: Y (the lifted solvers pass a block of
    samples and its rows of Y, runtime/liftedops.py)."""
    y = Y.detach().cpu().double().numpy()

    def value_grad(yhat, need_grad=True, target=None):
        t = y if target is None else target.detach().cpu().double().numpy()
        z = yhat.detach().cpu().double().numpy()
        if not need_grad:
            return float(loss.value(z, t)), None
        g = torch.as_tensor(np.asarray(loss.grad(z, t), dtype=np.float64))
        return float(loss.value(z, t)), g.to(device=yhat.device, dtype=yhat.dtype)
    return value_grad


def registry_terms_grad(loss, Y):
    """yhat -> (F's terms (loss.terms: per entry, or per row), grad F(yhat)) as tensors, or
    None when the loss declares no terms: what the lifted warm starts sum by blocks."""
    if loss.terms is None:
        return None
    y = Y.detach().cpu().double().numpy()

    def terms_grad(yhat, need_grad=True):
        z = yhat.detach().cpu().double().numpy()
        t = torch.as_tensor(np.asarray(loss.terms(z, y), dtype=np.float64))
        g = torch.as_tensor(np.asarray(loss.grad(z, y), dtype=np.float64)) if need_grad \
            else None
        to = dict(device=yhat.device, dtype=yhat.dtype)
        return t.to(**to), (None if g is None else g.to(**to))
    return terms_grad
