"""Exact pattern enumeration through the model pipeline (`bind` with `patterns = exact`).

The reference is a brute force written here: every sign vector of the arrangement's
hyperplanes, extended one hyperplane at a time, each prefix tested by a feasibility LP
s_i (M w)_i >= 1 (cvxpy/HiGHS); infeasible prefixes are pruned, which loses nothing since
their extensions are infeasible too.  The arrangement matrix M is also built here by hand
(X for the MLP, stacked patches for the CNN, stacked X_i (x) X_i for self-attention), and
the count must respect 2 sum_{k<r} C(H-1, k) for H distinct hyperplanes of rank r.
"""
import math

import cvxpy as cp
import numpy as np
import pytest

import bmdsl
from test_derivation_helpers import ATTENTION, MLP, im2col, model, rng
from model_texts import cnn, regularize


def brute_force_masks(M: np.ndarray) -> set[tuple]:
    """Every mask 1[M w >= 0] of a full-dimensional cell (zero rows are always active)."""
    live = np.linalg.norm(M, axis=1) > 1e-12
    H = M[live]
    N = H.shape[0]
    s, t, w = cp.Parameter(N), cp.Parameter(N), cp.Variable(M.shape[1])
    lp = cp.Problem(cp.Minimize(0), [cp.multiply(s, H @ w) >= t])

    def witness(signs):
        s.value = np.r_[signs, np.zeros(N - len(signs))]
        t.value = np.where(s.value != 0, 1.0, -1.0)      # rows beyond the prefix are free
        lp.solve(solver="HIGHS")
        return w.value if lp.status == cp.OPTIMAL else None

    found, stack = [], [((), None)]
    while stack:
        signs, w0 = stack.pop()
        if len(signs) == N:
            found.append(signs)
            continue
        for sign in (1.0, -1.0):
            child = signs + (sign,)
            if w0 is not None and sign * (H[len(signs)] @ w0) > 0:
                stack.append((child, w0))                  # a scaled w0 satisfies the child
            elif (w1 := witness(child)) is not None:
                stack.append((child, w1))
    masks = set()
    for signs in found:
        mask = np.ones(M.shape[0])
        mask[live] = np.array(signs) > 0
        masks.add(tuple(mask))
    return masks


def cover_bound(M: np.ndarray) -> int:
    """2 sum_{k<r} C(H-1, k): H distinct hyperplanes (rows up to scale and sign), rank r."""
    rows = [m / np.linalg.norm(m) for m in M if np.linalg.norm(m) > 1e-12]
    distinct = []
    for u in rows:
        if not any(min(np.linalg.norm(u - v), np.linalg.norm(u + v)) < 1e-9 for v in distinct):
            distinct.append(u)
    r = np.linalg.matrix_rank(np.array(distinct))
    return 2 * sum(math.comb(len(distinct) - 1, k) for k in range(r))


def check_exact(b, M):
    assert b.patterns.source == "exact"
    ours = b.masks.reshape(b.P, -1)
    assert len({tuple(m) for m in ours}) == b.P              # no repeated pattern
    brute = brute_force_masks(M)
    assert b.P == len(brute)
    assert {tuple(m) for m in ours} == brute
    assert b.P <= cover_bound(M)
    # every gate lies strictly inside its cell: its mask is 1[M h >= 0], and no non-zero
    # row of M is crossed at 0
    pre = b.patterns.gates.reshape(b.P, -1) @ M.T
    assert np.array_equal(ours, (pre >= 0).astype(float))
    assert np.abs(pre[:, np.linalg.norm(M, axis=1) > 0]).min() > 0


def test_exact_patterns_mlp():
    X = rng(30).standard_normal((7, 3))
    b = model(MLP, "relu(patterns = exact)").derive().bind(dict(X=X, Y=np.zeros((7, 2))))
    check_exact(b, X)
    assert b.P == cover_bound(X) == 44                          # general position: equality


def test_exact_patterns_mlp_with_degenerate_rows():
    """Repeated, parallel and zero rows: one hyperplane each, the zero row always active."""
    X = rng(31).standard_normal((5, 3))
    X = np.vstack([X, 2 * X[0], -X[1], np.zeros(3)])
    b = model(MLP, "relu(patterns = exact)").derive().bind(dict(X=X, Y=np.zeros((8, 2))))
    check_exact(b, X)
    assert np.all(b.masks[:, -1] == 1)


CNN = cnn(m=2, kernel=2, padding=0, pool="global", activation="relu(patterns = exact)",
               loss="squared", regularize=regularize(), align=8)


def test_exact_patterns_cnn():
    """Overlapping patches share pixels: a structured (non-generic) arrangement."""
    images = rng(32).standard_normal((2, 1, 3, 3))
    b = bmdsl.parse(CNN).derive().bind(dict(I=images, Y=np.zeros((2, 1))))
    M = im2col(images, 2, 0).reshape(-1, 4)                     # [n K, h] = [8, 4]
    assert np.allclose(b.layer_matrix(), M)
    check_exact(b, M)


def test_exact_patterns_self_attention():
    """Rows x_s (x) x_t of X_i (x) X_i: 9 hyperplanes of rank 4, not in general position."""
    X = rng(33).standard_normal((1, 3, 2))
    b = model(ATTENTION, "relu(patterns = exact)").derive().bind(
        dict(X=X, Y=np.zeros((1, 3, 2))))
    M = np.kron(X[0], X[0])
    check_exact(b, M)
    assert b.P < cover_bound(M)                                  # strictly fewer cells


@pytest.mark.parametrize("act", ["relu(patterns = exact)", "gated_relu(patterns = exact)"])
def test_exact_patterns_reused_from_a_saved_set(act):
    """A saved PatternSet round-trips through npz and binds to the same masks."""
    from bmdsl.derive.patterns import PatternSet
    X = rng(34).standard_normal((6, 2))
    derivation = model(MLP, act).derive()
    b = derivation.bind(dict(X=X, Y=np.zeros((6, 1))))
    again = derivation.bind(dict(X=X, Y=np.zeros((6, 1))),
                            PatternSet.from_npz_dict(b.patterns.to_npz_dict()))
    assert b.P == again.P == 2 * 6                               # rank 2: 2H cells
    assert np.array_equal(b.masks, again.masks)
