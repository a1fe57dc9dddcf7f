"""The ReLU cone pieces (bmdsl/cvx/relu.py): NNLS, extreme rows, and the SDP relaxation."""
import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import nnls
from scipy.spatial import ConvexHull

from bmdsl.cvx import relu


def test_nnls_residual_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        m, n = rng.integers(1, 6), rng.integers(1, 12)
        A, b = rng.standard_normal((m, n)), rng.standard_normal(m)
        assert relu.nnls_residual(A, b) == pytest.approx(nnls(A, b)[1], abs=1e-9)


@pytest.mark.parametrize("p", [2, 3, 4])
def test_extreme_rows_are_the_hull_vertices(p):
    """Rows in the open half-space x_0 > 0: the cone's extreme rays are the vertices of the
    convex hull of the rows scaled to x_0 = 1 (qhull, independent of bmdsl)."""
    rng = np.random.default_rng(p)
    K = rng.standard_normal((40, p))
    K[:, 0] = np.abs(K[:, 0]) + 0.3
    K = np.vstack([K, 2.5 * K[:3], np.zeros((2, p))])   # repeated directions and zero rows
    E = relu.extreme_rows(K)
    pts = K[:40, 1:] / K[:40, :1]
    expected = pts[ConvexHull(pts).vertices] if p > 2 else pts[[pts.argmin(), pts.argmax()]]
    got = E[:, 1:] / E[:, :1]
    assert len(got) == len(expected)
    for x in expected:
        assert np.min(np.linalg.norm(got - x, axis=1)) < 1e-9


def _sdp_value(Z0, K, C, R, rows):
    """min of the SDP norm at fixed Z = Z0, with the given pair rows."""
    Z = cp.Parameter(Z0.shape, value=Z0)
    p, q = Z0.shape
    W1, W2 = cp.Variable((p, p), symmetric=True), cp.Variable((q, q), symmetric=True)
    cons = [cp.bmat([[W1, Z], [Z.T, W2]]) >> 0, rows @ cp.vec(W1, order="C") >= 0]
    prob = cp.Problem(cp.Minimize(0.5 * (relu.SDP_PHI[C](W1) + relu.SDP_PHI[R](W2))), cons)
    prob.solve(solver="CLARABEL")
    return prob.value


def test_reduced_pairs_give_the_same_sdp_and_a_lower_bound_on_atoms():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((12, 3))
    h = rng.standard_normal(3)
    K = np.sign(M @ h)[:, None] * M                     # a cone with h inside
    # Z from two atoms u v^T with u in the cone: its constrained norm is <= the atom sum
    us = [h / np.linalg.norm(h), (h + 0.3 * rng.standard_normal(3))]
    us = [u / np.linalg.norm(u) for u in us if np.all(K @ u >= 0)]
    vs = [v / np.linalg.norm(v) for v in rng.standard_normal((len(us), 2))]
    Z0 = sum(t * np.outer(u, v) for t, u, v in zip((1.0, 0.5), us, vs))
    I, J = np.triu_indices(len(K), 1)
    full = (K[I][:, :, None] * K[J][:, None, :]).reshape(len(I), -1)
    reduced = relu.cone_pair_rows(relu.extreme_rows(K))
    assert len(reduced) < len(full)
    a = _sdp_value(Z0, K, "l2", "l2", full)
    b = _sdp_value(Z0, K, "l2", "l2", reduced)
    assert a == pytest.approx(b, rel=1e-6)
    assert b <= sum((1.0, 0.5)[: len(us)]) * (1 + 1e-7)            # relaxation of (4)
    assert b >= np.linalg.svd(Z0, compute_uv=False).sum() * (1 - 1e-7)  # the cone only adds


def test_relu_exactness_rule():
    from bmdsl.kernel.pairforms import relu_exact      # the rule, once (NormPair asks it)
    assert relu_exact("l2", "l1", 5) and relu_exact("l2", "l2", 1)
    assert not relu_exact("l2", "l2", 2) and not relu_exact("l1", "linf", 3)


def test_cone_pair_rows_of_a_cone_with_one_extreme_row():
    # p = 1: one extreme row, no pairs -- an empty [0, p^2] block, not a reshape error
    from bmdsl.cvx import relu
    assert relu.cone_pair_rows(np.array([[1.0]])).shape == (0, 1)
    assert relu.cone_pair_rows(np.eye(2)).shape == (1, 4)
