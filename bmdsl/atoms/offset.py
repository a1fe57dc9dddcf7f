"""The output bias as a property of the loss: F_b(Yhat) = min_b F(Yhat + 1 b^T).

An unpenalized output bias b (one per output channel, the last axis; one in all for an
output with a single axis) enters every program only through the loss, so bmdsl folds it
into the loss entry: F_b is convex (the partial minimum of a jointly convex function), its
gradient is grad F at the best offset b* (Danskin), and its conjugate is

    F_b*(V) = F*(V)  if 1^T V = 0 (every channel's entries sum to zero),  +inf otherwise,

because sup_b <V, 1 b^T> is 0 on that subspace and +inf off it. So the Fenchel dual of the
programs (Sahiner et al. 2024, eq. (112)-(113)) keeps its form with one more condition on
the dual point, and `grad` returns an exactly centered gradient: every dual candidate the
certificates scale from it satisfies the condition by construction. `with_offset(loss, c)`
returns the wrapped `losses.Loss`; every solver and certificate that asks the entry picks
it up. In CVXPY the offset is one more variable.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

_ITERS = 100          # Newton steps for b*: quadratic convergence needs far fewer
_CENTERED = 1e-9      # relative slack of the domain test 1^T V = 0 (rounding only)


def _rows(a, c: int) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1, c)


def best_offset(loss, yhat, y, c: int, start=None) -> np.ndarray:
    """b* = argmin_b F(Yhat + 1 b^T) [c]: Newton's method on the c offsets with a finite-
    difference Hessian of the registry's gradient (exact for the squared loss) and a
    Levenberg-Marquardt shift, raised until a step decreases F (a Huber loss with every
    residual in its linear zone has a zero Hessian). F may have no minimizer in b (logistic
    on labels of one sign): the iteration then stops at its cap with a large finite b."""
    Yh, Y = _rows(yhat, c), _rows(y, c)
    b = np.zeros(c) if start is None else np.array(start, dtype=float).reshape(c)
    phi = lambda b: float(loss.value(Yh + b, Y))             # noqa: E731
    grad = lambda b: np.asarray(loss.grad(Yh + b, Y)).sum(axis=0)   # noqa: E731
    f, g = phi(b), grad(b)
    # Newton until the gradient stops shrinking (its rounding floor): the certificates need
    # b* to full precision, since a dual point y + t g must stay in F*'s domain
    scale = max(1.0, float(np.abs(np.asarray(loss.grad(Yh + b, Y))).sum()))
    g_old = np.inf
    for _ in range(_ITERS):
        gmax = np.max(np.abs(g))
        if gmax <= 1e-15 * scale or (gmax <= 1e-8 * scale and gmax > 0.5 * g_old):
            break
        g_old = np.max(np.abs(g))
        h = 1e-6 * (1.0 + np.abs(b))
        H = np.stack([(grad(b + h[i] * e) - g) / h[i] for i, e in enumerate(np.eye(c))], 1)
        step = _step(phi, b, f, g, 0.5 * (H + H.T))
        if step is None:
            break
        b = b - step
        f, g = phi(b), grad(b)
    return b


def _step(phi, b, f, g, H):
    """A step that decreases phi by Armijo's rule: the minimum-norm Newton step (pinv: a
    loss invariant along a direction of b, as cross-entropy along 1, gets no step there),
    else Levenberg-Marquardt steps (H + lam I)^-1 g with lam growing (a zero Hessian, as
    Huber's with every residual in its linear zone). None: no decrease found."""
    step = np.linalg.pinv(H, rcond=1e-10, hermitian=True) @ g
    # only where g lies (mostly) in H's range: else H misses a direction that matters
    if float(np.linalg.norm(g - H @ step)) <= 0.5 * float(np.linalg.norm(g)) and \
            float(g @ step) > 0 and phi(b - step) <= f - 1e-4 * float(g @ step):
        return step
    lam = 1e-6 * max(np.trace(H) / len(b), float(np.max(np.abs(g))), 1e-300)
    for _ in range(40):
        step = np.linalg.solve(H + lam * np.eye(len(b)), g)
        if phi(b - step) <= f - 1e-4 * float(g @ step):
            return step
        lam *= 10
    return None


def centered(g, c: int) -> np.ndarray:
    """g with 1^T g = 0 per channel: each channel's sum (rounding-sized at b*) taken off its
    largest entry only. Subtracting the mean from every entry instead would move entries
    that are exactly 0 (or of a fixed sign, as softmax - y where y = 0) across the boundary
    of F*'s domain, and the dual ray would collapse to t = 0."""
    g = np.asarray(g, dtype=float)
    R = g.reshape(-1, c).copy()
    top = np.argmax(np.abs(R), axis=0)
    cols = np.arange(c)
    R[top, cols] -= R.sum(axis=0)
    return R.reshape(g.shape)


def is_centered(v, c: int) -> bool:
    R = _rows(v, c)
    return bool(np.all(np.abs(R.sum(axis=0)) <= _CENTERED * max(1.0, float(np.abs(R).sum()))))


def with_offset(loss, c: int):
    """The loss F_b of a model with an output bias of c channels (module docstring)."""
    last = [None]          # the latest b*: the next solve starts there (same data, nearby Yhat)

    def offset(yh, y):
        start = last[0] if last[0] is not None and last[0].shape == (c,) else None
        last[0] = best_offset(loss, yh, y, c, start)
        return last[0]

    def shifted(yh, y):
        yh = np.asarray(yh, dtype=float)
        return (_rows(yh, c) + offset(yh, y)).reshape(yh.shape)

    def cvx(e, y):
        import cvxpy as cp   # lazily, as in losses.py
        Y = _rows(y, c)
        E = e if tuple(e.shape) == Y.shape else cp.reshape(e, Y.shape, order="C")
        b = cp.Variable(c, name="output_bias")
        return loss.cvxpy(E + np.ones((Y.shape[0], 1)) @ cp.reshape(b, (1, c), order="C"), Y)

    def torch_value(yh, y):
        b = offset(yh.detach().cpu().numpy(), y)      # the envelope: no gradient through b*
        import torch
        shift = torch.as_tensor(b, dtype=yh.dtype, device=yh.device)
        return loss.torch_value((yh.reshape(-1, c) + shift).reshape(yh.shape), y)

    def domain(g, y):
        return loss.scale_domain(g, y) if is_centered(g, c) else (0.0, 0.0)

    return replace(
        loss, latex=loss.latex.replace(r"\hat Y", r"(\hat Y + 1 b^T)") + r",\ b\ \text{free}",
        value=lambda yh, y: loss.value(shifted(yh, y), y),
        grad=lambda yh, y: centered(loss.grad(shifted(yh, y), y), c),
        torch_value=torch_value, cvxpy=cvx,
        conjugate=lambda v, y: loss.conjugate(v, y) if is_centered(v, c) else float("inf"),
        scale_domain=domain, offset=offset, channels=c, base=loss,
        prox=None,    # F_b's prox is not F's (b moves with Yhat): none declared
        terms=None)   # nor F's terms (b* couples the samples)
