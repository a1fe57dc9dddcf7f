"""The Newton system of the cone interior point (interior.py): (A^T H A + B) d = r.

A = [L, -L] maps x = (u_k, w_k) [P, 2, p] to the prediction (rank <= |y|); H is the loss's
Hessian in the prediction, the identity for the squared loss or a diagonal diag(h) >= 0
(smoothloss.py); B is block diagonal, one p x p block per unit: the smoothed norm's
Hessian and S_k^T diag(z / s) S_k, S_k = diag(sign_k) M with M shared. It is factored
through the smaller of the Woodbury matrix I + H^1/2 L (B_u^-1 + B_w^-1) L^T H^1/2
(|y| x |y|; h = 0 allowed) and the dense matrix with Q = L^T H L (2 P p square; constant
for the squared loss), with a relative ridge on B; two steps of iterative refinement with
the exact product recover what the ridge and the explicit block inverses lose.
"""
import torch

from .ridged import ridged_cholesky

RIDGE = 1e-10        # relative ridge of the factorized blocks (1e-6 stalled a test case)
REFINE = 2           # steps of iterative refinement per solve (1 stalled a CNN test case)


def newton_solver(ip, x, rho, s, z, h=None):
    """A solver of (A^T H A + B) d = r for r [P, 2, p] at the interior point `ip`'s
    iterate (x, its smoothed norms rho, slacks s, multipliers z); h: H's diagonal [|y|],
    None for the identity."""
    p = ip.p
    w = torch.where(ip.rows, z / s, torch.zeros_like(s))           # [P, 2, |a|]
    eye = torch.eye(p, dtype=x.dtype, device=x.device)
    B = ip.cone_gram(w)                                             # S^T diag(z / s) S
    B = B + ip.beta * (eye / rho[..., None] - x[..., :, None] * x[..., None, :]
                       / rho[..., None] ** 3)
    # the factorizations see B + a relative ridge, apply() sees B, and the refinement
    # steps correct for the difference: a block is nearly singular along x_kj where the
    # smoothed norm is flat radially, and Woodbury's explicit inverses would then
    # cancel catastrophically (a CNN test case diverged to 1e29 without it). The ridge is
    # relative to the block's data and norm curvature, not to the barrier's z / s: that
    # grows like 1 / mu along the binding rows, and a ridge on its scale swamped the
    # directions along the cone's face (curvature ~ beta / |x|), where the refinement
    # then converged by ~1e-6 per step -- the run ended 1e-6 to 2e-5 above p* with s'z
    # at 1e-18 (bench/bench_interior_accuracy.py)
    size = ip.block_scale + ip.beta / rho[..., 0]                  # [P, 2]
    Bf = B + RIDGE * size[..., None, None] * eye

    def apply(d):
        Ad = ip.predict(d)
        return (B @ d[..., None])[..., 0] + ip.predict_adjoint(Ad if h is None else h * Ad)

    solve1 = _dense(ip, Bf, h) if ip.dense else _woodbury(ip, Bf, h)

    def solve(r):
        d = solve1(r)
        for _ in range(REFINE):
            d = d + solve1(r - apply(d))
        return d
    return solve


def _dense(ip, Bf, h):
    P, p = ip.P, ip.p
    n = P * p
    Q = ip.Q if h is None else ip.gram(h)
    H = torch.zeros(2 * n, 2 * n, dtype=Bf.dtype, device=Bf.device)
    H[:n, :n] = H[n:, n:] = Q
    H[:n, n:] = H[n:, :n] = -Q
    idx = torch.arange(2 * n, device=Bf.device).reshape(2, P, p).transpose(0, 1)
    blocks = idx.reshape(P, 2, p)
    H[blocks[..., :, None], blocks[..., None, :]] += Bf
    LH = ridged_cholesky(H)

    def solve1(r):
        rr = r.transpose(0, 1).reshape(-1, 1)
        return torch.cholesky_solve(rr, LH).reshape(2, P, p).transpose(0, 1)
    return solve1


def _woodbury(ip, Bf, h):
    P, p = ip.P, ip.p
    Binv = torch.cholesky_inverse(ridged_cholesky(Bf))              # [P, 2, p, p]
    LB = torch.bmm(ip.Lk, Binv.sum(1)).transpose(0, 1).reshape(-1, P * p)
    K = LB @ ip.L.T
    if h is not None:        # H^1/2 L B^-1 L^T H^1/2 (h >= 0: no division by h)
        sq = h.sqrt()
        K = sq[:, None] * K * sq[None, :]
    K = K + torch.eye(K.shape[0], dtype=K.dtype, device=K.device)
    LK = ridged_cholesky(K)

    def solve1(r):
        br = (Binv @ r[..., None])[..., 0]                    # B^-1 r
        v = ip.predict(br)
        if h is None:
            t = torch.cholesky_solve(v[:, None], LK)[:, 0]
        else:
            t = sq * torch.cholesky_solve((sq * v)[:, None], LK)[:, 0]
        return br - (Binv @ ip.predict_adjoint(t)[..., None])[..., 0]
    return solve1
