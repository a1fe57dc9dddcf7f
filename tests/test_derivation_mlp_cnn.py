"""The generic maps equal the paper's explicit MLP and CNN forms (Sahiner et al., ICLR 2024).

MLP: convex (2), (3), (5): Yhat = sum_k D_k X Z_k; BM (17)-(19): sum_k D_k X U_k V_k^T and
the cone (2 D_k - I) X U_k >= 0.  CNN with a non-trivial pooling: convex (23), (127), (130):
Yhat_i[c] = sum_k trace(P_a D_k^(i) X_i Z_k^(c)); BM (24), (125), (126):
Yhat_i = sum_k sum_j V_jk P_a D_k^(i) X_i u_jk.  Every reference formula below is numpy
matrix algebra written from the paper; bmdsl is only the thing under test.
"""
import numpy as np
import pytest

import bmdsl
from test_derivation_helpers import (MLP, average_pool_matrix, im2col, masks_or_ones, model,
                                     nuclear, random_point, rng, squared)
from model_texts import cnn, regularize

ACTS = ("linear", "gated_relu", "relu")


def check_maps(b, lifted, bm, slack, layer, seed=1):
    """Compare every map of BoundModel `b` with reference functions at one random point."""
    Z, U, V = random_point(b, seed)
    Yref = lifted(Z)
    assert np.allclose(b.predict_lifted(Z), Yref, rtol=1e-12, atol=1e-12)
    assert np.allclose(b.predict_bm(U, V), bm(U, V), rtol=1e-12, atol=1e-12)
    assert np.allclose(b.predict_lifted(b.lift(U, V)), bm(U, V), rtol=1e-12, atol=1e-12)
    # the dense operator: Yhat = sum_k L_k vec(Z_k), row-major vecs
    op = b.operator()
    assert op.shape == (b.P, Yref.size, b.p * b.q)
    assert np.allclose(np.einsum("kyz,kz->y", op, Z.reshape(b.P, -1)), Yref.reshape(-1))
    # the adjoint: <L Z, R> = <Z, L* R>, with L written from the paper
    R = rng(seed + 1).standard_normal(b.y_shape)
    assert np.isclose(np.sum(Yref * R), np.sum(Z * b.adjoint(R)), rtol=1e-12)
    G2 = b.adjoint(np.stack([R, 2 * R]))                # leading batch axes
    assert np.allclose(G2[1], 2 * b.adjoint(R))
    assert np.allclose(b.layer_matrix(), layer)
    if b.cone:
        assert np.allclose(b.cone_slack(U), slack(U))
    # objective values: BM (14) and the convex objective with the nuclear norm (l2, l2)
    reg = 0.5 * b.beta * (np.sum(U ** 2) + np.sum(V ** 2))
    assert np.isclose(b.objective_bm(U, V), squared(bm(U, V), b.Y) + reg, rtol=1e-12)
    convex = squared(b.predict_lifted(Z), b.Y) + b.beta * sum(nuclear(z) for z in Z)
    assert np.isclose(convex, squared(Yref, b.Y) + b.beta * sum(nuclear(z) for z in Z))


@pytest.mark.parametrize("act", ACTS)
def test_mlp_maps_are_the_papers_forms(act):
    g = rng(10)
    X, Y = g.standard_normal((7, 3)), g.standard_normal((7, 2))
    b = model(MLP, act).derive().bind(dict(X=X, Y=Y))
    D = masks_or_ones(b)                                # [P, n]
    if b.patterns is not None:                          # D_k = diag(1[X h_k >= 0]), eq. (3)
        assert np.array_equal(D, (b.patterns.gates @ X.T >= 0).astype(float))

    def lifted(Z):                                      # (2), (3), (5): sum_k D_k X Z_k
        return sum(np.diag(D[k]) @ X @ Z[k] for k in range(b.P))

    def bm(U, V):                                       # (17)-(19): sum_k D_k X U_k V_k^T
        return sum(np.diag(D[k]) @ X @ U[k].T @ V[k] for k in range(b.P))

    def slack(U):                                       # (19): (2 D_k - I_n) X U_k
        return np.stack([((2 * np.diag(D[k]) - np.eye(7)) @ X @ U[k].T).T for k in range(b.P)])

    check_maps(b, lifted, bm, slack, X)


