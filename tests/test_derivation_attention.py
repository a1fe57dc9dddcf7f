"""The generic self-attention maps equal the paper's explicit forms (Sahiner et al., ICLR 2024).

Vec convention.  bmdsl flattens W1[e, f] and W2[g, o] row-major: Z[(e, f), (g, o)].  The
paper's vec^{-1} "takes chunks of d-length vectors and stacks them in columns" (App. A.12,
B.3), i.e. its u = vec(U) is COLUMN-major; vec^{-1}(v) in R^{c x d} stacks c-length chunks
as columns and V_j = vec^{-1}(v_j)^T, so v[l c + o] = V_j[l, o]: v is row-major, as in
bmdsl.  So the paper's Z is
Z_paper = K Z with K the commutation matrix (K vec_row(U) = vec_col(U)), and its blocks are
Z^(k,l) = Z_paper[k d:(k+1) d, l c:(l+1) c] in R^{d x c}.  Likewise the rows of the stacked
X_i (x) X_i (np.kron) are ordered (t, s), so diag(D_k^(i)) is the column-major vec of the
s x s mask, diag^{-1}(D_k^(i)) = M_ki with M_ki[s, t] = 1[(X_i H_k X_i^T)[s, t] >= 0].

Forms checked:
  (26)/(105)  Yhat_i = sum_j X_i U_j X_i^T X_i V_j                         (linear BM)
  (104)       Yhat_i = sum_{k,l} G_i[k, l] X_i Z^(k,l),  G_i = X_i^T X_i  (d x d)
  (133)/(134) Yhat_i = sum_k sum_j (diag^{-1}(D_k^(i)) .* (X_i U_jk X_i^T)) X_i V_jk,
              cone (2 diag^{-1}(D_k^(i)) - 1 1^T) .* (X_i U_jk X_i^T) >= 0
  (135)/(136) Yhat_i = sum_k sum_{a,b} G_ik^(a,b) X_i Z_k^(a,b),
              G_ik = (X_i (x) I_s)^T D_k^(i) (X_i (x) I_s)  (ds x ds, blocks s x s)
The task brief wrote G_i = X_i X_i^T for (104) and (X_i (x) I_s) D (X_i (x) I_d) for (135);
neither has compatible sizes (G_i is indexed by k, l in [d]; D_k^(i) is s^2 x s^2), and the
derivation in App. A.12 / B.3 gives the forms above, which is what is tested.
"""
import numpy as np
import pytest

from test_derivation_helpers import (ATTENTION, commutation, masks_or_ones, model, nuclear,
                                     random_point, rng, squared)

n, s, d, c = 2, 3, 2, 2


@pytest.fixture(scope="module", params=("linear", "gated_relu", "relu"))
def case(request):
    g = rng(20)
    X, Y = g.standard_normal((n, s, d)), g.standard_normal((n, s, c))
    b = model(ATTENTION, request.param, m=2).derive().bind(dict(X=X, Y=Y))
    return request.param, b, X


def masks(b, X):
    """M_ki [P, n, s, s]; for gated/ReLU checked against 1[X_i H_k X_i^T >= 0] and against
    the paper's D_k^(i) = diag(1[(X_i (x) X_i) vec_col(H_k) >= 0])."""
    M = masks_or_ones(b)
    if b.patterns is not None:
        for k, h in enumerate(b.patterns.gates):          # h: d x d (W1's shape)
            for i in range(n):
                assert np.array_equal(M[k, i], (X[i] @ h @ X[i].T >= 0).astype(float))
                diag = (np.kron(X[i], X[i]) @ h.reshape(-1, order="F") >= 0).astype(float)
                assert np.array_equal(diag, M[k, i].reshape(-1, order="F"))
    return M


def paper_blocks(Zk):
    """Z_k (bmdsl layout) -> the paper's blocks Z^(k,l) in R^{d x c}, [d, d, d, c]."""
    Zp = commutation(d) @ Zk
    return np.array([[Zp[k * d:(k + 1) * d, l * c:(l + 1) * c] for l in range(d)]
                     for k in range(d)])


