"""The best dual point on a ray: argmax_t -F*(t g) (docs/theory.md sec. 6).

The Fenchel dual of Sahiner et al. 2024, eq. (112)-(113) is concave in the dual point, so
on the ray of g = grad F(Yhat) its objective is unimodal: a golden-section search finds
the best scale unless the loss declares a closed form (`Loss.closed_form_scale`).
"""
from __future__ import annotations

import numpy as np

from ..kernel.search import golden_max

__all__ = ["best_dual_scale"]


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
    cands = [lo, hi, golden_max(phi, lo, hi, rtol=1e-14)] + ([0.0] if lo <= 0.0 <= hi else [])
    return float(max(cands, key=phi))
