"""A two-layer network from a convex solution (docs/cvxpy.md).

Every Z_k is split into atoms Z_k = sum_r u_r v_r^T that attain the norm, each balanced
so that ||u_r||_C = ||v_r||_R; then (1/2) sum_r (||u_r||_C^2 + ||v_r||_R^2) = ||Z_k|| and
the units (u_r, v_r) with pattern k reproduce sum_k L_k(Z_k) (Lemma 3.1), so the
non-convex objective (14) of the units equals the convex one at Z:

* (l2, l2): SVD Z_k = sum s a b^T, units (sqrt(s) a, sqrt(s) b);
* C = l1 (rows) / R = l1 (columns): one atom per non-zero row / column;
* NP-hard pairs: the sign-vector decomposition of dnorm's enumeration (exact solutions),
  or, for a bracket's upper solution, a balanced SVD (predictions still equal);
* ReLU split Z_k[:, j] = a_j - b_j (a_j, b_j in K_k): Pilanci & Ergen 2020's (6a)/(6b) generalized,
  u = a / sqrt(||a||_C), v = +-sqrt(||a||_C) e_j. Since u is in the cone K_k,
  D_k * A(u) = relu(A(u)): the units ARE an ordinary ReLU network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..atoms.conic import DEFAULT_SOLVER
from ..atoms.norms import get_norm

# Interior-point solutions leave every unused block slightly non-zero (weights ~1e-8 of the
# largest); atoms below ATOM_TOL * (largest weight) are dropped as that noise. tol = 0
# keeps every non-zero atom, and then the predictions are equal to rounding.
ATOM_TOL = 1e-7


@dataclass
class Units:
    """r units: first-layer weights [r, *w1_shape], second-layer [r, *w2_shape], and the
    pattern index k_r [r] whose mask D_k gates the unit (0 for linear)."""

    first: np.ndarray
    second: np.ndarray
    pattern: np.ndarray

    @property
    def count(self) -> int:
        return int(self.pattern.shape[0])

    def activations(self, bound, relu: bool | None = None) -> np.ndarray:
        """[r, *a]: D_{k_r} * A(u_r), or relu(A(u_r)) (default for ReLU models)."""
        relu = bound.cone if relu is None else relu
        A = bound.pre_activation(self.first)
        if relu:
            return np.maximum(A, 0.0)
        return A if bound.masks is None else bound.masks[self.pattern] * A

    def predict(self, bound, relu: bool | None = None) -> np.ndarray:
        """sum_r B(sigma_r(A(u_r)), v_r) with the masks, or with relu (see activations)."""
        if self.count == 0:
            return np.zeros(bound.y_shape)
        return bound.output(self.activations(bound, relu), self.second)

    def regularizer(self, bound) -> float:
        C, R = get_norm(bound.C), get_norm(bound.R)
        u, v = self.first.reshape(self.count, -1), self.second.reshape(self.count, -1)
        return 0.5 * bound.beta * float((C.numpy(u, axis=1) ** 2).sum() +
                                        (R.numpy(v, axis=1) ** 2).sum())

    def objective(self, bound, relu: bool | None = None) -> float:
        """The non-convex objective F(Yhat) + (beta/2) sum_r (||u_r||_C^2 + ||v_r||_R^2)."""
        return float(bound.loss.value(self.predict(bound, relu), bound.Y)) + self.regularizer(bound)


def _balanced(pairs, C, R):
    """Rescale each (u, v) to ||u||_C = ||v||_R (same product u v^T)."""
    out = []
    for u, v in pairs:
        nu, nv = get_norm(C).numpy(u), get_norm(R).numpy(v)
        if nu > 0 and nv > 0:
            t = np.sqrt(nv / nu)
            out.append((u * t, v / t))
    return out


def _svd_atoms(Z, C, R, exact):
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    return _balanced([(U[:, i] * s[i], Vt[i]) for i in range(len(s))], C, R)


def _row_atoms(Z, C, R, exact):
    p = Z.shape[0]
    return _balanced([(np.eye(p)[i], Z[i]) for i in range(p)], C, R)


def _col_atoms(Z, C, R, exact):
    q = Z.shape[1]
    return _balanced([(Z[:, j], np.eye(q)[j]) for j in range(q)], C, R)


def _hard_atoms(Z, C, R, exact):
    """Exact solutions: Z = sum_s a_s s^T (R = l_inf side) or sum_s s b_s^T (C side) with
    minimal sum of norms, which is ||Z||_D (dnorm's enumeration); brackets: balanced SVD."""
    if not exact:
        return _svd_atoms(Z, C, R, exact)
    import cvxpy as cp
    from ..derive.dnorm import NormPair, sign_vectors
    side, k = NormPair(C, R).enum_side(*Z.shape)
    S = sign_vectors(k)
    if side == "R":
        A = cp.Variable((Z.shape[0], len(S)))
        cp.Problem(cp.Minimize(cp.sum(get_norm(C).cvxpy(A, axis=0))), [A @ S == Z]).solve(
            solver=DEFAULT_SOLVER)
        return _balanced([(A.value[:, i], S[i]) for i in range(len(S))], C, R)
    B = cp.Variable((len(S), Z.shape[1]))
    cp.Problem(cp.Minimize(cp.sum(get_norm(R).cvxpy(B, axis=1))), [S.T @ B == Z]).solve(
        solver=DEFAULT_SOLVER)
    return _balanced([(S[i], B.value[i]) for i in range(len(S))], C, R)


ATOMS = {"spectral": _svd_atoms, "rows": _row_atoms, "cols": _col_atoms, "hard": _hard_atoms}


def _split_atoms(A, B, C):
    """(6a)/(6b): u = a / sqrt(||a||_C), v = +-sqrt(||a||_C) e_j for every column a of A, B."""
    q = A.shape[1]
    out = []
    for part, sign in ((A, 1.0), (B, -1.0)):
        for j in range(q):
            w = get_norm(C).numpy(part[:, j])
            if w > 0:
                out.append((part[:, j] / np.sqrt(w), sign * np.sqrt(w) * np.eye(q)[j]))
    return out


def recover(bound, solution, *, tol: float = ATOM_TOL) -> Units:
    """Units whose predictions sum_r B(D_{k_r} * A(u_r), v_r) equal bound.predict_lifted(Z)
    (up to the atoms below `tol` times the largest weight, see ATOM_TOL)."""
    from ..derive.dnorm import NormPair
    from ..core.errors import SolverError
    if solution.Z is None:
        raise SolverError(f"no solution to recover a network from (status {solution.status})")
    P, p, q = solution.Z.shape
    if (P, p, q) != (bound.P, bound.p, bound.q):
        raise SolverError(f"solution Z has shape {[P, p, q]} but the model has "
                          f"[P, p, q] = {[bound.P, bound.p, bound.q]}")
    method = NormPair(bound.C, bound.R).rule.method
    units = []
    for k in range(P):
        if solution.split is not None:
            atoms = _split_atoms(solution.split[0, k], solution.split[1, k], bound.C)
        else:
            atoms = ATOMS[method](solution.Z[k], bound.C, bound.R, solution.exactness == "exact")
        units += [(u, v, k) for u, v in atoms]
    weight = np.array([get_norm(bound.C).numpy(u) ** 2 for u, _, _ in units])
    keep = [i for i in range(len(units)) if weight[i] > tol * weight.max()] if units else []
    return Units(np.array([units[i][0] for i in keep]).reshape((len(keep),) + bound.w1_shape),
                 np.array([units[i][1] for i in keep]).reshape((len(keep),) + bound.w2_shape),
                 np.array([units[i][2] for i in keep], dtype=np.int64))
