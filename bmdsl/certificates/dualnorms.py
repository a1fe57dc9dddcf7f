"""Per-pattern dual norms ||G_k||_D* of eq. (20), for any point of the dual.

Every number returned here is the exact dual norm or an UPPER bound on it: a certificate
built from an upper bound is valid (looser), one built from a lower bound is not
(docs/theory.md sec. 4).  Without cones: `bmdsl.derive.dnorm.dual_norm` (closed form, enumeration,
or SDP/cheap bound for the NP-hard pairs).  With the ReLU cones K_k = diag(2 D_k - 1) M
(M the arrangement matrix of A, eq. (19)): `bmdsl.derive.cone.cone_dual_norm` for (l2, l2)
("spectral" drops the cone, "sdp" is tighter) and for the other pairs, except the exact
column case (q = 1 or R = l1), computed here through its Lagrange dual (below) so that
the value is an upper bound whatever the solver's accuracy.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..atoms.conic import DEFAULT_SOLVER
from ..derive.cone import cone_dual_norm
from ..derive.dnorm import DualNormValue, NormPair, dual_norm
from ..atoms.norms import NORMS
from ..kernel.pairforms import COLS, ROWS, SPECTRAL
from .conennls import cone_nnls

CONE_METHODS = ("auto", "spectral", "kkt", "sdp")   # those of bmdsl.derive.cone.cone_dual_norm

# ||G_k||_D* of all P patterns at once, G [P, p, q] -> [P], for the closed forms of the
# tractable pairs (kernel/pairforms.py; the same numbers as each form's `dual`, without
# the attainers): one batched call instead of P small ones (the certificate evaluates
# them for every dual candidate: 0.07 ms a pattern, 20 ms of a 90 ms certificate at
# P = 100). A form not in the table is evaluated pattern by pattern.
BATCHED_DUAL = {
    ROWS: lambda G, C, R: NORMS[R].dual_norm.numpy(G, axis=2).max(axis=1),
    COLS: lambda G, C, R: NORMS[C].dual_norm.numpy(G, axis=1).max(axis=1),
    SPECTRAL: lambda G, C, R: np.linalg.svd(G, compute_uv=False)[:, 0],
}


@dataclass(frozen=True)
class PatternNorms:
    """||L_k^*(v)||_D* for k = 1..P (each exact or an upper bound) and how each was got."""
    values: np.ndarray
    kinds: tuple[str, ...]
    methods: tuple[str, ...]

    @property
    def max(self) -> float:
        return float(self.values.max()) if self.values.size else 0.0

    @property
    def exact(self) -> bool:
        return all(k == "exact" for k in self.kinds)


def cone_rows(bound) -> tuple[np.ndarray, np.ndarray]:
    """(M [N, p], signs [P, N]): K_k = diag(signs_k) M = diag(2 D_k - 1) M, the ReLU cone
    of pattern k (eq. (19)): u is in it iff K_k u >= 0."""
    return bound.layer_matrix(), 2.0 * bound.masks.reshape(bound.P, -1) - 1.0


class DualNormOracle:
    """Computes per-pattern dual norms of G [P, p, q] for one bound problem.

    `cone_method`: "auto" (cone_dual_norm's own choice by size), "spectral" (drop the
    cone: fast, looser), "kkt" (a cheap dual certificate) or "sdp" (tight, slow); it only
    matters for ReLU with (C, R) = (l2, l2) and q > 1. `samples` (samples.py): the cone
    rows are those of `samples.local` (one shard of a data-parallel run), reduced over
    the processes; only the exact column case with C = l2 (conennls.py) takes shards."""

    def __init__(self, bound, cone_method: str = "auto", samples=None):
        if cone_method not in CONE_METHODS:
            raise ValueError(f"cone_method must be one of {', '.join(CONE_METHODS)}, "
                             f"not {cone_method!r}")
        self.bound, self.cone_method = bound, cone_method
        self.C, self.R = bound.C, bound.R
        self.signs, self.samples = None, samples
        form = NormPair(self.C, self.R).rule.form
        self.batched = None if bound.cone else BATCHED_DUAL.get(form)
        self.form_name = None if form is None else form.name
        if bound.cone:
            self.M, self.signs = cone_rows(bound if samples is None else samples.local)
            self._columns = (_ConeColumns(self.M, self.C)
                             if NormPair(self.C, self.R).relu_exact(bound.q) else None)
            if getattr(samples, "sharded", False) and not (
                    self._columns is not None and self._columns.least_squares):
                raise ValueError("the ReLU cone dual norms on shards need the exact column "
                                 "case with C = l2 (q = 1 or R = l1)")

    def cone(self, k: int) -> np.ndarray:
        return self.signs[k][:, None] * self.M

    def one(self, G: np.ndarray, k: int) -> DualNormValue:
        if self.signs is None:
            return dual_norm(G, self.C, self.R)
        if self._columns is not None:
            return self._columns(G, self.signs[k])
        return cone_dual_norm(G, self.cone(k), self.C, self.R, method=self.cone_method)

    def __call__(self, G: np.ndarray) -> PatternNorms:
        if self.batched is not None and G.shape[0] > 0:
            vals = np.asarray(self.batched(np.asarray(G, dtype=float), self.C, self.R),
                              dtype=float)
            P = G.shape[0]
            return PatternNorms(vals, ("exact",) * P, (self.form_name,) * P)
        if self.signs is not None and self._columns is not None and \
                self._columns.least_squares:
            vals = self._columns.all(G, self.signs, self.samples)
        else:
            vals = [self.one(G[k], k) for k in range(G.shape[0])]
        return PatternNorms(np.array([v.value for v in vals]), tuple(v.exactness for v in vals),
                            tuple(v.method for v in vals))


class _ConeColumns:
    """max_{||u||_C <= 1, K u >= 0, ||v||_R <= 1} u^T G v when every extreme point of B_R
    is a signed basis vector (R = l1, or q = 1): max over columns j and signs s of

        max_{||u||_C <= 1, K u >= 0} s g_j^T u  =  min_{lam >= 0} ||s g_j + K^T lam||_{C*}

    (Lagrange duality; Slater holds since each cell has interior).  ANY lam >= 0 gives an
    upper bound, (s g_j + K^T lam)^T u >= s g_j^T u on the cone, so evaluating the solver's
    lam (clipped to >= 0) in numpy is an upper bound however inaccurate the solve; at the
    optimum it equals the dual norm (to solver tolerance), hence exactness "exact".

    With a Euclidean C* the Lagrange dual is a non-negative least-squares problem,
    min_{lam >= 0} ||K^T lam + s g_j||_2, solved by Lawson-Hanson (conennls.py) for all
    patterns, columns and signs together, on the rows of one shard with the pricing
    reduced over the processes (before: scipy's nnls one problem at a time, about 1 ms
    against 36 ms for a CVXPY solve on the diabetes benchmark, 442 rows, p = 11)."""

    def __init__(self, M: np.ndarray, C: str):
        self.M, self.dual = M, NORMS[NORMS[C].dual]
        self.least_squares = float(self.dual.p) == 2.0
        self.prob = None     # the CVXPY form, built at its first use (importing cvxpy
        # took 10 s of a fresh process's first certificate on a loaded machine)

    def _program(self):
        import cvxpy as cp
        N, p = self.M.shape
        self.lam, self.c, self.s = cp.Variable(N, nonneg=True), cp.Parameter(p), cp.Parameter(N)
        expr = self.c + self.M.T @ cp.multiply(self.s, self.lam)   # DPP: one compile for all
        self.prob = cp.Problem(cp.Minimize(self.dual.cvxpy(expr)))

    def all(self, G: np.ndarray, signs: np.ndarray, samples=None) -> list[DualNormValue]:
        """The least-squares form for every pattern k, column j and sign at once (one
        batch of conennls.cone_nnls): ||s g_kj + K_k^T lam|| for the lam found, or
        ||g_kj|| (lam = 0) if smaller."""
        P, _, q = G.shape
        todo = [(k, j, sgn) for k in range(P) for j in range(q) if np.any(G[k, :, j])
                for sgn in (1.0, -1.0)]
        best = np.zeros(P)       # u = 0 is feasible: the maximum is >= 0
        if todo:
            c = np.stack([sgn * G[k, :, j] for k, j, sgn in todo])
            w, _ = cone_nnls(self.M, signs[[k for k, _, _ in todo]], c, samples)
            upper = np.minimum(np.linalg.norm(w, axis=1), np.linalg.norm(c, axis=1))
            np.maximum.at(best, [k for k, _, _ in todo], upper)
        return [DualNormValue(float(b), "exact", "cone-columns (Lagrange dual)") for b in best]

    def _upper(self, c: np.ndarray, s: np.ndarray) -> float:
        import cvxpy as cp
        if self.least_squares:
            w, _ = cone_nnls(self.M, s[None], c[None])
            return float(min(np.linalg.norm(w[0]), self.dual.numpy(c)))
        if self.prob is None:
            self._program()
        self.c.value, self.s.value = c, s
        lam = np.zeros(len(s))
        try:
            with warnings.catch_warnings():   # accuracy only tightens the bound below
                warnings.simplefilter("ignore")
                self.prob.solve(solver=DEFAULT_SOLVER)
            if self.lam.value is not None:
                lam = np.maximum(self.lam.value, 0.0)
        except cp.SolverError:
            pass                               # lam = 0: drop the cone, still an upper bound
        # lam = 0 (drop the cone) is also a valid multiplier: keep the smaller bound
        return float(min(self.dual.numpy(c + self.M.T @ (s * lam)), self.dual.numpy(c)))

    def __call__(self, G: np.ndarray, signs: np.ndarray) -> DualNormValue:
        best = 0.0   # u = 0 is feasible: the maximum is >= 0
        for j in range(G.shape[1]):
            if not np.any(G[:, j]):
                continue
            for sgn in (1.0, -1.0):
                best = max(best, self._upper(sgn * G[:, j], signs))
        return DualNormValue(best, "exact", "cone-columns (Lagrange dual)")
