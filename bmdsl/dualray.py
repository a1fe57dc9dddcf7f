"""The best dual point on a ray: argmax_t -F*(t g) (docs/theory.md sec. 6).

The Fenchel dual of Sahiner et al. 2024, eq. (112)-(113) is concave in the dual point, so
on the ray of g = grad F(Yhat) its objective is unimodal: a golden-section search finds
the best scale unless the loss declares a closed form (`Loss.closed_form_scale`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["golden_max", "best_dual_scale"]


def golden_max(phi: Callable[[float], float], a: float, b: float, iters: int = 200) -> float:
    """argmax of phi on [a, b] by golden section: exact for a concave (unimodal) phi,
    otherwise a local maximum. Uses values only, so the infinite slope of x log x at a
    conjugate's domain boundary does not disturb it."""
    r = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = phi(c), phi(d)
    for _ in range(iters):
        if b - a <= 1e-14 * max(1.0, abs(a), abs(b)):
            break
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - r * (b - a)
            fc = phi(c)
        else:
            a, c, fc = c, d, fd
            d = a + r * (b - a)
            fd = phi(d)
    return 0.5 * (a + b)


def best_dual_scale(loss, g, y, t_max: float) -> float:
    """argmax_{|t| <= t_max, F*(t g) < inf} -F*(t g): the best dual point on the ray of
    g = grad F(Yhat) (docs/theory.md sec. 6: v = t g, t_max = beta / max_k ||G_k||_D*).
    Never returns a point outside the conjugate's domain; t = 0 is always in it for valid Y."""
    g, y = np.asarray(g, dtype=float), np.asarray(y, dtype=float)
    lo, hi = loss.scale_domain(g, y)
    lo, hi = max(lo, -float(t_max)), min(hi, float(t_max))
    if not np.any(g) or hi <= lo:
        return 0.0 if lo <= 0.0 <= hi else float(lo)
    if loss.closed_form_scale is not None:
        return loss.closed_form_scale(g, y, lo, hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("the dual ray is unbounded: pass a finite t_max")
    phi = lambda t: -loss.conjugate(t * g, y)  # noqa: E731
    cands = [lo, hi, golden_max(phi, lo, hi)] + ([0.0] if lo <= 0.0 <= hi else [])
    return float(max(cands, key=phi))
