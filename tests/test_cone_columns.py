"""The ReLU cone dual norm of the exact column case (certificates/dualnorms._ConeColumns):
its least-squares form (scipy's nnls, C* Euclidean) against the CVXPY solve of the same
Lagrange dual, and against the value attained by sampled feasible points."""
import numpy as np
import pytest

from bmdsl.certificates.dualnorms import _ConeColumns


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nnls_and_cvxpy_give_the_same_cone_dual_norm(seed):
    rng = np.random.default_rng(seed)
    M = np.hstack([rng.standard_normal((60, 4)), np.ones((60, 1))])   # a bias column
    h = rng.standard_normal(5)
    signs = np.where(M @ h >= 0, 1.0, -1.0)                 # a pattern's cone, around h
    G = rng.standard_normal((5, 1))
    fast = _ConeColumns(M, "l2")
    slow = _ConeColumns(M, "l2")
    slow.least_squares = False                                        # the CVXPY path
    assert fast.least_squares
    a, b = fast(G, signs).value, slow(G, signs).value
    assert a == pytest.approx(b, rel=1e-6, abs=1e-9)
    # an upper bound: no feasible unit u (K u >= 0, |u| <= 1), sampled around h, does better
    K = signs[:, None] * M
    U = h / np.linalg.norm(h) + 0.3 * rng.standard_normal((20000, 5))
    U = U[(U @ K.T >= 0).all(1)]
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    assert len(U) > 10
    assert 0 < np.abs(U @ G[:, 0]).max() <= a * (1 + 1e-9)
