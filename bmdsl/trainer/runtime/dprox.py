"""The D-norm of a tractable (C, R) pair in torch, batched over patterns: its value, its
prox and a factorization of Z into BM units whose regularizer equals beta ||Z||_D.

Keyed by the pair's `prox` entry of bmdsl.derive.dnorm.PAIR_TABLE (carried into SPEC as
spec["prox"]; None for the NP-hard pairs, which have no cheap prox):

* "spectral" (C = R = l2): ||Z||_* (eq. (15)); prox = singular-value soft thresholding;
  units from the SVD, u = sqrt(s) a, v = sqrt(s) b;
* "rows" (C = l1): ||Z||_D = sum_i ||row_i Z||_R; prox = each row's prox of tau ||.||_R;
  units one per non-zero row i, u = sqrt(r_i) e_i, v = row_i / sqrt(r_i), r_i = ||row_i||_R
  (the atom e_i z^T of eq. (15): (1/2)(||u||_1^2 + ||v||_R^2) = r_i);
* "cols" (R = l1): the same by columns, u = col_j / sqrt(c_j), v = sqrt(c_j) e_j.

A vector norm's prox is Moreau's x - tau P(x / tau), P the projection onto the dual
norm's unit ball, written in closed form where it has one (soft thresholding), so a group
that vanishes is exactly zero (bmdsl.certificates.prox does the same in numpy; tests check
that both agree).
"""
import torch

ORDER = {"l1": 1.0, "l2": 2.0, "linf": float("inf")}


def _project_l1_ball(x):
    """Rows (last axis) onto {||x||_1 <= 1}: sort-based simplex projection of |x|."""
    a = x.abs()   # shifted to max 0 (shift-invariant): exact prefix sums at |x| ~ 1e16
    a = a - a.amax(-1, keepdim=True)
    srt = torch.sort(a, dim=-1, descending=True).values
    css = srt.cumsum(-1) - 1.0
    idx = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    rho = (srt - css / idx > 0).sum(-1, keepdim=True).clamp_min(1)
    tau = css.gather(-1, rho - 1) / rho.to(x.dtype)
    inside = x.abs().sum(-1, keepdim=True) <= 1.0
    return torch.where(inside, x, torch.sign(x) * torch.relu(a - tau))


def _prox_linf(x, tau):
    """x - tau P_{B_1}(x / tau); exactly 0 where ||x||_1 <= tau."""
    inside = x.abs().sum(-1, keepdim=True) <= tau
    return torch.where(inside, torch.zeros_like(x), x - tau * _project_l1_ball(x / tau))


VECTOR_PROX = {   # prox of tau ||.|| on each row (last axis); exact zeros where it vanishes
    "l2": lambda x, tau: x * torch.relu(
        1.0 - tau / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-300)),
    "l1": lambda x, tau: torch.sign(x) * torch.relu(x.abs() - tau),
    "linf": _prox_linf,
}


def vector_prox(x, name, tau):
    """prox of tau ||.||_name on each row (last axis)."""
    return x if tau <= 0 else VECTOR_PROX[name](x, tau)


def vector_norm(x, name):
    return torch.linalg.vector_norm(x, ord=ORDER[name], dim=-1)


def svt(Z, tau):
    """prox of tau ||.||_* per pattern: Z_k = A S B^T -> A max(S - tau, 0) B^T."""
    A, s, Bh = torch.linalg.svd(Z, full_matrices=False)
    return (A * torch.relu(s - tau)[:, None, :]) @ Bh


def svd_units(Z, m, C, R):
    """Balanced units of the top min(m, rank) singular pairs: U [P, m, p], V [P, m, q]."""
    P, p, q = Z.shape
    A, s, Bh = torch.linalg.svd(Z, full_matrices=False)
    r = min(m, s.shape[1])
    root = s[:, :r].sqrt()
    U = Z.new_zeros(P, m, p)
    V = Z.new_zeros(P, m, q)
    U[:, :r] = (A[:, :, :r] * root[:, None, :]).transpose(1, 2)
    V[:, :r] = Bh[:, :r, :] * root[:, :, None]
    return U, V, int((s[:, r:] > 1e-12 * s[:, :1].clamp_min(1e-300)).sum())


def row_units(Z, m, C, R):
    """One unit per row of Z_k (largest R-norm first): u = sqrt(r) e_i, v = row / sqrt(r).
    Returns U [P, m, p], V [P, m, q] and the number of non-zero rows left out (m < rows)."""
    P, p, q = Z.shape
    r = vector_norm(Z, R)                                     # [P, p]
    order = torch.argsort(r, dim=1, descending=True)[:, :m]   # the m largest rows
    k = min(m, p)
    top = r.gather(1, order)                                  # [P, k]
    root = top.sqrt()
    safe = torch.where(root > 0, root, torch.ones_like(root))
    U = Z.new_zeros(P, m, p)
    V = Z.new_zeros(P, m, q)
    U[:, :k] = torch.nn.functional.one_hot(order, p).to(Z.dtype) * root[:, :, None]
    V[:, :k] = Z.gather(1, order[:, :, None].expand(P, k, q)) / safe[:, :, None]
    left = int((r > 0).sum()) - int((top > 0).sum())
    return U, V, left


def col_units(Z, m, C, R):
    """The transpose of row_units: one unit per column, u = col / sqrt(c), v = sqrt(c) e_j."""
    V, U, left = row_units(Z.transpose(1, 2), m, R, C)
    return U, V, left


def _rows_prox(Z, tau, C, R):
    return vector_prox(Z, R, tau)


def _cols_prox(Z, tau, C, R):
    return vector_prox(Z.transpose(1, 2), C, tau).transpose(1, 2)


PAIRS = {   # spec["prox"] -> (||Z_k||_D [P], prox of tau sum_k ||Z_k||_D, units)
    "spectral": (lambda Z, C, R: torch.linalg.svdvals(Z).sum(-1),
                 lambda Z, tau, C, R: svt(Z, tau), svd_units),
    "rows": (lambda Z, C, R: vector_norm(Z, R).sum(-1), _rows_prox, row_units),
    "cols": (lambda Z, C, R: vector_norm(Z.transpose(1, 2), C).sum(-1), _cols_prox,
             col_units),
}


class DNorm:
    """The D-norm of one pair: `value(Z)` = sum_k ||Z_k||_D, `prox(Z, tau)`, `units(Z, m)`;
    `atoms`: the side ("C" or "R") whose units are coordinate vectors (u = s e_i for
    "rows", v = s e_j for "cols": ||s e_i|| = |s| in any norm, so only the other side's
    norm shapes their regularizer), or None."""

    def __init__(self, key, C, R):
        self._value, self._prox, self._units = PAIRS[key]
        self.C, self.R, self.atoms = C, R, {"rows": "C", "cols": "R"}.get(key)

    def value(self, Z):
        return float(self._value(Z, self.C, self.R).sum())

    def prox(self, Z, tau):
        return self._prox(Z, tau, self.C, self.R)

    def units(self, Z, m):
        """(U [P, m, p], V [P, m, q], groups left out): Z_k = U_k^T V_k and
        (1/2) sum (||u||_C^2 + ||v||_R^2) = sum_k ||Z_k||_D when nothing is left out."""
        return self._units(Z, m, self.C, self.R)
