"""A few cheap proximal-gradient iterations on the convex program, for better dual points.

Why: the dual candidate v = t grad F(Yhat) built from the certified point itself is only
first-order accurate (the residual shrinks like the square root of the gap), so the bound
lags the true gap.  grad F at a *better* primal point Z' is a better dual direction, and
it is still only a candidate: `dual.py` scales it by its exactly computed dual norms, so
the refinement can never make a certificate invalid, only tighter.

Method: FISTA (Beck & Teboulle 2009) on min_Z F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||_D
(eq. (16)) with backtracking on the step and gradient-based adaptive restart
(O'Donoghue & Candes 2015).  Only for pairs with a cheap prox (`prox.d_norm_prox`).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .samples import Samples


def _power(apply, shape, iters: int = 30, seed: int = 0) -> float:
    """lambda_max of a PSD map by power iteration (a slight under-estimate: the
    backtracking in fista corrects the step)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    lam = 0.0
    for _ in range(iters):
        y = apply(x)
        lam = float(np.linalg.norm(y))
        if lam == 0.0:
            return 0.0
        x = y / lam
    return lam


def operator_norm_sq(bound, iters: int = 30, seed: int = 0, samples=None) -> float:
    """||L||^2 = lambda_max(L^* L)."""
    samples = samples or Samples(bound)
    return _power(lambda x: samples.adjoint(samples.predict(x)),
                  (bound.P, bound.p, bound.q), iters, seed)


def _smooth_part(bound, quadratic, samples):
    """Z -> F(L Z) and Z -> (F(L Z), L^*(grad F(L Z))), one prediction (or one product
    with G) per call; from `quadratic` (the squared loss's sufficient statistics
    G = L^* L, b = L^* Y, ||Y||^2: trainer/runtime/gram.py) when given, which makes an
    iteration independent of the number of samples."""
    if quadratic is not None:
        G, b, yy = quadratic

        def value_and_grad(Z):
            z = Z.ravel()
            Gz = G @ z
            return 0.5 * z @ Gz - b @ z + 0.5 * yy, (Gz - b).reshape(Z.shape)
        return (lambda Z: value_and_grad(Z)[0]), value_and_grad, \
            _power(lambda x: G @ x, b.shape)
    def value_and_grad(Z):
        yhat = samples.predict(Z)
        return samples.value(yhat), samples.adjoint(samples.grad(yhat))
    return (lambda Z: samples.value(samples.predict(Z))), value_and_grad, \
        operator_norm_sq(bound, samples=samples)


def fista(bound, Z0: np.ndarray, prox, iters: int, quadratic=None,
          samples=None) -> Iterator[tuple[int, np.ndarray]]:
    """Yields (iteration, Z) after every iteration, starting with (0, Z0); `quadratic`
    = (G, b, ||Y||^2) for the squared loss (see _smooth_part); `samples` (samples.py)
    evaluates the sums over samples."""
    beta = bound.beta
    smooth, value_and_grad, lip = _smooth_part(bound, quadratic, samples or Samples(bound))
    lip = max(lip, 1e-12)
    Z = np.array(Z0, dtype=float)
    W, t = Z.copy(), 1.0
    yield 0, Z
    for it in range(1, iters + 1):
        fW, gW = value_and_grad(W)                                    # gW [P, p, q]
        for _ in range(60):            # backtracking: the quadratic model must majorize
            Zn = prox(W - gW / lip, beta / lip)
            D = Zn - W
            if smooth(Zn) <= fW + np.sum(gW * D) + 0.5 * lip * np.sum(D * D) + 1e-12 * abs(fW):
                break
            lip *= 2.0
        if np.sum((W - Zn) * (Zn - Z)) > 0:   # momentum points uphill: restart
            t, W = 1.0, Zn
        else:
            tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            W, t = Zn + ((t - 1.0) / tn) * (Zn - Z), tn
        Z = Zn
        yield it, Z
