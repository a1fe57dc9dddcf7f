"""A Levenberg-Marquardt Newton method on the BM factors, for C = R = l2 (full batch).

Per iteration (see docs/trainer.md for the measurements that made it the default):
1. balance: Z_k = U_k V_k^T is re-factored from its SVD as U_k = A sqrt(S), V_k = B sqrt(S)
   (for C = R = l2 this minimizes the regularizer at fixed Z_k, so the objective can only
   drop, and every stationary point of (14) is balanced); units with a zero singular
   value are frozen at 0 -- they are degenerate directions of the Hessian. With ReLU
   cones (q = 1 only) the units are merged by the sign of v instead, which keeps u in K_k.
2. escape: where the part of G_k = L_k^*(grad F) normal to the current row/column spaces
   has sigma_max > beta, a frozen unit is set to its top singular pair with the best
   scale (a convex line search in Z = t a b^T), since Newton cannot grow a unit from 0.
3. a damped Newton step on the active units: H = J^T (d^2 F) J + beta I + the bilinear
   cross blocks G_k between u_kj and v_kj (+ the augmented-Lagrangian blocks for ReLU),
   solved by Cholesky with H + mu I; mu follows the ratio of actual to predicted decrease.
"""
import torch

from .activeset import basis, candidates, expand_step, max_step, reduce_system


def balance(U, V, tol=1e-12):
    """SVD re-factorization per pattern; returns U, V, active [P, m], A, B (bases)."""
    P, m = U.shape[:2]
    u, v = U.reshape(P, m, -1), V.reshape(P, m, -1)
    A, s, Bh = torch.linalg.svd(u.transpose(1, 2) @ v, full_matrices=False)
    r = min(m, s.shape[1])
    keep = s[:, :r] > tol * max(float(s.max()), 1e-300)
    root = (s[:, :r] * keep).sqrt()
    Un, Vn = torch.zeros_like(u), torch.zeros_like(v)
    Un[:, :r] = (A[:, :, :r] * root[:, None, :]).transpose(1, 2)
    Vn[:, :r] = Bh[:, :r, :] * root[:, :, None]
    active = torch.zeros(P, m, dtype=torch.bool, device=U.device)
    active[:, :r] = keep
    return (Un.reshape(U.shape), Vn.reshape(V.shape), active,
            A[:, :, :r] * keep[:, None, :], Bh[:, :r, :] * keep[:, :, None])


def balance_signed(U, V):
    """q = 1 with cones: w+ = sum_{v>0} u v and w- = -sum_{v<0} u v stay in the cone K_k
    (a convex cone); one unit each, u = w / sqrt|w|, v = +-sqrt|w|."""
    P, m = U.shape[:2]
    u, v = U.reshape(P, m, -1), V.reshape(P, m)
    Un, Vn = torch.zeros_like(u), torch.zeros_like(v)
    for slot, sign in ((0, 1.0), (1, -1.0)):
        w = (u * torch.relu(sign * v)[:, :, None]).sum(1)
        size = w.norm(dim=1)
        root = size.sqrt()
        Un[:, slot] = torch.where(size[:, None] > 0, w / root.clamp_min(1e-300)[:, None], 0.0)
        Vn[:, slot] = sign * root
    active = torch.zeros(P, m, dtype=torch.bool, device=U.device)
    active[:, :2] = Vn[:, :2] != 0
    return Un.reshape(U.shape), Vn.reshape(V.shape), active


def _line_search_z(phi, iters=50):
    """argmin_{s >= 0} of a convex phi(s) by safeguarded 1-D Newton (exact for squared)."""
    s = torch.zeros((), dtype=torch.float64)
    for _ in range(iters):
        x = s.clone().requires_grad_(True)
        (d1,) = torch.autograd.grad(phi(x), x, create_graph=True)
        (d2,) = torch.autograd.grad(d1, x)
        if d2 <= 0:
            break
        new = torch.clamp(x.detach() - d1.detach() / d2, min=0.0)
        if abs(float(new - s)) <= 1e-14 * max(1.0, abs(float(s))):
            s = new
            break
        s = new
    return float(s)


def _loss_gradient(problem, U, V):
    """Yhat and grad F(Yhat)."""
    with torch.no_grad():
        yhat = problem.predict(U, V)
    y0 = yhat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(problem.F(y0, problem.Y), y0)
    return yhat, grad


def _grow(problem, U, V, active, yhat, du, dv, w, slot):
    """Add the units (du, dv) (scaled by sqrt(w_k)) in slot[k] with the best common scale t:
    Z_k += t w_k u v^T changes F along a line and costs beta t w_k (balanced units)."""
    P, m = U.shape[:2]
    ks = torch.arange(P, device=U.device)
    with torch.no_grad():
        step = problem.predict(du.reshape(U.shape), dv.reshape(V.shape))
    total = float(w.sum())

    def phi(t):
        return problem.F(yhat + t * step, problem.Y) + problem.beta * t * total

    t = _line_search_z(phi)
    if t <= 0:
        return U, V, active
    U = U + (du * t ** 0.5).reshape(U.shape)
    V = V + (dv * t ** 0.5).reshape(V.shape)
    active = active.clone()
    active[ks[w > 0], slot[w > 0]] = True
    return U, V, active


