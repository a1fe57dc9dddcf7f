"""A Levenberg-Marquardt Newton method on the BM factors, for C = R = l2 (full batch).

Per iteration (see docs/trainer.md for the measurements that made it the default):
1. balance: Z_k = U_k V_k^T is re-factored from its SVD as U_k = A sqrt(S), V_k = B sqrt(S)
   (for C = R = l2 this minimizes the regularizer at fixed Z_k, so the objective can only
   drop, and every stationary point of (14) is balanced); units with a zero singular
   value are frozen at 0 -- they are degenerate directions of the Hessian. With ReLU
   cones (q = 1 only) the units are merged by the sign of v instead, which keeps u in K_k.
2. escape (escape.py): a frozen unit is grown where the certificate says it pays.
3. a damped Newton step on the active units: H = J^T (d^2 F) J + beta I + the bilinear
   cross blocks G_k between u_kj and v_kj, solved by Cholesky with H + mu I, or with the
   Gauss-Newton part J^T (d^2 F) J + beta I + mu I where H + mu I is indefinite (mu is
   grown instead only where Gauss-Newton stalls: a saddle, or its linear tail); mu
   follows the ratio of actual to predicted decrease. With ReLU cones the step is
   projected on the binding constraints and cut at the first boundary (activeset.py):
   the iterates stay in the cones (19), so no penalty is needed.
"""
import math

import torch

from .activeset import basis, candidates, expand_step, max_step, reduce_system
from .escape import escape, escape_signed

GN_STALL = 1e-8   # relative decrease below which a Gauss-Newton step counts as stalled
MU_MAX = 1e15     # damping beyond which no step is tried: the step would be ~ -g / mu
MAX_TRIES = 200   # models tried per step at most (mu grows 4x per failure: 1e-12 -> MU_MAX
                  # takes 45); past it the step is abandoned as settled, never an endless loop


def balance(U, V, tol=1e-12):
    """SVD re-factorization per pattern; returns U, V, active [P, m], A, B (bases)."""
    P, m = U.shape[:2]
    u, v = U.reshape(P, m, -1), V.reshape(P, m, -1)
    A, s, Bh = torch.linalg.svd(u.transpose(1, 2) @ v, full_matrices=False)
    r = min(m, s.shape[1])
    tol = max(tol, 10 * torch.finfo(U.dtype).eps)
    keep = s[:, :r] > tol * max(float(s.max()), 1e-300)
    root = (s[:, :r] * keep).sqrt()
    Un, Vn = torch.zeros_like(u), torch.zeros_like(v)
    Un[:, :r] = (A[:, :, :r] * root[:, None, :]).transpose(1, 2)
    Vn[:, :r] = Bh[:, :r, :] * root[:, :, None]
    active = torch.zeros(P, m, dtype=torch.bool, device=U.device)
    active[:, :r] = keep
    return (Un.reshape(U.shape), Vn.reshape(V.shape), active,
            A[:, :, :r] * keep[:, None, :], Bh[:, :r, :] * keep[:, :, None])


def balance_signed(U, V, tol=1e-10):
    """q = 1 with cones: w+ = sum_{v>0} u v and w- = -sum_{v<0} u v stay in the cone K_k
    (a convex cone); one unit each, u = w / sqrt|w|, v = +-sqrt|w|. Units below tol times
    the largest are set to 0: a tiny unit crawls out of the saddle at 0, while a zero one
    is regrown at the right scale by escape_signed."""
    P, m = U.shape[:2]
    u, v = U.reshape(P, m, -1), V.reshape(P, m)
    Un, Vn = torch.zeros_like(u), torch.zeros_like(v)
    parts = [(u * torch.relu(sign * v)[:, :, None]).sum(1) for sign in (1.0, -1.0)]
    largest = max(float(w.norm(dim=1).max()) for w in parts)
    tol = max(tol, 100 * torch.finfo(U.dtype).eps)
    for slot, (sign, w) in enumerate(zip((1.0, -1.0), parts)):
        size = w.norm(dim=1)
        size = torch.where(size > tol * largest, size, torch.zeros_like(size))
        root = size.sqrt()
        Un[:, slot] = torch.where(size[:, None] > 0, w / root.clamp_min(1e-300)[:, None], 0.0)
        Vn[:, slot] = sign * root
    active = torch.zeros(P, m, dtype=torch.bool, device=U.device)
    active[:, :2] = Vn[:, :2] != 0
    return Un.reshape(U.shape), Vn.reshape(V.shape), active


