"""Exact ReLU cones (19) inside the Newton method: an active-set projected Newton step.

Per active unit u (pattern k) the constraints are S_k u >= 0, S_k = diag(2 D_k - 1) M
(M the arrangement matrix [N_A, p]). Rows with (near) zero slack are binding; those
whose least-squares multiplier is negative (the objective decreases inward) are
released; the Newton step is taken in the null space of the rest, and its length is
cut where a free row would turn negative (ratio test). Iterates stay feasible, so the
factors are an ordinary ReLU network at every step. Batched over units: each unit keeps
its p rows of smallest slack, padded with zero rows, so every shape is fixed.
"""
import torch

TOL = 1e-10   # relative slack below which a row is binding (float64; float32: 1e3 eps)


def tolerance(x) -> float:
    return max(TOL, 1e3 * torch.finfo(x.dtype).eps)


def active_cone_rows(problem, U, active):
    """S [na, N, p] for the active units and the scale |S_i| |u| of each row."""
    P, m = U.shape[:2]
    M = problem.layer_basis().reshape(problem.p, -1).T
    k = torch.arange(P, device=U.device)[:, None].expand(P, m)[active]
    S = (2 * problem.D - 1).reshape(P, -1)[k][:, :, None] * M[None]
    return S, M.norm(dim=1)


def candidates(problem, U, active, gu):
    """Each active unit's p rows of smallest relative slack: rows [na, p, p], near [na, p]
    (slack <= TOL), and the initial binding set: near rows with multiplier >= 0."""
    p = problem.p
    u = U.reshape(U.shape[0], U.shape[1], p)[active]
    S, row_norm = active_cone_rows(problem, U, active)
    s = (S @ u[:, :, None])[:, :, 0]
    scale = row_norm[None] * u.norm(dim=1, keepdim=True)
    rel = torch.where(row_norm[None] > 0, s / scale.clamp_min(1e-300), torch.inf)
    order = torch.argsort(rel, dim=1)[:, :p]
    rows = torch.gather(S, 1, order[:, :, None].expand(-1, -1, p))
    near = torch.gather(rel, 1, order) <= tolerance(u)
    lam = (torch.linalg.pinv((rows * near[:, :, None]).transpose(1, 2)) @ gu[:, :, None])[:, :, 0]
    return rows, near, near & (lam >= 0)


def basis(rows, binding):
    """Orthonormal basis T [na, p, p] of {d : rows_binding d = 0} (zero columns pad it)."""
    _, sv, vh = torch.linalg.svd(rows * binding[:, :, None])
    free = sv <= tolerance(rows) * sv.amax(1, keepdim=True).clamp_min(1e-300)
    return vh.transpose(1, 2) * free[:, None, :]


def reduce_system(T, H, g, na, p):
    """H, g in the coordinates (T y for the u's, v unchanged); blocked columns get 1 on
    the diagonal and 0 gradient, so they do not move."""
    nu = na * p
    Huu = H[:nu, :nu].reshape(na, p, na, p)
    Huv = H[:nu, nu:].reshape(na, p, -1)
    Ruu = torch.einsum("tai,tasb,sbj->tisj", T, Huu, T).reshape(nu, nu)
    Ruv = torch.einsum("tai,tab->tib", T, Huv).reshape(nu, -1)
    R = torch.cat([torch.cat([Ruu, Ruv], 1), torch.cat([Ruv.T, H[nu:, nu:]], 1)], 0)
    blocked = (T.abs().sum(1) == 0).reshape(-1)
    R.diagonal()[:nu] += blocked.to(R.dtype)
    gr = torch.cat([torch.einsum("tai,ta->ti", T, g[:nu].reshape(na, p)).reshape(-1), g[nu:]])
    gr[:nu][blocked] = 0.0
    return R, gr


def expand_step(T, d, na, p):
    nu = na * p
    return torch.cat([torch.einsum("tai,ti->ta", T, d[:nu].reshape(na, p)).reshape(-1), d[nu:]])


def max_step(problem, U, dU):
    """Largest a <= 1 keeping every free row of S_k (u + a du) >= 0 (the slack is linear);
    rows already at zero slack are the binding ones, handled by the null space."""
    P, m = U.shape[:2]
    row_norm = problem.layer_basis().reshape(problem.p, -1).norm(dim=0)
    scale = (row_norm[None, None] * U.reshape(P, m, -1).norm(dim=2)[:, :, None]).reshape(-1)
    s = problem.slack(U).reshape(-1)
    ds = problem.slack(dU).reshape(-1)
    blocks = (ds < 0) & (s > tolerance(s) * scale)
    if not bool(blocks.any()):
        return 1.0
    return min(1.0, float((-s[blocks] / ds[blocks]).min()))