def convex_104(X, Z):
    out = np.zeros((n, s, c))
    for i in range(n):
        G = X[i].T @ X[i]                                  # G_i = X_i^T X_i (d x d)
        blocks = paper_blocks(Z[0])
        out[i] = sum(G[k, l] * X[i] @ blocks[k, l] for k in range(d) for l in range(d))
    return out


def convex_135(X, M, Z):
    out = np.zeros((n, s, c))
    Kx = lambda x: np.kron(x, np.eye(s))                  # noqa: E731  X_i (x) I_s: s^2 x ds
    for i in range(n):
        for k in range(len(Z)):
            D = np.diag(M[k, i].reshape(-1, order="F"))   # D_k^(i), s^2 x s^2
            G = Kx(X[i]).T @ D @ Kx(X[i])                  # ds x ds, blocks (a, b) of s x s
            blocks = paper_blocks(Z[k])
            out[i] += sum(G[a * s:(a + 1) * s, b_ * s:(b_ + 1) * s] @ X[i] @ blocks[a, b_]
                          for a in range(d) for b_ in range(d))
    return out


def bm_133(X, M, U, V):
    return np.array([sum((M[k, i] * (X[i] @ U[k, j] @ X[i].T)) @ X[i] @ V[k, j]
                         for k in range(len(U)) for j in range(U.shape[1])) for i in range(n)])


def test_attention_forms(case):
    act, b, X = case
    M = masks(b, X)
    Z, U, V = random_point(b, 2)
    assert (b.p, b.q) == (d * d, d * c)
    if act == "linear":   # (26)/(105) and (104)
        bm = np.array([sum(X[i] @ U[0, j] @ X[i].T @ X[i] @ V[0, j] for j in range(b.m))
                       for i in range(n)])
        assert np.allclose(b.predict_bm(U, V), bm)
        assert np.allclose(b.predict_lifted(Z), convex_104(X, Z))
    assert np.allclose(b.predict_bm(U, V), bm_133(X, M, U, V))           # (133)/(134)
    assert np.allclose(b.predict_lifted(Z), convex_135(X, M, Z))         # (135)/(136)
    assert np.allclose(b.predict_lifted(b.lift(U, V)), bm_133(X, M, U, V))


def test_attention_adjoint_operator_layer_and_cone(case):
    act, b, X = case
    M = masks(b, X)
    Z, U, V = random_point(b, 3)
    R = rng(4).standard_normal((n, s, c))
    ref = convex_135(X, M, Z)
    assert np.isclose(np.sum(ref * R), np.sum(Z * b.adjoint(R)), rtol=1e-12)
    op = b.operator()
    assert np.allclose(np.einsum("kyz,kz->y", op, Z.reshape(b.P, -1)), ref.reshape(-1))
    # the arrangement matrix: rows (i, s, t), columns W1[e, f] row-major = stacked X_i (x) X_i
    assert np.allclose(b.layer_matrix(), np.vstack([np.kron(X[i], X[i]) for i in range(n)]))
    if act == "relu":     # (134): (2 diag^{-1}(D_k^(i)) - 1 1^T) .* (X_i U_jk X_i^T)
        slack = np.array([[[(2 * M[k, i] - 1) * (X[i] @ U[k, j] @ X[i].T) for i in range(n)]
                           for j in range(b.m)] for k in range(b.P)])
        assert np.allclose(b.cone_slack(U), slack)


def test_attention_objectives(case):
    act, b, X = case
    M = masks(b, X)
    Z, U, V = random_point(b, 5)
    reg = 0.5 * b.beta * (np.sum(U ** 2) + np.sum(V ** 2))
    assert np.isclose(b.objective_bm(U, V), squared(bm_133(X, M, U, V), b.Y) + reg, rtol=1e-12)
    # convex objective: the nuclear norm does not see the row permutation K (orthogonal)
    ours = squared(b.predict_lifted(Z), b.Y) + b.beta * sum(nuclear(z) for z in Z)
    paper = squared(convex_135(X, M, Z), b.Y) + b.beta * sum(
        nuclear(commutation(d) @ z) for z in Z)
    assert np.isclose(ours, paper, rtol=1e-12)
