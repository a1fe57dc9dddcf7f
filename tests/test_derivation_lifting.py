"""Multi-term equations lift correctly (lifting.build_network, its adjoint renaming), also
when data tensors are named like the networks' placeholders (Z, D).

Model: A = (X + 2 Zd) w1 per sample and Yhat[n] = act(A)[n] (I + 3 Dd[n]) w2, i.e.
  L_k(Z)[n] = D_k[n] (I + 3 Dd[n]) Z^T (X + 2 Zd)[n],
written below with plain numpy per sample."""
import numpy as np
import pytest

import bmdsl
from test_derivation_helpers import masks_or_ones, random_point, rng, squared

MULTI = """model multi
input   X[n, d], Z[n, d], D[n, c, c]
target  Y[n, c]
units   m = 2
weights W1[d], W2[c]
layer   A[n] = X[n, i] * W1[i] + 2 * Z[n, i] * W1[i]
output  Yhat[n, o] = act(A)[n] * W2[o] + 3 * act(A)[n] * D[n, o, {p}] * W2[{p}]
activation {act}
loss    squared
regularize beta = 0.1, C = l2, R = l2
"""
# {p} = "p": the second output term sums W2 over a new index; {p} = "i": over the name the
# first layer term uses for W1, so Z's indices come out swapped between terms and the
# adjoint renaming must not mix them up.
ACTS = ("linear", "gated_relu(patterns = 4, seed = 1)", "relu(patterns = 4, seed = 1)")


@pytest.mark.parametrize("p", ["p", "i"])
@pytest.mark.parametrize("act", ACTS)
def test_multi_term_lifting_matches_hand_formula(act, p):
    g = rng(40)
    n, d, c = 6, 3, 2
    X, Zd, Dd, Y = (g.standard_normal((n, d)), g.standard_normal((n, d)),
                    g.standard_normal((n, c, c)), g.standard_normal((n, c)))
    b = bmdsl.parse(MULTI.format(act=act, p=p)).derive().bind(dict(X=X, Z=Zd, D=Dd, Y=Y))
    assert np.array_equal(b.arrays["Z"], Zd) and np.array_equal(b.arrays["D"], Dd)
    Xe, Bn = X + 2 * Zd, np.eye(c) + 3 * Dd          # A = Xe w1, Yhat[n] = a_n Bn[n] w2
    D = masks_or_ones(b)
    if b.patterns is not None:
        assert np.array_equal(D, (b.patterns.gates @ Xe.T >= 0).astype(float))
    Z, U, V = random_point(b, 2)

    def lifted(Z):
        return np.array([sum(D[k, i] * Bn[i] @ Z[k].T @ Xe[i] for k in range(b.P))
                         for i in range(n)])

    def bm(U, V):
        return np.array([sum(D[k, i] * (Xe[i] @ U[k, j]) * (Bn[i] @ V[k, j])
                             for k in range(b.P) for j in range(b.m)) for i in range(n)])

    assert np.allclose(b.pre_activation(U), U @ Xe.T)
    assert np.allclose(b.predict_lifted(Z), lifted(Z))
    assert np.allclose(b.predict_bm(U, V), bm(U, V))
    R = g.standard_normal((n, c))
    assert np.isclose(np.sum(lifted(Z) * R), np.sum(Z * b.adjoint(R)), rtol=1e-12)
    # the adjoint written out: G_k = sum_n D_k[n] Xe[n] (Bn[n]^T R[n])^T
    G = np.array([sum(D[k, i] * np.outer(Xe[i], Bn[i].T @ R[i]) for i in range(n))
                  for k in range(b.P)])
    assert np.allclose(b.adjoint(R), G)
    assert np.isclose(b.objective_bm(U, V),
                      squared(bm(U, V), Y) + 0.05 * (np.sum(U ** 2) + np.sum(V ** 2)))
    if b.cone:
        slack = np.array([[(2 * D[k] - 1) * (Xe @ U[k, j]) for j in range(b.m)]
                          for k in range(b.P)])
        assert np.allclose(b.cone_slack(U), slack)


def test_multi_term_network_text_keeps_each_terms_indices():
    d = bmdsl.parse(MULTI.format(act=ACTS[1], p="p")).derive()
    text = d.text()
    # data Z / D keep their names; the lifted placeholders are Z_k and D_k
    assert ("Yhat[n, o] = sum_k (sum_{i} X[n, i] * D_k[n] * Z_k[i, o] + sum_{i} 2 * Z[n, i] * "
            "D_k[n] * Z_k[i, o] + sum_{i,p} 3 * X[n, i] * D_k[n] * D[n, o, p] * Z_k[i, p]") in text
    # the adjoint terms share G_k's indices (i, o); the output index summed in term 3 is o'
    assert "G_k[i, o] = sum_{n} X[n, i] * D_k[n] * R[n, o] + " in text
    assert "sum_{n,o'} 3 * X[n, i] * D_k[n] * D[n, o', o] * R[n, o']" in text
    assert "@data" not in text and "@data" not in d.latex()
