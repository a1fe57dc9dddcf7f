"""The generic CVXPY lowering equals the paper's explicit programs, written here by hand.

Each reference program below is built from the paper's formula for that architecture
(Sahiner et al. 2024's equation numbers; Pilanci & Ergen 2020, eq. (5)), not from bmdsl's operators: only the masks D_k
are shared (bound.masks), as they define which program is meant. Optima agree to 1e-6
relative, and each optimum is below F(0) (the solution is not the trivial Z = 0).
"""
import cvxpy as cp
import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from model_texts import attention, cnn, mlp, regularize

REL = 1e-6

MLP = mlp(activation="{act}", loss="squared", regularize=regularize("{beta}"))
MLP_SCALAR = mlp("mlp1", scalar=True, activation="relu(patterns = exact)", loss="squared",
                 regularize=regularize("0.05"))
CNN = cnn(pool="{pool}", activation="{act}", loss="squared", regularize=regularize("0.002"))
ATTENTION = attention(activation="{act}", loss="squared", regularize=regularize("0.01", R="{R}"))
GATED = "gated_relu(patterns = 6, seed = 1)"
RELU = "relu(patterns = 6, seed = 1)"


def solve(objective, constraints=()):
    prob = cp.Problem(cp.Minimize(objective), list(constraints))
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    return prob.value


def squared(pred, Y):
    return 0.5 * cp.sum_squares(pred - Y)


def bmdsl_value(text, data):
    bound = bmdsl.parse(text).derive().bind(data)
    sol = bound.to_cvxpy().solve()
    assert sol.status == "optimal" and sol.exactness == "exact"
    return bound, sol.value


def check(value, reference, Y):
    assert abs(value - reference) <= REL * abs(reference)
    assert reference < 0.5 * np.sum(Y ** 2) * (1 - 1e-3)  # better than Z = 0


# ------------------------------------------------------------------------- MLP
def test_mlp_linear_nuclear_norm_program_2():
    data = datasets.spiral(10, 2, seed=3)
    bound, value = bmdsl_value(MLP.format(act="linear", beta=0.01), data)
    X, Y = data["X"], data["Y"]
    Z = cp.Variable((2, 2))
    ref = solve(squared(X @ Z, Y) + 0.01 * cp.normNuc(Z))              # (2)
    check(value, ref, Y)


def test_mlp_gated_relu_program_5():
    data = datasets.spiral(10, 2, seed=3)
    bound, value = bmdsl_value(MLP.format(act=GATED, beta=0.01), data)
    X, Y = data["X"], data["Y"]
    Zs = [cp.Variable((2, 2)) for _ in bound.masks]
    pred = sum(np.diag(D) @ X @ Z for D, Z in zip(bound.masks, Zs))     # (5): sum D_k X Z_k
    ref = solve(squared(pred, Y) + 0.01 * sum(cp.normNuc(Z) for Z in Zs))
    check(value, ref, Y)


def test_mlp_relu_scalar_output_seed002_program_5():
    data = datasets.spiral_scalar(8, seed=1)
    bound, value = bmdsl_value(MLP_SCALAR, data)
    assert bound.patterns.source == "exact"
    X, y = data["X"], data["Y"]
    v = [cp.Variable(2) for _ in bound.masks]
    w = [cp.Variable(2) for _ in bound.masks]
    pred, reg, cons = 0, 0, []
    for D, vi, wi in zip(bound.masks, v, w):                          # Pilanci & Ergen 2020, eq. (5)
        pred = pred + np.diag(D) @ X @ (vi - wi)
        reg = reg + cp.norm(vi, 2) + cp.norm(wi, 2)
        cons += [(2 * np.diag(D) - np.eye(len(D))) @ X @ vi >= 0,
                 (2 * np.diag(D) - np.eye(len(D))) @ X @ wi >= 0]
    ref = solve(0.5 * cp.sum_squares(pred - y) + 0.05 * reg, cons)
    check(value, ref, y)


