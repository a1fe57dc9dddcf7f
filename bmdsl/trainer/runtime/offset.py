"""The output bias in torch: F_b(Yhat) = min_b F(Yhat + 1 b^T) (bmdsl/atoms/offset.py).

b* [c] (one offset per output channel, the last axis; one for a single-axis output) is
found by Newton's method on the c offsets (autograd Hessian, Armijo backtracking), started
from the previous b*. The value returned is F(Yhat + 1 b~^T) with b~ = b* - H^{-1} g(Yhat)
one Newton step taken *differentiably* (H fixed): b~ = b* in value, and its derivative is
the implicit-function derivative of b*(Yhat), so autograd gives F_b's exact gradient and
Hessian-vector products (what Newton and the Gauss-Newton blocks use).
"""
import torch

NEWTON_ITERS = 50


def output_channels(y_shape):
    return int(y_shape[-1]) if len(y_shape) > 1 else 1


def has_output_bias(spec):
    return bool((spec.get("bias") or {}).get("output"))


def _gradient(F, Yh, y, b, shape):
    """F(Yh + 1 b^T), its gradient in b (a graph, for a Hessian or a derivative in Yh) and
    the leaf b it is taken at."""
    b = b.detach().requires_grad_(True)
    with torch.enable_grad():
        f = F((Yh + b).reshape(shape), y)
        (g,) = torch.autograd.grad(f, b, create_graph=True)
    return f, g, b


def _step(value, b, f, g, H):
    """As bmdsl/atoms/offset.py: the minimum-norm Newton step (no step along a direction the loss
    is invariant to, as cross-entropy along 1), else Levenberg-Marquardt steps with a
    growing shift (a zero Hessian); None when nothing decreases F."""
    step = torch.linalg.pinv(H, rtol=1e-10, hermitian=True) @ g
    # only where g lies (mostly) in H's range: else H misses a direction that matters
    if float(torch.linalg.norm(g - H @ step)) <= 0.5 * float(torch.linalg.norm(g)) and \
            float(g @ step) > 0 and value(b - step) <= f - 1e-4 * float(g @ step):
        return step
    eye = torch.eye(len(b), dtype=b.dtype, device=b.device)
    lam = 1e-6 * max(float(H.diagonal().sum()) / len(b), float(g.abs().max()), 1e-300)
    for _ in range(40):
        step = torch.linalg.solve(H + lam * eye, g)
        if value(b - step) <= f - 1e-4 * float(g @ step):
            return step
        lam *= 10
    return None


def best_offset(F, yhat, y, c, start=None):
    """(b*, H) for F(yhat + 1 b^T, y): b* [c] and the Hessian in b there [c, c], by
    Newton's method (`_step`) until the gradient reaches its rounding floor."""
    Yh, shape = yhat.detach().reshape(-1, c), yhat.shape
    b = torch.zeros(c, dtype=Yh.dtype, device=Yh.device) if start is None else start.clone()
    eye = torch.eye(c, dtype=Yh.dtype, device=Yh.device)
    value = lambda b: float(F((Yh + b).reshape(shape), y))     # noqa: E731
    scale, H, g_old = None, eye, float("inf")
    for _ in range(NEWTON_ITERS):
        f, g, leaf = _gradient(F, Yh, y, b, shape)
        with torch.enable_grad():
            H = torch.stack([torch.autograd.grad(g[i], leaf, retain_graph=True)[0]
                             for i in range(c)]).detach()
        g, f = g.detach(), float(f.detach())
        if scale is None:        # as bmdsl/atoms/offset.py: until the gradient's rounding floor
            with torch.enable_grad():
                Yg = (Yh + b).detach().requires_grad_(True)
                (rows,) = torch.autograd.grad(F(Yg.reshape(shape), y), Yg)
            scale = max(1.0, float(rows.abs().sum()))
        gmax = float(g.abs().max())
        if gmax <= 1e-15 * scale or (gmax <= 1e-8 * scale and gmax > 0.5 * g_old):
            break
        g_old = gmax
        step = _step(value, b, f, g, 0.5 * (H + H.T))
        if step is None:
            break
        b = b - step
    return b.detach(), H


def offset_loss(F, c):
    """F_b as a callable F_b(yhat, y) -> scalar (module docstring); `F_b.offset(yhat, y)`
    gives b* itself (the exported network's output bias)."""
    last = [None]

    def offset(yhat, y):
        start = last[0] if last[0] is not None and last[0].dtype == yhat.dtype else None
        b, H = best_offset(F, yhat, y, c, None if start is None else start.to(yhat.device))
        last[0] = b
        return b, H

    def F_b(yhat, y):
        b, H = offset(yhat, y)
        Yh = yhat.reshape(-1, c)
        if yhat.requires_grad:       # one differentiable Newton step: b~(Yhat) = b* + O(g)
            _, g, _ = _gradient(F, Yh, y, b, yhat.shape)
            b = b - torch.linalg.pinv(H, rtol=1e-10, hermitian=True) @ g
        return F((Yh + b).reshape(yhat.shape), y)

    F_b.offset = lambda yhat, y: offset(yhat, y)[0]
    return F_b