def escape(problem, U, V, active, A, B):
    """Add one unit per pattern along the top singular pair of (I - A A^T) G_k (I - B^T B)
    where it exceeds beta (design.md sec. 2: a certificate violation); returns the
    largest ratio sigma / beta found (<= 1 means nothing was added)."""
    P, m = U.shape[:2]
    yhat, grad = _loss_gradient(problem, U, V)
    G = problem.adjoint(grad)
    eye_p = torch.eye(problem.p, dtype=G.dtype, device=G.device)
    eye_q = torch.eye(problem.q, dtype=G.dtype, device=G.device)
    N = (eye_p - A @ A.transpose(1, 2)) @ G @ (eye_q - B.transpose(1, 2) @ B)
    a, s, bh = torch.linalg.svd(N, full_matrices=False)
    free = ~active
    w = torch.relu(s[:, 0] - problem.beta) * free.any(1)
    ratio = float(s[:, 0].max()) / problem.beta
    if float(w.max()) <= 0:
        return U, V, active, ratio
    ks = torch.arange(P, device=U.device)
    j = free.to(torch.int64).argmax(1)
    du = torch.zeros((P, m, problem.p), dtype=U.dtype, device=U.device)
    dv = torch.zeros((P, m, problem.q), dtype=U.dtype, device=U.device)
    du[ks, j] = a[:, :, 0] * w.sqrt()[:, None]
    dv[ks, j] = -bh[:, 0, :] * w.sqrt()[:, None]
    U, V, active = _grow(problem, U, V, active, yhat, du, dv, w, j)
    return U, V, active, ratio


def project_cones(S, c, iters=300):
    """Approximate projections of c_k [P, p] onto the cones {u : S_k u >= 0}, S_k [P, N, p]:
    accelerated projected gradient on the dual, min_{lam >= 0} 0.5 ||c + S^T lam||^2,
    u = c + S^T lam (Moreau). Used only to pick escape directions."""
    L = float(torch.linalg.matrix_norm(S, ord=2).max()) ** 2 or 1.0
    lam = torch.zeros(S.shape[:2], dtype=c.dtype, device=c.device)
    y, t = lam, 1.0
    for _ in range(iters):
        r = c + (S.transpose(1, 2) @ y[:, :, None])[:, :, 0]
        new = torch.relu(y - (S @ r[:, :, None])[:, :, 0] / L)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y, lam, t = new + (t - 1) / t_new * (new - lam), new, t_new
    return c + (S.transpose(1, 2) @ lam[:, :, None])[:, :, 0]


def _into_cone(S, u, h):
    """u + tau h with the least tau >= 0 making S u + tau S h >= 0 (h is the pattern's own
    gate, strictly inside its cell on every non-zero row): exact feasibility, batched."""
    s, sh = (S @ u[:, :, None])[:, :, 0], (S @ h[:, :, None])[:, :, 0]
    need = torch.where((s < 0) & (sh > 0), -s / sh.clamp_min(1e-300), torch.zeros_like(s))
    return u + need.amax(1, keepdim=True) * h


def escape_signed(problem, U, V, active):
    """q = 1 with cones: slot 0 holds v > 0, slot 1 v < 0. A dead slot is revived along
    u = Proj_{K_k}(-+g_k) / norm when max_{u in K_k, |u| <= 1} -+<g_k, u> > beta (the cone
    dual norm of the certificate after eq. (20)); the direction is made exactly feasible
    by a shift along the pattern's gate. Only patterns with ||g_k|| > beta can qualify."""
    P, m = U.shape[:2]
    yhat, grad = _loss_gradient(problem, U, V)
    g = problem.adjoint(grad)[:, :, 0]                                  # [P, p]
    v = V.reshape(P, m)
    dead = (v[:, :2] == 0).any(1) & (g.norm(dim=1) > problem.beta)
    if not bool(dead.any()):
        return U, V, active
    ks = torch.nonzero(dead)[:, 0]
    M = problem.layer_basis().reshape(problem.p, -1).T                 # [N, p]
    S = (2 * problem.D[ks] - 1).reshape(len(ks), -1)[:, :, None] * M[None]
    h = problem.gates[ks].reshape(len(ks), -1)
    for slot, sign in ((0, 1.0), (1, -1.0)):
        u = _into_cone(S, project_cones(S, -sign * g[ks]), h)
        u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-300)
        w = torch.zeros(P, dtype=U.dtype, device=U.device)
        w[ks] = torch.relu((-sign * g[ks] * u).sum(1) - problem.beta) * (v[ks, slot] == 0)
        if float(w.max()) <= 0:
            continue
        du = torch.zeros((P, m, problem.p), dtype=U.dtype, device=U.device)
        dv = torch.zeros((P, m, 1), dtype=U.dtype, device=U.device)
        du[ks, slot] = u * w[ks].sqrt()[:, None]
        dv[:, slot, 0] = sign * w.sqrt()
        slots = torch.full((P,), slot, dtype=torch.int64, device=U.device)
        U, V, active = _grow(problem, U, V, active, yhat, du, dv, w, slots)
        yhat, _ = _loss_gradient(problem, U, V)
        v = V.reshape(P, m)
    return U, V, active


