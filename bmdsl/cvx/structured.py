"""The lifted operator L = [L_1 ... L_P] built sparse from the lifted tensor network, never dense.

Each lifted term (Sahiner et al. 2024, Lemma 3.1) is coef * einsum(layer data, D_k, output
data, Z -> Yhat). An index that Z and Yhat share (the output class o of an MLP or CNN, whose
W2 index reaches Yhat untouched) is a Kronecker delta in L: L[y, z] = 0 unless y and z agree
on it. So the data and the mask are contracted once per pattern into

    T_k[y', z', s] = coef * einsum(layer data, D_k, output data -> y' z' s)

(y' and z' the indices Yhat and Z do not share, s the shared ones, taken once), and T_k's
non-zeros are scattered into L's rows (y) and columns (k, row-major vec of Z_k). For the CNN
T_k is the masked, pooled patch matrix per pooling cell and class: the constants are
P |y| p q / |s| numbers instead of the dense P |y| p q, and nothing of size |y| x P p q is
ever allocated (`BoundModel.operator()` builds that, and its transpose, in full).

The matrix is the same one `problem.stacked_operator` makes sparse from the dense operator
(to rounding: the contraction order differs), so the CVXPY program is the same; CVXPY
canonicalizes `L @ z` from a sparse constant without densifying it.
"""
from __future__ import annotations

import math

import numpy as np

from ..bind.bound import shared_indices, z_indices
from ..core.contract import Einsum, contract


def _term(spec: Einsum, z_shape, y_shape):
    """(the spec without Z, contracted to y' z' s; the sizes of its output indices; extra
    all-ones operands for indices no other operand carries)."""
    z = z_indices(spec)
    if len(set(z)) != len(z) or len(set(spec.out)) != len(spec.out):
        raise ValueError("a lifted term with a repeated index in Z or Yhat")
    shared = shared_indices(spec)
    out = tuple(i for i in spec.out if i not in shared) + \
        tuple(i for i in z if i not in shared) + shared
    size = dict(zip(spec.out, (int(s) for s in y_shape)))
    size.update(zip(z, (int(s) for s in z_shape)))
    ops = tuple(op for op in spec.operands if op[0] != "Z")
    carried = {i for _, idx in ops for i in idx}
    ones = {i: np.ones(size[i]) for i in out if i not in carried}
    ops += tuple((f"_ones_{i}", (i,)) for i in ones)
    return Einsum(spec.coef, ops, out), [size[i] for i in out], \
        {f"_ones_{i}": v for i, v in ones.items()}


def _strides(indices, shape) -> dict:
    strides, acc = {}, 1
    for i, s in zip(reversed(indices), reversed(tuple(shape))):
        strides[i] = acc
        acc *= int(s)
    return strides


def _linear(coords, strides, count, dtype):
    out = np.zeros(count, dtype=np.int64)
    for c, s in zip(coords, strides):
        if s:
            out += c.astype(np.int64) * s
    return out.astype(dtype)


def sparse_operator(bound):
    """L = [L_1 ... L_P] as a scipy.sparse CSC matrix [|y|, P p q], columns ordered (k,
    row-major vec of Z_k) as `problem.stacked_operator`'s; built one pattern at a time."""
    import scipy.sparse as sp
    z_shape = tuple(bound.w1_shape) + tuple(bound.w2_shape)
    y_shape = tuple(bound.y_shape)
    ny, pq = math.prod(y_shape), bound.p * bound.q
    arrays = dict(bound.arrays)
    terms = []
    for spec in bound.network.lifted:
        reduced, shape, ones = _term(spec, z_shape, y_shape)
        arrays.update(ones)
        rows = _strides(spec.out, y_shape)
        cols = _strides(z_indices(spec), z_shape)
        terms.append((reduced, shape, [rows.get(i, 0) for i in reduced.out],
                      [cols.get(i, 0) for i in reduced.out]))
    index = np.int32 if max(ny, pq) < 2 ** 31 else np.int64
    blocks = []
    for k in range(bound.P):
        if bound.masks is not None:
            arrays["D"] = bound.masks[k]
        data, rows, cols = [], [], []
        for reduced, shape, row_strides, col_strides in terms:
            T = np.asarray(contract(reduced, arrays), dtype=np.float64).reshape(shape)
            flat = np.flatnonzero(T)
            coords = np.unravel_index(flat, T.shape)
            data.append(T.reshape(-1)[flat])
            rows.append(_linear(coords, row_strides, flat.size, index))
            cols.append(_linear(coords, col_strides, flat.size, index))
            del T, flat, coords
        block = sp.coo_matrix((np.concatenate(data), (np.concatenate(rows),
                                                       np.concatenate(cols))),
                              shape=(ny, pq)).tocsc()   # tocsc sums the terms' duplicates
        block.eliminate_zeros()
        blocks.append(block)
    return sp.hstack(blocks, format="csc")


# -- the nuclear norm (C = R = l2) in small PSD blocks ------------------------------------------
def column_nuclear(Z):
    """||Z||_* for Z [p, q] as min (tr W + sum_j t_j) / 2 over W [s, s] symmetric and t with
    [[W, z_j], [z_j^T, t_j]] PSD for each column z_j of the longer side (s = min(p, q)).

    Exact: the blocks say t_j >= z_j^T W^+ z_j, and min over W of (tr W + tr Z^T W^+ Z) / 2
    is tr (Z Z^T)^{1/2} = ||Z||_*, at W = (Z Z^T)^{1/2}. CVXPY's normNuc writes one
    (p + q)-square PSD block instead, whose scaling is a dense [(p+q)(p+q+1)/2]^2 block in
    an interior point's KKT system (about 1.6 GB per pattern for p = 9, q = 160); here the
    max(p, q) blocks are (s+1)-square. One batched constraint [max(p, q), s+1, s+1].
    Returns (expression, constraints)."""
    import cvxpy as cp
    import scipy.sparse as sp
    p, q = Z.shape
    if p > q:
        Z = Z.T
        p, q = q, p
    s = p + 1
    W = cp.Variable((p, p), symmetric=True)
    t = cp.Variable(q)
    # vec(M) (row-major over [q, s, s]) from vec(W), vec(Z) (row-major) and t
    j = np.arange(q)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    rows_w = (j[:, None, None] * s * s + a[None] * s + b[None]).reshape(-1)
    cols_w = np.broadcast_to((a * p + b)[None], (q, p, p)).reshape(-1)
    MW = sp.csr_matrix((np.ones(rows_w.size), (rows_w, cols_w)), shape=(q * s * s, p * p))
    i = np.arange(p)
    rows_z = np.concatenate([(j[:, None] * s * s + i[None] * s + p).reshape(-1),
                             (j[:, None] * s * s + p * s + i[None]).reshape(-1)])
    cols_z = np.concatenate([(i[None] * q + j[:, None]).reshape(-1)] * 2)
    MZ = sp.csr_matrix((np.ones(rows_z.size), (rows_z, cols_z)), shape=(q * s * s, p * q))
    Mt = sp.csr_matrix((np.ones(q), (j * s * s + p * s + p, j)), shape=(q * s * s, q))
    flat = MW @ cp.vec(W, order="C") + MZ @ cp.vec(Z, order="C") + Mt @ t
    M = cp.reshape(flat, (q, s, s), order="C")
    return (cp.trace(W) + cp.sum(t)) / 2, [cp.PSD(M)]
