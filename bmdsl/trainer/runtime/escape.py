"""Growing units from zero: what Newton's method cannot do by itself (Sahiner et al. 2024, eq. (20)).

A unit at u = v = 0 is a stationary point of (14) whatever the data say, so a damped
Newton step never leaves it. Where the certificate shows that a new unit would lower
the objective -- sigma_max of the part of G_k = L_k^*(grad F) outside the current units'
row/column spaces exceeds beta, or for ReLU with q = 1 the cone-constrained version
max_{u in K_k, |u| <= 1} -+<g_k, u> > beta (after eq. (20)) -- a frozen unit is set to
that direction with the best scale: along Z_k = t a b^T the objective is convex in t.
"""
import torch

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


def _grow(problem, U, V, active, du, dv, w, slot):
    """Add the units (du, dv) (scaled by sqrt(w_k)) in slot[k] with the best common scale t:
    Z_k += t w_k u v^T changes F along a line and costs beta t w_k (balanced units)."""
    P, m = U.shape[:2]
    ks = torch.arange(P, device=U.device)
    loss = problem.loss_along(U, V, du.reshape(U.shape), dv.reshape(V.shape))
    total = float(w.sum())

    def phi(t):
        return loss(t) + problem.beta * t * total

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
    where it exceeds beta (a violation of the certificate (20)); returns the
    largest ratio sigma / beta found (<= 1 means nothing was added)."""
    P, m = U.shape[:2]
    G = problem.lifted_gradient(U, V)
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
    U, V, active = _grow(problem, U, V, active, du, dv, w, j)
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
    g = problem.lifted_gradient(U, V)[:, :, 0]                                  # [P, p]
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
        U, V, active = _grow(problem, U, V, active, du, dv, w, slots)
        v = V.reshape(P, m)
    return U, V, active