def hessian(problem, U, V, active):
    """Dense Hessian of the objective in the active units, ordered (all u, then all v),
    and its Gauss-Newton part J^T (d^2 F) J + beta I (positive definite)."""
    P, m = U.shape[:2]
    p, q, na = problem.p, problem.q, int(active.sum())
    gn = problem.gauss_newton(U, V, active)
    gn.diagonal().add_(problem.beta)
    H = gn.clone()
    G = problem.lifted_gradient(U, V)
    k = torch.arange(P, device=U.device)[:, None].expand(P, m)[active]
    t = torch.arange(na, device=U.device)[:, None, None]
    a = torch.arange(p, device=U.device)[None, :, None]
    b = torch.arange(q, device=U.device)[None, None, :]
    iu = (t * p + a).expand(na, p, q)
    iv = (na * p + t * q + b).expand(na, p, q)
    H.index_put_((iu.reshape(-1), iv.reshape(-1)), G[k].reshape(-1), accumulate=True)
    H.index_put_((iv.reshape(-1), iu.reshape(-1)), G[k].reshape(-1), accumulate=True)
    return H, gn


def _direction(H, g, mu, cone):
    """-(H + mu I)^{-1} g, or None when H + mu I is not positive definite. With cones
    (rows, near, binding, na, p): the step in the null space of the binding rows; a near
    row that the step would cross is made binding and the step recomputed."""
    if cone is None:
        L, info = torch.linalg.cholesky_ex(H + mu * torch.eye(H.shape[0], dtype=H.dtype,
                                                               device=H.device))
        return None if int(info) else (-torch.cholesky_solve(g[:, None], L)[:, 0], H, g)
    rows, near, binding, na, p = cone
    binding = binding.clone()
    for _ in range(p + 1):
        T = basis(rows, binding)
        Hr, gr = reduce_system(T, H, g, na, p)
        L, info = torch.linalg.cholesky_ex(Hr + mu * torch.eye(Hr.shape[0], dtype=H.dtype,
                                                                 device=H.device))
        if int(info):
            return None
        dr = -torch.cholesky_solve(gr[:, None], L)[:, 0]
        d = expand_step(T, dr, na, p)
        crossing = near & ~binding & ((rows @ d[:na * p].reshape(na, p, 1))[:, :, 0] < 0)
        if not bool(crossing.any()):
            break
        binding |= crossing
    return d, Hr, gr, T, dr