def hessian(problem, U, V, active):
    """Dense Hessian of the objective in the active units, ordered (all u, then all v)."""
    P, m = U.shape[:2]
    p, q, na = problem.p, problem.q, int(active.sum())
    JU = problem.jac_u(V)[:, active].reshape(-1, na * p)
    JV = problem.jac_v(U)[:, active].reshape(-1, na * q)
    J = torch.cat([JU, JV], 1)
    yhat = problem.predict(U, V).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(problem.F(yhat, problem.Y), yhat, create_graph=True)
    if problem.spec["loss"] == "squared":
        WJ = J
    else:   # d^2F J by Hessian-vector products of the loss, one per column
        cols = J.T.reshape((J.shape[1],) + tuple(yhat.shape))
        WJ = torch.stack([torch.autograd.grad(grad, yhat, c, retain_graph=True)[0].reshape(-1)
                          for c in cols], 1)
    H = J.T @ WJ
    H.diagonal().add_(problem.beta)
    G = problem.adjoint(grad.detach())
    k = torch.arange(P, device=U.device)[:, None].expand(P, m)[active]
    t = torch.arange(na, device=U.device)
    iu = (t[:, None, None] * p + torch.arange(p, device=U.device)[None, :, None]).expand(na, p, q)
    iv = (na * p + t[:, None, None] * q + torch.arange(q, device=U.device)[None, None, :]).expand(na, p, q)
    H.index_put_((iu.reshape(-1), iv.reshape(-1)), G[k].reshape(-1), accumulate=True)
    H.index_put_((iv.reshape(-1), iu.reshape(-1)), G[k].reshape(-1), accumulate=True)
    return H


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
    """One damped Newton step on the active units; objective(U, V) -> scalar. mu keeps
    H + mu I positive definite and follows the ratio of actual to predicted decrease;
    when the full step fails, halving it (Armijo) is tried before mu grows. With
    cones=True the step is the active-set projected step of activeset.py (feasible
    iterates). Returns U, V, f, mu, predicted decrease."""
    Ur, Vr = U.detach().requires_grad_(True), V.detach().requires_grad_(True)
    f = objective(Ur, Vr)
    gu, gv = torch.autograd.grad(f, (Ur, Vr))
    f = float(f.detach())
    P, m = U.shape[:2]
    na, p = int(active.sum()), problem.p
    g = torch.cat([gu.reshape(P, m, -1)[active].reshape(-1),
                   gv.reshape(P, m, -1)[active].reshape(-1)])
    if g.numel() == 0:
        return U, V, f, mu, 0.0
    H = hessian(problem, U, V, active)
    cone = None
    if cones:
        cone = candidates(problem, U, active, gu.reshape(P, m, -1)[active]) + (na, p)

    def moved(d, a):
        Un, Vn = U.detach().clone(), V.detach().clone()
        Un.reshape(P, m, -1)[active] += a * d[:na * p].reshape(-1, p)
        Vn.reshape(P, m, -1)[active] += a * d[na * p:].reshape(-1, problem.q)
        with torch.no_grad():
            return Un, Vn, float(objective(Un, Vn))

    while True:
        found = _direction(H, g, mu, cone)
        if found is None:
            mu = max(4.0 * mu, 1e-12)
            continue
        d, Hr, gr = found[:3]
        dr = d if cone is None else found[4]
        pred = -float(gr @ dr + 0.5 * dr @ (Hr @ dr))
        slope = -float(gr @ dr)
        if pred <= 1e-15 * max(1.0, abs(f)) or mu > 1e15:
            return U, V, f, mu, pred
        full = 1.0
        if cone is not None:
            dU = torch.zeros_like(U)
            dU.reshape(P, m, -1)[active] = d[:na * p].reshape(-1, p)
            full = max_step(problem, U, dU)
        Un, Vn, fn = moved(d, full)
        ratio = (f - fn) / (pred * full) if full > 0 else -1.0
        mu = mu / 5.0 if ratio > 0.75 else (mu * 4.0 if ratio < 0.25 else mu)
        if fn < f:
            return Un, Vn, fn, max(mu, 1e-15), pred
        a = 0.5 * full
        while a > 1e-3 * full:
            Un, Vn, fn = moved(d, a)
            if fn <= f - 1e-4 * a * slope:
                return Un, Vn, fn, mu, pred
            a *= 0.5


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
    scale = 1e-13 * max(1.0, abs(f))
    return U, V, f, mu, f0 - f <= scale or pred <= scale
