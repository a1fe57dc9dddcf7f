"""ReLU cones (2 D_k - 1) * A(u_kj) >= 0 of eq. (19): an augmented Lagrangian while
training and an exact restoration of feasibility at the end.

The cone rows are per sample: on a shard of the samples (trainer/sharded.py) the
initial projection, the violation and the restoration reduce over the processes through
`problem.reduce_max` / `reduce_sum` (the identity on one process).

Penalty (Rockafellar's form of the augmented Lagrangian for s(U) >= 0, multipliers
lam >= 0): phi(U) = (1 / (2 rho)) sum( relu(lam - rho s)^2 - lam^2 ); the update is
lam <- relu(lam - rho s), and rho grows while the violation does not shrink fourfold.
"""
import torch


class AugmentedLagrangian:
    def __init__(self, shape, dtype, device, rho=1.0, growth=10.0, rho_max=1e8):
        self.lam = torch.zeros(shape, dtype=dtype, device=device)
        self.rho, self.growth, self.rho_max = float(rho), float(growth), float(rho_max)
        self.last_violation = float("inf")

    def penalty(self, s, lam=None):
        """phi for slack s (lam: the multipliers of the same samples, for mini-batches)."""
        lam = self.lam if lam is None else lam
        return (torch.relu(lam - self.rho * s) ** 2 - lam ** 2).sum() / (2 * self.rho)

    def hessian_weights(self, s):
        """rho * 1[lam - rho s > 0]: the generalized Hessian of phi is M^T diag(.) M."""
        return self.rho * (self.lam - self.rho * s > 0).to(s.dtype)

    def update(self, s) -> float:
        """Multiplier step; returns the maximum violation max(0, -s)."""
        violation = float(torch.relu(-s).max()) if s.numel() else 0.0
        self.lam = torch.relu(self.lam - self.rho * s)
        if violation > 0.25 * self.last_violation:
            self.rho = min(self.rho * self.growth, self.rho_max)
        self.last_violation = violation
        return violation

    def state_dict(self):
        return {"lam": self.lam, "rho": self.rho, "last_violation": self.last_violation}

    def load_state_dict(self, d):
        self.lam = d["lam"].to(self.lam)
        self.rho, self.last_violation = float(d["rho"]), float(d["last_violation"])


def into_cones(problem, U):
    """u_kj + tau h_k with the least tau >= 0 that makes the unit feasible, h_k the gate of
    pattern k (inside its own cone, strictly on every non-zero row), rescaled to the norm
    of u_kj (a cone is closed under positive scaling): exact, batched, and it keeps the
    randomness and the scale of u (used for the initial factors)."""
    P, m = U.shape[:2]
    h = problem.gates.reshape(P, 1, -1).expand(P, m, -1).reshape(U.shape)
    s = problem.slack(U).reshape(P, m, -1)
    sh = problem.slack(h).reshape(P, m, -1)
    tau = torch.where((s < 0) & (sh > 0), -s / sh.clamp_min(1e-300), torch.zeros_like(s))
    shape = (P, m) + (1,) * (U.dim() - 2)
    W = U + 1.01 * problem.reduce_max(tau.amax(-1)).reshape(shape) * h
    size = lambda x: x.reshape(P, m, -1).norm(dim=-1).reshape(shape)  # noqa: E731
    return W * size(U) / size(W).clamp_min(1e-300)


def max_violation(problem, U) -> float:
    s = problem.slack(U)
    local = torch.relu(-s).max() if s.numel() else torch.zeros((), dtype=U.dtype,
                                                               device=U.device)
    return float(problem.reduce_max(local.to(torch.float64)))


def restore_cones(problem, U, iters=None):
    """Project each violating unit u_kj onto its cone {u : S_k u >= 0}, S_k the signed
    arrangement rows: repeatedly move to the nearest point where every row violated so
    far is zero (u - pinv(S_a) S_a u). Each round adds rows, so this ends feasible up to
    rounding (at worst u = 0, the apex of every cone). Only violating units are visited;
    rows count as violated below -1e-13 |S_i| |u| (float32: 10 eps), the rounding
    of the projection itself. On a shard (`problem.sharded`) the projection is the same
    through the p x p Gram matrix S_a^T S_a of the violated rows, summed over the
    processes (its pseudo-inverse squares S_a's condition number: a unit it leaves
    violated ends at 0, still feasible)."""
    if problem.sharded:
        return _restore_shards(problem, U, iters)
    U = U.detach().clone()
    P, m, p = U.shape[0], U.shape[1], problem.p
    M = problem.layer_basis().reshape(p, -1).T                  # [N_A, p]
    signs = (2 * problem.D - 1).reshape(P, -1)                  # [P, N_A]
    u = U.reshape(P, m, p)
    bad = torch.nonzero(torch.relu(-problem.slack(U)).reshape(P, m, -1).amax(-1) > 0)
    scale = M.norm(dim=1)

    eps = max(1e-13, 10 * torch.finfo(U.dtype).eps)

    def violated(S, x):
        return S @ x < -eps * scale * x.norm()

    for k, j in bad.tolist():
        S = signs[k][:, None] * M
        rows = violated(S, u[k, j])
        for _ in range(iters or S.shape[0]):
            if not bool(rows.any()):
                break
            Sa = S[rows]
            u[k, j] = u[k, j] - torch.linalg.pinv(Sa) @ (Sa @ u[k, j])
            new = violated(S, u[k, j])
            if not bool((new & ~rows).any()):
                break
            rows |= new
        if bool(violated(S, u[k, j]).any()):
            u[k, j] = 0.0
    return u.reshape(U.shape)


def _restore_shards(problem, U, iters=None):
    """restore_cones on this process's rows, the decisions and S_a^T S_a reduced."""
    U = U.detach().clone()
    P, m, p = U.shape[0], U.shape[1], problem.p
    M = problem.layer_basis().reshape(p, -1).T
    signs = (2 * problem.D - 1).reshape(P, -1)
    u = U.reshape(P, m, p)
    worst = problem.reduce_max(torch.relu(-problem.slack(U)).reshape(P, m, -1).amax(-1))
    scale = M.norm(dim=1)
    eps = max(1e-13, 10 * torch.finfo(U.dtype).eps)
    anywhere = lambda b: bool(problem.reduce_max(b.any().to(torch.float64)) > 0)  # noqa: E731

    def violated(S, x):
        return S @ x < -eps * scale * x.norm()

    for k, j in torch.nonzero(worst > 0).tolist():
        S = signs[k][:, None] * M
        rows = violated(S, u[k, j])
        for _ in range(iters or int(problem.reduce_sum(
                torch.tensor(float(S.shape[0]), dtype=torch.float64, device=U.device)))):
            if not anywhere(rows):
                break
            G = problem.reduce_sum(S[rows].T @ S[rows])
            u[k, j] = u[k, j] - torch.linalg.pinv(G, hermitian=True) @ (G @ u[k, j])
            new = violated(S, u[k, j])
            if not anywhere(new & ~rows):
                break
            rows |= new
        if anywhere(violated(S, u[k, j])):
            u[k, j] = 0.0
    return u.reshape(U.shape)