def newton_step(problem, U, V, active, objective, mu, cones=False):
    """One damped Newton step on the active units; objective(U, V) -> scalar. The model
    is H + mu I where that is positive definite (quadratic convergence near a minimum),
    else the Gauss-Newton part J^T (d^2 F) J + beta I + mu I (always definite); only when
    a Gauss-Newton step stalls (relative decrease < GN_STALL: next to a saddle, which it
    cannot leave, or in its linear tail) is mu grown until H + mu I is definite.
    Measured (docs/trainer.md): the BM Hessian stays indefinite along most of the path,
    and growing mu every time damps the weakly curved directions (~beta) by the negative
    curvature (~10 beta): about twice the steps. mu follows the ratio of actual to
    predicted decrease; when the full step fails, halving it (Armijo) is tried
    before mu grows. With cones=True the step is the active-set projected step of
    activeset.py (feasible iterates). Returns U, V, f, mu, predicted decrease."""
    Ur, Vr = U.detach().requires_grad_(True), V.detach().requires_grad_(True)
    f = objective(Ur, Vr)
    gu, gv = torch.autograd.grad(f, (Ur, Vr))
    f = float(f.detach())
    if not (math.isfinite(f) and bool(torch.isfinite(gu).all())
            and bool(torch.isfinite(gv).all())):
        raise FloatingPointError(f"newton: the objective ({f}) or its gradient is not finite at "
                                 "the current factors")
    P, m = U.shape[:2]
    na, p = int(active.sum()), problem.p
    g = torch.cat([gu.reshape(P, m, -1)[active].reshape(-1),
                   gv.reshape(P, m, -1)[active].reshape(-1)])
    if g.numel() == 0:
        return U, V, f, mu, 0.0
    H, gn = hessian(problem, U, V, active)
    if not bool(torch.isfinite(H).all()):
        raise FloatingPointError("newton: the Hessian is not finite at the current factors "
                                 "(the data's scale overflows float64)")
    cone = None
    if cones:
        cone = candidates(problem, U, active, gu.reshape(P, m, -1)[active]) + (na, p)

    def moved(d, a):
        Un, Vn = U.detach().clone(), V.detach().clone()
        Un.reshape(P, m, -1)[active] += a * d[:na * p].reshape(-1, p)
        Vn.reshape(P, m, -1)[active] += a * d[na * p:].reshape(-1, problem.q)
        with torch.no_grad():
            return Un, Vn, float(objective(Un, Vn))

    use_gn = cone is None
    for _ in range(MAX_TRIES):
        found = _direction(H, g, mu, cone)
        model_gn = found is None and use_gn
        if model_gn:                            # H + mu I indefinite: the Gauss-Newton model
            found = _direction(gn, g, mu, None)
        if found is None:
            if mu > MU_MAX:                     # no definite model at any damping: settled
                return U, V, f, mu, 0.0
            mu = max(4.0 * mu, 1e-12)
            continue
        d, Hr, gr = found[:3]
        dr = d if cone is None else found[4]
        pred = -float(gr @ dr + 0.5 * dr @ (Hr @ dr))
        slope = -float(gr @ dr)
        if pred <= max(1e-15, torch.finfo(U.dtype).eps) * max(1.0, abs(f)) or mu > 1e15:
            if model_gn:
                use_gn = False
                continue
            return U, V, f, mu, pred
        full = 1.0
        if cone is not None:
            dU = torch.zeros_like(U)
            dU.reshape(P, m, -1)[active] = d[:na * p].reshape(-1, p)
            full = max_step(problem, U, dU)
        Un, Vn, fn = moved(d, full)
        if model_gn and f - fn <= GN_STALL * max(1.0, abs(f)):
            use_gn = False    # Gauss-Newton cannot leave a saddle: the full model
            continue
        # a non-finite trial value counts as a failure (mu grows), never as "no change"
        ratio = (f - fn) / (pred * full) if full > 0 and math.isfinite(fn) else -1.0
        mu = mu / 5.0 if ratio > 0.75 else (mu * 4.0 if ratio < 0.25 else mu)
        if fn < f:
            return Un, Vn, fn, max(mu, 1e-15), pred
        a = 0.5 * full
        while a > 1e-3 * full:
            Un, Vn, fn = moved(d, a)
            if fn <= f - 1e-4 * a * slope:
                return Un, Vn, fn, mu, pred
            a *= 0.5
    return U, V, f, mu, 0.0     # MAX_TRIES models without a decrease: settled at this point


def newton_iteration(problem, U, V, objective, mu):
    """balance (+ escape) and one Newton step; returns U, V, f, mu, settled (no progress
    possible any more at this damping)."""
    if not problem.cone:
        U, V, active, A, B = balance(U, V)
        U, V, active, _ = escape(problem, U, V, active, A, B)
    elif problem.q == 1:
        U, V, active = balance_signed(U, V)
        U, V, active = escape_signed(problem, U, V, active)
    else:
        active = torch.ones(U.shape[:2], dtype=torch.bool, device=U.device)
    f0 = float(objective(U, V).detach())
    U, V, f, mu, pred = newton_step(problem, U, V, active, objective, mu, problem.cone)
    scale = max(1e-13, 10 * torch.finfo(U.dtype).eps) * max(1.0, abs(f))
    return U, V, f, mu, f0 - f <= scale or pred <= scale
