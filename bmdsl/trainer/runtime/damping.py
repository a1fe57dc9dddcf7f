"""The damped step of the cone interior point (interior.py), whose Newton model is only
local (the loss, unless quadratic, and the smoothed norms, whose curvature near a zero unit
is beta / eps): backtracking (Armijo) on the barrier merit

    phi(x, s) = F(A x) + beta sum_kj ||x_kj||_eps - target sum log s

(Nocedal & Wright, Numerical Optimization, sec. 19.4). The iterates are feasible (s = S x,
the constraints being linear), so phi needs no penalty of infeasibility.
"""
import torch

ARMIJO = 1e-4        # sufficient decrease of the merit
HALVINGS = 40        # backtracking halvings at most per iteration


def damped_step(ip, solve, step, ap, x, s, z, g, rd, rp, target):
    """(d, ds, dz, primal step length) for the interior point `ip` at (x, s, z): the
    corrected direction `step` where it descends on phi, else the centering direction
    alone, which does (it is -W^-1 grad phi with W positive definite); its step `ap` (to
    the boundary) halved until phi decreases enough. g: the smoothed objective's
    gradient at x; rd, rp: the dual and primal residuals."""
    d, ds, dz = step
    slope = _slope(ip, g, d, ds, s, target)
    if not slope < 0:
        d, ds, dz = ip._direction(solve, rd, rp, s, z, s * z - target)
        ap = min(1.0, 0.99 * ip._boundary(s, ds))
        slope = _slope(ip, g, d, ds, s, target)
    phi0, size = _merit(ip, x, s, target)
    a = ap
    for _ in range(HALVINGS if slope < 0 else 0):
        # rounding: phi is known to ~1e-15 of its terms' magnitude
        if _merit(ip, x + a * d, s + a * ds, target)[0] <= \
                phi0 + ARMIJO * a * slope + 1e-14 * size:
            break
        a *= 0.5
    return d, ds, dz, a


def _slope(ip, g, d, ds, s, target) -> float:
    """phi's directional derivative along (d, ds); x is shared by the shards, s is not."""
    barrier = ip.rs.sum(torch.where(ip.rows, ds / s, torch.zeros_like(s)), "a")
    return float((g * d).sum()) - target * barrier


def _merit(ip, x, s, target):
    """(phi, the sum of its terms' magnitudes) at x with slacks s."""
    f = ip.loss.value(ip.predict(x))
    norms = ip.beta * float(torch.sqrt((x * x).sum(2) + ip.smoothing ** 2).sum())
    logs = target * ip.rs.sum(torch.where(ip.rows, s, torch.ones_like(s)).log(), "a")
    return f + norms - logs, abs(f) + norms + abs(logs)
