"""Shared helpers for the derivation tests (imported by test_derivation_*.py and
test_bound_*.py): small models, seeded data, and reference constructions written by hand from
the paper (Sahiner et al., ICLR 2024), independently of bmdsl's einsum code; the tests at the
end check the helpers themselves.

Layout conventions of bmdsl (docs/architecture.md): Z_k is [p, q] with rows the first-layer
weight flattened row-major and columns the second-layer weight flattened row-major; U is
[P, m, *w1_shape], V is [P, m, *w2_shape]; masks are [P, *A_shape].
"""
from __future__ import annotations

import numpy as np

import bmdsl
from model_texts import attention, mlp, regularize

ACTIVATIONS = {"linear": "linear", "gated_relu": "gated_relu(patterns = 5, seed = 3)",
               "relu": "relu(patterns = 5, seed = 3)"}

MLP = mlp(m="{m}", activation="{act}", loss="squared", regularize=regularize("0.1", "{C}", "{R}"),
          align=8)

ATTENTION = attention(m="{m}", activation="{act}", loss="squared",
                      regularize=regularize("0.1", "{C}", "{R}"), align=7)


def model(template: str, act: str = "linear", m: int = 3, C: str = "l2", R: str = "l2"):
    return bmdsl.parse(template.format(act=ACTIVATIONS.get(act, act), m=m, C=C, R=R))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_point(bound, seed: int = 1):
    """Random Z [P, p, q] and factors U [P, m, *w1], V [P, m, *w2] (float64)."""
    g = rng(seed)
    Z = g.standard_normal((bound.P, bound.p, bound.q))
    U = g.standard_normal((bound.P, bound.m, *bound.w1_shape))
    V = g.standard_normal((bound.P, bound.m, *bound.w2_shape))
    return Z, U, V


def masks_or_ones(bound) -> np.ndarray:
    """D_k as [P, *A_shape]; the linear model is one all-ones pattern."""
    return np.ones((1, *bound.a_shape)) if bound.masks is None else bound.masks


def squared(Yhat, Y) -> float:
    return 0.5 * float(np.sum((Yhat - Y) ** 2))


def nuclear(Z) -> float:
    return float(np.linalg.svd(Z, compute_uv=False).sum())


def commutation(d: int) -> np.ndarray:
    """K with K vec_row(W) = vec_col(W) for W in R^{d x d}: (K)[k*d + a, a*d + k] = 1."""
    K = np.zeros((d * d, d * d))
    for a in range(d):
        for k in range(d):
            K[k * d + a, a * d + k] = 1.0
    return K


def im2col(images: np.ndarray, kernel: int, padding: int) -> np.ndarray:
    """[n, ch, H, W] -> [n, K, ch*kernel^2], stride 1; K row-major over the output grid,
    each patch flattened (channel, row, column). Loops, written for the test."""
    n, ch, H, W = images.shape
    padded = np.zeros((n, ch, H + 2 * padding, W + 2 * padding))
    padded[:, :, padding:padding + H, padding:padding + W] = images
    rows, cols = H + 2 * padding - kernel + 1, W + 2 * padding - kernel + 1
    out = np.zeros((n, rows * cols, ch * kernel * kernel))
    for i in range(n):
        for r in range(rows):
            for c in range(cols):
                patch = []
                for z in range(ch):
                    for a in range(kernel):
                        for b in range(kernel):
                            patch.append(padded[i, z, r + a, c + b])
                out[i, r * cols + c] = patch
    return out


def average_pool_matrix(rows: int, cols: int, wr: int, wc: int) -> np.ndarray:
    """P_a in R^{a x K}: average over non-overlapping wr x wc windows (K row-major)."""
    P = np.zeros(((rows // wr) * (cols // wc), rows * cols))
    for r in range(rows):
        for c in range(cols):
            if r // wr < rows // wr and c // wc < cols // wc:
                P[(r // wr) * (cols // wc) + c // wc, r * cols + c] = 1.0 / (wr * wc)
    return P


# -- the helpers' own checks (they are the reference the other tests trust) ---------------
def test_commutation_maps_row_major_to_column_major_vec():
    W = rng(5).standard_normal((3, 3))
    assert np.array_equal(commutation(3) @ W.reshape(-1), W.reshape(-1, order="F"))


def test_im2col_matches_a_direct_convolution():
    images = rng(6).standard_normal((2, 2, 4, 5))
    kernel = rng(7).standard_normal((2, 3, 3))
    patches = im2col(images, 3, 1)                      # [n, 4*5, 18]
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    direct = np.array([[[np.sum(padded[i, :, r:r + 3, c:c + 3] * kernel) for c in range(5)]
                        for r in range(4)] for i in range(2)])
    assert np.allclose(patches @ kernel.reshape(-1), direct.reshape(2, -1))


def test_average_pool_matrix_averages_windows():
    P = average_pool_matrix(4, 4, 2, 2)
    grid = np.arange(16.0).reshape(4, 4)
    assert np.allclose(P @ grid.reshape(-1), [2.5, 4.5, 10.5, 12.5])
