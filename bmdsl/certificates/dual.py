"""Feasible points of the Fenchel dual and their values: the always-valid lower bound on p*.

The convex program (16) (with patterns: min_Z F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||_D)
has the Fenchel dual

    max_v  -F*(v)   s.t.  ||L_k^*(v)||_D* <= beta  for all k,

and -F*(v) <= p* for every feasible v (weak duality; derivation in docs/certificates.md).
Every candidate here is made feasible by PROVABLE arguments only:

* a ray v = t g: ||L_k^*(t g)||_D* = |t| ||G_k||_D*, so |t| <= beta / max_k ||G_k||_D*
  (with the exact value or an upper bound of each dual norm) is feasible;
* two directions g_a, g_b with per-pattern norms n_a, n_b: by the triangle inequality
  a g_a + b g_b is feasible when |a| n_a[k] + |b| n_b[k] <= beta for all k.  This region
  contains the segment between the two scaled points (convex combinations of feasible
  points), so the pair search below is never worse than either point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernel.search import brent_max
from .dualnorms import PatternNorms
from .samples import Samples

_TINY = 1e-300


@dataclass(frozen=True)
class DualPoint:
    """A feasible dual point v = a g_a (+ b g_b) with value -F*(v) <= p*."""
    v: np.ndarray
    value: float
    source: str
    direction: np.ndarray      # g, the unscaled direction (for pair search)
    norms: PatternNorms        # ||L_k^*(g)||_D* of the direction


def scaled_point(bound, oracle, g: np.ndarray, source: str, samples=None,
                 G=None) -> DualPoint:
    """The best point t g on the feasible ray (`losses.best_dual_scale`); `samples`
    (samples.py) evaluates the sums over samples; G: L^*(g) where the caller has it (the
    certified point's own, eq. (20): one adjoint over the samples less)."""
    samples = samples or Samples(bound)
    g = np.asarray(g, dtype=float)
    norms = oracle(samples.adjoint(g) if G is None else G)
    t_max = bound.beta / max(norms.max, _TINY)
    t = samples.dual_scale(g, min(t_max, 1e300))
    return DualPoint(t * g, samples.dual_value(t * g), source, g, norms)


def pair_point(bound, a: DualPoint, b: DualPoint, angles: int = 16, samples=None) -> DualPoint:
    """max -F*(x g_a + y g_b) over |x| n_a[k] + |y| n_b[k] <= beta (all k): a search over
    directions theta, each scaled optimally on its ray; the grid is refined by Brent's method
    around the best angle.  Returns the better of a, b if nothing beats them."""
    samples, beta = samples or Samples(bound), bound.beta
    na, nb = a.norms.values, b.norms.values

    def on_ray(theta: float) -> tuple[float, np.ndarray]:
        c, s = np.cos(theta), np.sin(theta)
        w = c * a.direction + s * b.direction
        t_max = beta / max(float(np.max(abs(c) * na + abs(s) * nb)), _TINY)
        t = samples.dual_scale(w, min(t_max, 1e300))
        return samples.dual_value(t * w), t * w

    grid = np.linspace(0.0, np.pi, angles, endpoint=False)
    rays = [on_ray(th) for th in grid]
    i = int(np.argmax([r[0] for r in rays]))
    step = np.pi / angles
    # Brent's method around the best angle (kernel/search.py): ~10 rays where the golden
    # section took 24, each ray itself a 1-D search over all samples
    theta = brent_max(lambda th: on_ray(th)[0], grid[i] - step, grid[i] + step, rtol=1e-6)
    best_val, best_v = max((on_ray(theta), rays[i]), key=lambda r: r[0])
    base = max((a, b), key=lambda d: d.value)
    if best_val <= base.value:
        return base
    # The combination is a new direction whose per-pattern norms are only known to be
    # <= beta (triangle inequality): recorded as such, kind "upper".
    P = len(na)
    return DualPoint(best_v, best_val, f"pair({a.source}; {b.source})", best_v,
                     PatternNorms(np.full(P, beta), ("upper",) * P, ("triangle inequality",) * P))