# ------------------------------------------------------------------------- CNN
def _patches(I):
    """X_i in R^{K x h}: 3x3 patches, zero padding 1, positions row-major (paper (22))."""
    n, ch, H, W = I.shape
    padded = np.pad(I, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return np.stack([np.stack([padded[i, :, r:r + 3, c:c + 3].ravel() for r in range(H)
                               for c in range(W)]) for i in range(n)])


def _average_2x2(H, W):
    """P_a in R^{a x K}: mean over each 2x2 block of the H x W grid of positions."""
    P = np.zeros(((H // 2) * (W // 2), H * W))
    for r in range(H):
        for c in range(W):
            P[(r // 2) * (W // 2) + c // 2, r * W + c] = 0.25
    return P


def test_cnn_linear_average_pooling_program_127():
    data = datasets.images(3, 1, 4, 4, classes=2, seed=2)
    bound, value = bmdsl_value(CNN.format(pool="average(2x2)", act="linear"), data)
    Xs, Y, P = _patches(data["I"]), data["Y"], _average_2x2(4, 4)
    a, c, h = P.shape[0], Y.shape[1], Xs.shape[2]
    Z = cp.Variable((h, a * c))                                        # [Z^(1) ... Z^(c)]
    pred = cp.vstack([cp.hstack([cp.trace(P @ X @ Z[:, j * a:(j + 1) * a]) for j in range(c)])
                      for X in Xs])                                    # (127)
    check(value, solve(squared(pred, Y) + 0.002 * cp.normNuc(Z)), Y)


def test_cnn_gated_relu_average_pooling_program_130():
    data = datasets.images(3, 1, 4, 4, classes=2, seed=2)
    bound, value = bmdsl_value(CNN.format(pool="average(2x2)", act=GATED), data)
    Xs, Y, P = _patches(data["I"]), data["Y"], _average_2x2(4, 4)
    a, c, h = P.shape[0], Y.shape[1], Xs.shape[2]
    Zs = [cp.Variable((h, a * c)) for _ in bound.masks]
    rows = []
    for i, X in enumerate(Xs):                                         # (130)
        rows.append(cp.hstack([sum(cp.trace(P @ np.diag(D[i]) @ X @ Z[:, j * a:(j + 1) * a])
                                   for D, Z in zip(bound.masks, Zs)) for j in range(c)]))
    ref = solve(squared(cp.vstack(rows), Y) + 0.002 * sum(cp.normNuc(Z) for Z in Zs))
    check(value, ref, Y)


def test_cnn_relu_global_pooling_single_output_program_23():
    data = datasets.images(3, 1, 4, 4, classes=2, seed=2)
    data = {"I": data["I"], "Y": data["Y"][:, :1] - 0.5}             # c = 1, a = 1: q = 1
    bound, value = bmdsl_value(CNN.format(pool="global", act=RELU), data)
    Xs, Y = _patches(data["I"]), data["Y"]
    P = np.full((1, 16), 1 / 16)
    v = [cp.Variable(9) for _ in bound.masks]
    w = [cp.Variable(9) for _ in bound.masks]
    pred, reg, cons = [], 0, []
    for i, X in enumerate(Xs):                                          # (23), a = c = 1
        pred.append(sum(P @ np.diag(D[i]) @ X @ (vk - wk) for D, vk, wk in zip(bound.masks, v, w)))
    for D, vk, wk in zip(bound.masks, v, w):
        reg = reg + cp.norm(vk, 2) + cp.norm(wk, 2)
        for i, X in enumerate(Xs):                                  # K_k = (2D_k - I) [X_1; ...]
            S = 2 * np.diag(D[i]) - np.eye(16)
            cons += [S @ X @ vk >= 0, S @ X @ wk >= 0]
    ref = solve(squared(cp.hstack(pred), Y[:, 0]) + 0.002 * reg, cons)
    check(value, ref, Y)


# ------------------------------------------------------------------ self-attention
def _attention_prediction(Xs, blocks, masks):
    """(104)/(135): Yhat_i = sum_k sum_{f,g} diag(D_k^(i) (x_f * x_g)) X_i Z_k^(f,g), where
    Z_k^(f,g) is the d x c block (f, g) of Z_k in R^{d^2 x dc}; without masks D = 1, and
    diag(1 (x_f * x_g)) = G_i[f, g] I with G_i = X_i^T X_i, which is (104)."""
    d = Xs.shape[2]
    out = []
    for i, X in enumerate(Xs):
        total = 0
        for D, Z in zip(masks, blocks):
            for f in range(d):
                for g in range(d):
                    weight = D[i] @ (X[:, f] * X[:, g])
                    total = total + np.diag(weight) @ X @ Z(f, g)
        out.append(total)
    return cp.vstack([cp.vec(o, order="C") for o in out])  # rows: samples; (s, c) row-major


def _blocks(Z, d, c):
    return lambda f, g: Z[f * d:(f + 1) * d, g * c:(g + 1) * c]


def _attention_data():
    return datasets.sequences(3, 3, 2, 2, seed=4)


def test_attention_linear_program_104():
    data = _attention_data()
    bound, value = bmdsl_value(ATTENTION.format(act="linear", R="l2"), data)
    Xs, Y = data["X"], data["Y"]
    d, c = 2, 2
    Z = cp.Variable((d * d, d * c))
    G = [X.T @ X for X in Xs]
    pred = cp.vstack([cp.vec(sum(G[i][f, g] * (X @ _blocks(Z, d, c)(f, g))       # (104)
                                 for f in range(d) for g in range(d)), order="C")
                      for i, X in enumerate(Xs)])
    ref = solve(squared(pred, Y.reshape(3, -1)) + 0.01 * cp.normNuc(Z))
    check(value, ref, Y)
    ones = np.ones((1, 3, 3, 3))  # the same program through the masked form with D = 1
    pred1 = _attention_prediction(Xs, [_blocks(Z, d, c)], ones)
    assert abs(solve(squared(pred1, Y.reshape(3, -1)) + 0.01 * cp.normNuc(Z)) - ref) <= REL * ref


def test_attention_gated_relu_program_135():
    data = _attention_data()
    bound, value = bmdsl_value(ATTENTION.format(act=GATED, R="l2"), data)
    Xs, Y = data["X"], data["Y"]
    Zs = [cp.Variable((4, 4)) for _ in bound.masks]
    pred = _attention_prediction(Xs, [_blocks(Z, 2, 2) for Z in Zs], bound.masks)   # (135)
    ref = solve(squared(pred, Y.reshape(3, -1)) + 0.01 * sum(cp.normNuc(Z) for Z in Zs))
    check(value, ref, Y)


def test_attention_relu_with_R_l1_program_136():
    """(136) with R = l1: every right atom is +-e_j, so ||Z_k||_{D,K} = sum_j ||a_j|| + ||b_j||
    over Z_k[:, j] = a_j - b_j with (2 D_k^(i) - 1) o (X_i U(a_j) X_i^T) >= 0, where the
    column a_j in R^{d^2} holds U column-major (the paper's vec^{-1}, rows (f, e))."""
    data = _attention_data()
    bound, value = bmdsl_value(ATTENTION.format(act=RELU, R="l1"), data)
    Xs, Y = data["X"], data["Y"]
    d, c = 2, 2
    A = [cp.Variable((d * d, d * c)) for _ in bound.masks]
    B = [cp.Variable((d * d, d * c)) for _ in bound.masks]
    cons, reg = [], 0
    for D, Ak, Bk in zip(bound.masks, A, B):
        for part in (Ak, Bk):
            reg = reg + cp.sum(cp.norm(part, 2, axis=0))
            for j in range(d * c):
                U = cp.reshape(part[:, j], (d, d), order="F")
                cons += [cp.multiply(2 * D[i] - 1, X @ U @ X.T) >= 0 for i, X in enumerate(Xs)]
    pred = _attention_prediction(Xs, [_blocks(Ak - Bk, d, c) for Ak, Bk in zip(A, B)], bound.masks)
    ref = solve(squared(pred, Y.reshape(3, -1)) + 0.01 * reg, cons)
    check(value, ref, Y)


@pytest.mark.parametrize("pool", ["average(2x2)", "global"])
def test_cnn_relu_exactness_follows_q(pool):
    """CNN ReLU is exact iff q = c a = 1 (here c = 1); average pooling gives a > 1: bracket."""
    data = datasets.images(3, 1, 4, 4, classes=2, seed=2)
    data = {"I": data["I"], "Y": data["Y"][:, :1]}
    bound = bmdsl.parse(CNN.format(pool=pool, act=RELU)).derive().bind(data)
    assert bound.to_cvxpy().exactness == ("exact" if pool == "global" else "bracket")
