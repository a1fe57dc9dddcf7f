"""Exact enumeration of activation patterns: the cells of the hyperplane arrangement
{w : sign(M w) fixed} (docs/theory.md sec. 2), for ReLU's complete pattern sets, and a
Monte Carlo cell count that checks it. The conventions are those of patterns.py.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .patterns import TOL, PatternCountError, PatternSet, arrangement_bound, unique_masks


def _reduce(M: np.ndarray):
    """Row-space coordinates: returns (Q [p, r], unit normals U [N', r], nonzero-row mask)."""
    norms = np.linalg.norm(M, axis=1)
    nonzero = norms > TOL * (norms.max() if norms.size else 0.0)
    if not nonzero.any():
        return np.zeros((M.shape[1], 0)), np.zeros((0, 0)), nonzero
    _, s, vt = np.linalg.svd(M[nonzero], full_matrices=False)
    r = int(np.sum(s > TOL * s[0]))
    Q = vt[:r].T
    # Mw = (MQ)(Q^T w) on the row space; the null-space part of w never changes a sign.
    U = M[nonzero] @ Q / norms[nonzero, None]
    return Q, U / np.linalg.norm(U, axis=1, keepdims=True), nonzero


def _hyperplanes(U: np.ndarray, r: int) -> np.ndarray:
    """Indices of one row per distinct hyperplane (unit rows equal up to sign, within TOL).

    Rows get a canonical sign (their first entry of size >= 1/(2 sqrt r), which exists,
    made positive) and are sorted by the first entry, so only a window of the sorted
    rows can lie within TOL of a given one: O(N log N) for distinct data.
    """
    n = U.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lead = np.argmax(np.abs(U) >= 0.5 / np.sqrt(max(r, 1)), axis=1)
    C = U * np.sign(U[np.arange(n), lead])[:, None]
    order = np.argsort(C[:, 0], kind="stable")
    C, key = C[order], C[order, 0]
    free = np.ones(n, dtype=bool)
    reps = []
    for a in range(n):
        if not free[a]:
            continue
        reps.append(order[a])
        hi = np.searchsorted(key, key[a] + TOL, side="right")
        near = np.linalg.norm(C[a:hi] - C[a], axis=1) <= TOL
        free[a:hi] &= ~near
    return np.sort(np.array(reps, dtype=np.int64))


def _cells(A: np.ndarray) -> np.ndarray:
    """One interior point per cell of the central arrangement with unit normals A [H, k].

    Requires rank(A) = k (essential).  Why this finds every cell: for k >= 2 each cell's
    closure is a pointed k-dim cone, so it has an extreme ray t; the hyperplanes on t have
    rank k-1 and meet in the line L = R t, which is therefore the null line of some k-1
    independent rows.  Near t, signs of hyperplanes off L are fixed (those of t) and signs
    of those through L are the signs of a direction d, so the cells whose closure contains
    t are exactly {t + eps d : d in a cell of the arrangement H_L in t^perp}, a rank k-1
    arrangement: recurse.  k = 1: the two half-lines.  k = 0: the whole space.
    """
    H, k = A.shape
    if k == 0:
        return np.zeros((1, 0))
    if k == 1:
        return np.array([[1.0], [-1.0]])
    if k == 2:
        # The plane: H distinct lines cut the circle into 2H arcs; the bisectors of
        # consecutive line directions (sorted by angle) are the cells, O(H log H).
        ang = np.arctan2(A[:, 1], A[:, 0]) + np.pi / 2
        ang = np.sort(np.mod(np.concatenate([ang, ang + np.pi]), 2 * np.pi))
        gaps = np.diff(np.append(ang, ang[0] + 2 * np.pi))
        mid = (ang + gaps / 2)[gaps > TOL]
        return np.stack([np.cos(mid), np.sin(mid)], axis=1)
    combos = np.array(list(itertools.combinations(range(H), k - 1)), dtype=np.int64)
    _, s, vt = np.linalg.svd(A[combos])           # batched: [C, k-1], [C, k, k]
    ok = s[:, -1] > TOL                           # only independent (k-1)-subsets
    lines = vt[ok, -1, :]                         # null direction t of each subset
    perps = vt[ok, :-1, :]                        # orthonormal basis of t^perp
    dist = np.abs(lines @ A.T)
    on = dist <= TOL                              # [C', H]: hyperplanes through each line
    # |a.d| <= 1 for unit d, so eps = half the smallest |a.t| off the line keeps those
    # signs equal to the signs at +-t.  (An all-on line cannot occur at full rank.)
    eps = 0.5 * np.where(on, np.inf, dist).min(axis=1)
    # Many subsets give the same line (degenerate data); the set of hyperplanes through
    # a line identifies it exactly, so each line is expanded once.
    _, first = np.unique(np.packbits(on, axis=1), axis=0, return_index=True)
    first = first[np.isfinite(eps[first])]
    simple = on[first].sum(axis=1) == k - 1
    points = []
    # Simple lines (only their k-1 defining hyperplanes pass through): the local
    # arrangement is k-1 independent hyperplanes, whose cells are all 2^(k-1) sign
    # choices; d solves a_S . d = sign for each, batched over lines.
    g = first[simple]
    if g.size:
        sub = np.einsum("gik,gjk->gij", A[combos[ok][g]], perps[g])          # [G, k-1, k-1]
        signs = np.array(list(itertools.product([1.0, -1.0], repeat=k - 1)))
        coef = np.linalg.solve(sub[:, None], signs[None, :, :, None])[..., 0]
        dirs = np.einsum("gsi,gik->gsk", coef, perps[g])
        dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
        for sign in (1.0, -1.0):
            points.append((sign * lines[g][:, None] + eps[g][:, None, None] * dirs).reshape(-1, k))
    for c in first[~simple]:                      # degenerate lines: recurse in t^perp
        through, basis = on[c], perps[c]
        sub = A[through] @ basis.T
        dirs = _cells(sub / np.linalg.norm(sub, axis=1, keepdims=True)) @ basis
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        points += [lines[c] + eps[c] * dirs, -lines[c] + eps[c] * dirs]
    pts = np.concatenate(points)
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    # Each cell is reached from each of its extreme rays: keep one point per sign vector,
    # the mean of those found (a convex cone contains the mean, and it sits deeper inside
    # than any single point squeezed against a ray).
    inverse = np.unique(np.packbits(pts @ A.T > 0, axis=1), axis=0, return_inverse=True)[1]
    inverse = inverse.reshape(-1)
    centres = np.zeros((inverse.max() + 1, k))
    np.add.at(centres, inverse, pts)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def enumerate_patterns(M, A_shape, *, cap: int = 10_000, p_shape=None) -> PatternSet:
    """ALL distinct patterns 1[M w >= 0], w in R^p, one per full-dimensional cell.

    M is the (N x p) arrangement matrix with N = prod(A_shape), columns the C-order
    flattening of the weight; gates come back as [P, p] or [P, *p_shape].

    Why cells suffice: if w lies on a face (A_i(w) = 0 for i in Z), take any cell C whose
    closure contains w.  D_w and D_C differ only on Z, where A(w) = 0, so D_w * A(w) =
    D_C * A(w); and w lies in the closed cone K_C = {(2 D_C - 1) * A(w) >= 0} of eq. (3).
    So face patterns add no function to the ReLU model, and closed cells cover R^p.

    Exact for degenerate data: zero rows (always active), repeated or parallel rows (one
    hyperplane), rank(M) < p (enumeration in the r-dim row space).  Each gate lies strictly
    inside its cell (no zero pre-activation on a non-zero row), so the masks are exactly
    masks_from_gates(M @ ., gates).  Raises PatternCountError when the bound
    2 * sum_{k<r} C(H-1, k) (H distinct hyperplanes, r = rank M) exceeds `cap`.
    """
    A_shape = tuple(int(a) for a in A_shape)
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != math.prod(A_shape):
        raise ValueError(f"arrangement matrix of shape {M.shape} does not match A_shape "
                         f"{A_shape} (need [{math.prod(A_shape)}, p])")
    if not np.all(np.isfinite(M)):
        raise ValueError("arrangement matrix contains NaN or inf")
    Q, U, nonzero = _reduce(M)
    r = Q.shape[1]
    reps = _hyperplanes(U, r)
    bound = arrangement_bound(len(reps), r)
    if bound > cap:
        raise PatternCountError(
            f"exact enumeration may give up to {bound} activation patterns (arrangement bound "
            f"2*sum_{{k<r}} C(H-1, k), H = {len(reps)} hyperplanes, rank r = {r}) > cap = {cap}",
            hint="use sampled patterns, e.g. `activation relu(patterns = 256)`, or raise "
                 f"the cap (enumerate_patterns(..., cap={bound}))")
    from ..core.footprint import exact_patterns
    from ..core.memory import require
    require(exact_patterns(bound, M.shape[1], M.shape[0]))
    gates = _cells(U[reps]) @ Q.T if r else np.zeros((1, M.shape[1]))   # unit norm
    pre = gates @ M.T
    # Guard against a tolerance decision gone wrong: every non-zero row strictly signed
    # (well above rounding, relative to |row| |gate| = |row|) and one gate per cell.
    norms = np.linalg.norm(M, axis=1)
    if r and np.any(nonzero & (np.abs(pre).min(axis=0) <= 1e-12 * norms)):
        raise RuntimeError("enumerate_patterns: a representative gate lies on a hyperplane "
                           "(numerically degenerate data); use sampled patterns")
    masks = (pre >= 0).astype(np.float64)
    if unique_masks(masks)[0].shape[0] != masks.shape[0]:
        raise RuntimeError("enumerate_patterns: duplicate cells (numerically degenerate data)")
    if p_shape is not None:
        gates = gates.reshape(gates.shape[0], *((p_shape,) if np.isscalar(p_shape) else p_shape))
    return PatternSet(masks.reshape(-1, *A_shape), gates, "exact", None, masks.shape[0])


def count_cells_bruteforce(M, samples: int, seed: int) -> int:
    """Distinct patterns 1[M w >= 0] over `samples` Gaussian w (a lower bound; for tests)."""
    M = np.asarray(M, dtype=np.float64)
    w = np.random.default_rng(seed).standard_normal((int(samples), M.shape[1]))
    return int(unique_masks((w @ M.T >= 0).astype(np.float64))[0].shape[0])