CNN_BUILT = cnn(m=2, activation="{act}", loss="squared", regularize=regularize(), align=8)

CNN_GIVEN = """model cnn_given_pooling
input   X[n, k, h], P[a, k]
target  Y[n, c]
units   m = 2
weights W1[h], W2[c, a]
layer   A[n, r] = X[n, r, i] * W1[i]
output  Yhat[n, o] = W2[o, b] * P[b, r] * act(A)[n, r]
activation {act}
loss    squared
regularize beta = 0.1, C = l2, R = l2
"""


def cnn_references(b, X, Pa):
    """The paper's CNN maps for patches X [n, K, h] and pooling P_a [a, K]."""
    n, K, h = X.shape
    a, c = Pa.shape[0], b.y_shape[1]
    D = masks_or_ones(b)                                # [P, n, K]

    def lifted(Z):  # (23)/(127)/(130): Yhat_i[c] = sum_k tr(P_a D_k^(i) X_i Z_k^(c))
        Y = np.zeros((n, c))
        for i in range(n):
            for k in range(b.P):
                for o in range(c):
                    Zc = Z[k][:, o * a:(o + 1) * a]     # Z^(c): h x a, W2[c, a] row-major
                    Y[i, o] += np.trace(Pa @ np.diag(D[k, i]) @ X[i] @ Zc)
        return Y

    def bm(U, V):   # (24)/(125)/(126): Yhat_i = sum_k sum_j V_jk P_a D_k^(i) X_i u_jk
        return np.array([sum(V[k, j] @ Pa @ np.diag(D[k, i]) @ X[i] @ U[k, j]
                             for k in range(b.P) for j in range(b.m)) for i in range(n)])

    def slack(U):   # (24): (2 D_k^(i) - I) X_i u_jk >= 0
        return np.array([[[(2 * np.diag(D[k, i]) - np.eye(K)) @ X[i] @ U[k, j]
                           for i in range(n)] for j in range(b.m)] for k in range(b.P)])

    return lifted, bm, slack, X.reshape(n * K, h)


@pytest.mark.parametrize("act", ACTS)
def test_cnn_with_average_pooling_is_the_papers_form(act):
    g = rng(11)
    images, Y = g.standard_normal((3, 2, 4, 4)), g.standard_normal((3, 2))
    b = bmdsl.parse(CNN_BUILT.format(act=dict(zip(ACTS, (
        "linear", "gated_relu(patterns = 4, seed = 2)", "relu(patterns = 4, seed = 2)")))[act])
    ).derive().bind(dict(I=images, Y=Y))
    X, Pa = im2col(images, 3, 1), average_pool_matrix(4, 4, 2, 2)   # 16 positions -> a = 4
    assert np.allclose(b.arrays["X"], X) and np.allclose(b.arrays["P"], Pa)
    assert (b.p, b.q) == (18, 2 * 4)
    if b.patterns is not None:
        assert np.array_equal(masks_or_ones(b), (X @ b.patterns.gates.T >= 0).transpose(2, 0, 1))
    check_maps(b, *cnn_references(b, X, Pa))


@pytest.mark.parametrize("act", ACTS)
def test_cnn_with_a_user_given_pooling_matrix(act):
    g = rng(12)
    X, Pa, Y = g.standard_normal((3, 5, 4)), g.standard_normal((3, 5)), g.standard_normal((3, 2))
    b = bmdsl.parse(CNN_GIVEN.format(act=dict(zip(ACTS, (
        "linear", "gated_relu(patterns = 4, seed = 2)", "relu(patterns = 4, seed = 2)")))[act])
    ).derive().bind(dict(X=X, P=Pa, Y=Y))
    assert (b.p, b.q, b.a_shape) == (4, 2 * 3, (3, 5))
    check_maps(b, *cnn_references(b, X, Pa))
