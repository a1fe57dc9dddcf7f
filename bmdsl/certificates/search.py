"""The search for a good dual point: plain ray, refined primal points, pair combinations.

Order (each step keeps every earlier candidate, so the result is never worse than the
plain point):
1. plain: v = t grad F(Yhat) at the certified point, t optimal on the feasible ray;
   hints: the same for grad F(L(Z)) at other lifted points Z the caller knows to be
   near-optimal (the trainer passes the smooth iterate z of its lifted ADMM, whose
   L^*(grad F) = G z - b is ADMM's own dual estimate); directions: loss gradients given
   as they are (the lifted prox ADMM's multiplier rho a = grad F(u) at its split
   prediction u, which need not be L(Z) of any Z), scaled the same way;
2. refined: grad F at FISTA iterates started from the certified point (refine.py), scaled
   the same way, at iterations 10, 20, 40, ... up to `iters` (with the squared loss's
   Gram statistics `quadratic`: ranked in the lifted space, gram_candidate, and only the
   best two of them evaluated on the data).  Stops early once the
   refined primal value p_T is so close to the best dual value d that no dual point can
   change the relative bound (p - d)/d by more than a factor about 1 + 2 rho:
   p_T - d <= rho min(p - d, d), because d <= d* <= p* <= p_T bounds both the numerator
   change (d* - d <= p_T - d) and the denominator change; or once the bound is
   below FLOOR, the accuracy of float64 objective values summed over the data.
   Skipped when the caller's `target` (a fit's cert_tol) is already met by step 1's best
   candidate: the bound is then certified as asked, and the refinement (measured about 4 s
   on the n = 2000 CNN) could only tighten a bound nobody waits for;
3. pair: the best and the runner-up combined over the triangle-inequality region
   (dual.pair_point), which contains their convex combinations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dual import DualPoint, pair_point, scaled_point
from .primal import regularizer_lifted
from .prox import d_norm_prox
from .refine import fista
from .result import relative_gap
from .samples import Samples

RHO = 0.05
FLOOR = 1e-10


@dataclass(frozen=True)
class DualSearch:
    plain: DualPoint
    best: DualPoint
    iterations: int          # proximal-gradient iterations run (0: refinement not used)
    refinement: str          # what was done, or why not


def gram_candidate(bound, oracle, quadratic, Z) -> tuple[float, float]:
    """(F(L Z), -F*(t g)) for the squared loss from its sufficient statistics
    quadratic = (G = L^* L, b = L^* Y, ||Y||^2), g = L Z - Y, t optimal on the feasible ray
    (the squared loss's closed form: F*(v) = ||v||^2 / 2 + <v, Y>): the refinement's
    candidates ranked without touching the samples (measured 0.17 s a candidate on the
    n = 2000 self-attention cells, 5 a certificate). Only a ranking: the chosen points'
    dual value and norms are then computed on the data like every other candidate."""
    G, b, yy = quadratic
    z = Z.ravel()
    Gz = G @ z
    zGz, bz = float(z @ Gz), float(b @ z)
    norms = oracle((Gz - b).reshape(bound.P, bound.p, bound.q))   # L^*(g) = G z - b
    gg, gy = max(zGz - 2.0 * bz + yy, 0.0), bz - yy                # ||g||^2, <g, Y>
    t_max = bound.beta / max(norms.max, 1e-300)
    t = 0.0 if gg == 0.0 else float(np.clip(-gy / gg, -t_max, t_max))
    return 0.5 * zGz - bz + 0.5 * yy, -(0.5 * t * t * gg + t * gy)


def _same_ray(d, cands, rtol=1e-13) -> bool:
    """d is (to rounding) a candidate's direction already: its ray, scaled optimally, and
    every pair with it are already searched (a warm start's hint Z is often the certified
    point itself: measured, the pair search then spent ~26 dual evaluations, 0.1-0.4 s of
    a certificate at n = 2000, on one ray)."""
    size = float(np.linalg.norm(d))
    return any(float(np.linalg.norm(d - c.direction)) <= rtol * size for c in cands)


def _same_point(Z, Z0, rtol=1e-13) -> bool:
    """A hint that is (to rounding) the certified point itself (the lifted FISTA's after
    its hand-off: the product of the factors it hands over): its ray is the plain one,
    so not even its prediction (0.25 s on the digits CNN) is needed."""
    return float(np.linalg.norm(Z - Z0)) <= rtol * float(np.linalg.norm(Z0))


def search_dual(bound, oracle, g, Z0, objective: float, *, iters: int,
                quadratic=None, hints=(), samples=None, directions=(),
                target=None, G=None) -> DualSearch:
    """G: L^*(g) of the plain direction, where the caller has computed it."""
    samples = samples or Samples(bound)
    plain = scaled_point(bound, oracle, g, "plain: t grad F(Yhat) at the point", samples, G)
    cands = [plain]
    for Zh in hints:
        if _same_point(Zh, Z0):
            continue
        gh = samples.grad(samples.predict(Zh))
        if not _same_ray(gh, cands):
            cands.append(scaled_point(bound, oracle, gh, "hint: t grad F(L(Z)) at a given Z",
                                      samples))
    for d in directions:
        d = np.asarray(d, dtype=np.float64).reshape(np.shape(g))
        if not _same_ray(d, cands):
            cands.append(scaled_point(bound, oracle, d, "hint: t v for a given loss gradient v",
                                      samples))
    prox = None if bound.cone else d_norm_prox(bound.C, bound.R)
    done, note = 0, "not requested (refine_iters = 0)"
    unrefined = relative_gap(objective, max(c.value for c in cands))
    if target is not None and iters > 0 and unrefined <= target:
        note = f"skipped: the unrefined bound {unrefined:.3e} <= the target {target:.3e}"
    elif prox is None:
        what = "the ReLU-cone norm" if bound.cone else f"the NP-hard pair ({bound.C}, {bound.R})"
        note = f"not available: no cheap prox for {what}"
    elif iters > 0:
        marks, k = set(), 10
        while k < iters:
            marks.add(k)
            k *= 2
        marks.add(iters)
        lifted = []       # with `quadratic`: (value, iteration, Z) of the refined points
        for it, Z in fista(bound, Z0, prox, iters, quadratic, samples):
            if it not in marks:
                continue
            done = it
            if quadratic is None or not bound.loss.quadratic:
                yhat = samples.predict(Z)
                cands.append(scaled_point(bound, oracle, samples.grad(yhat),
                                          f"refined: {it} prox-gradient iterations", samples))
                best = max(cands, key=lambda c: c.value)
                p_smooth, best_value = samples.value(yhat), best.value
            else:
                p_smooth, value = gram_candidate(bound, oracle, quadratic, Z)
                lifted = sorted(lifted + [(value, it, Z)], key=lambda c: -c[0])[:2]
                best_value = max(max(c.value for c in cands), lifted[0][0])
            p_ref = p_smooth + regularizer_lifted(bound, Z)[0]
            if p_ref - best_value <= RHO * min(objective - best_value, best_value):
                note = (f"stopped after {it} iterations: p_refined - d <= {RHO} min(p - d, d), "
                        "no dual point could tighten the bound by more than ~10%")
                break
            if objective - best_value <= FLOOR * abs(best_value):
                note = f"stopped after {it} iterations: bound below {FLOOR:g}"
                break
        else:
            note = f"{done} iterations (budget)"
        for _, it, Z in lifted:     # the best two (the pair search's), on the data
            cands.append(scaled_point(bound, oracle, samples.grad(samples.predict(Z)),
                                      f"refined: {it} prox-gradient iterations", samples))
    ranked = sorted(cands, key=lambda c: c.value, reverse=True)
    best = ranked[0]
    if len(ranked) > 1:
        best = pair_point(bound, ranked[0], ranked[1], samples=samples)
    return DualSearch(plain, best, done, note)
