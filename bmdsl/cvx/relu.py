"""The ReLU cone part of the convex program (3), (23), (136): numpy + cvxpy only.

This file is pasted verbatim into the emitted stand-alone module (see emit.py): it may
import nothing but numpy and cvxpy.

The cones. With pre-activation A(u) = M u (M the arrangement matrix, one row per entry of
A, row-major) and a pattern D_k, the left factors of pattern k live in
    K_k = {u : (2 D_k - 1) * A(u) >= 0} = {u : K_k u >= 0},   K_k = diag(2 D_k - 1) M.
The ReLU norm of Z_k is the constrained gauge (4) of conv{u v^T : u in B_C, K_k u >= 0,
v in B_R}.

Exact case (q = 1 or R = l1). Every right atom can then be taken as +-e_j (for q = 1 there
is no other direction; for R = l1 the extreme points of B_R are +-e_j), and a cone is closed
under positive sums, so
    ||Z_k||_{D,K} = min sum_j ||a_j||_C + ||b_j||_C  s.t.  Z_k[:, j] = a_j - b_j,  a_j, b_j in K_k,
which is the program (5) of Pilanci & Ergen 2020 column by column.

Otherwise (q > 1, R != l1) the gauge is NP-hard; the same split program is a RESTRICTION
(only the atoms u (+-e_j)^T, valid ones as ||+-e_j||_R = 1), so it bounds p* from above,
and `sdp_cone_norm` below is a RELAXATION that bounds it from below.
"""
import numpy as np
import cvxpy as cp


def cone_matrices(M, masks):
    """K_k = diag(2 D_k - 1) M for every pattern: [P, N, p] from M [N, p], masks [P, *a]."""
    signs = 2.0 * np.asarray(masks, dtype=np.float64).reshape(len(masks), -1) - 1.0
    return signs[:, :, None] * np.asarray(M, dtype=np.float64)[None]


def split_cone_norm(K, p, q, vnorm_C):
    """Z = A - B with K A >= 0, K B >= 0 column-wise; regularizer sum_j ||a_j||_C + ||b_j||_C.

    Returns (Z expression, regularizer, constraints, (A, B)). Exact for q = 1 or R = l1,
    an upper bound (restriction) otherwise; see the module docstring."""
    A, B = cp.Variable((p, q)), cp.Variable((p, q))
    reg = cp.sum(vnorm_C(A, axis=0)) + cp.sum(vnorm_C(B, axis=0))
    return A - B, reg, [K @ A >= 0, K @ B >= 0], (A, B)


# Relaxations of ||u||_C^2 <= 1 by a linear-in-W function phi with phi(u u^T) <= ||u||_C^2:
# tr(uu^T) = ||u||_2^2; max_i u_i^2 = ||u||_inf^2; sum_ij |u_i u_j| = ||u||_1^2.
SDP_PHI = {"l2": cp.trace,
           "linf": lambda W: cp.max(cp.diag(W)),
           "l1": lambda W: cp.sum(cp.abs(W))}


def nnls_residual(A, b, tol=1e-12):
    """min ||A x - b|| over x >= 0 (Lawson-Hanson active set), numpy only."""
    n = A.shape[1]
    x, passive = np.zeros(n), np.zeros(n, dtype=bool)
    for _ in range(3 * n + 10):
        w = A.T @ (b - A @ x)
        if passive.all() or np.max(np.where(passive, -np.inf, w)) <= tol:
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if z[passive].min() > tol:
                x = z
                break
            neg = passive & (z <= tol)
            x = x + np.min(x[neg] / (x[neg] - z[neg])) * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return float(np.linalg.norm(A @ x - b))


def extreme_rows(K, tol=1e-9):
    """The rows of K generating the extreme rays of cone(rows of K), unit-normalized.

    If k_i = sum_l lam_l k_l (lam >= 0) then k_i^T W k_j = sum_l lam_l k_l^T W k_j, so the
    pair constraints of the extreme rows imply all others: same SDP, far fewer (and far
    better conditioned) constraints. Rows are dropped one at a time when they lie in the
    cone of the rows still kept, which keeps the cone (and handles repeated rows). A wrong
    decision can only drop constraints, which keeps the SDP a valid relaxation."""
    K = np.asarray(K, dtype=np.float64)
    K = K[np.abs(K).max(axis=1) > 0] if K.size else K.reshape(0, K.shape[-1])
    K = K / np.linalg.norm(K, axis=1, keepdims=True)
    keep = np.ones(len(K), dtype=bool)
    for i in range(len(K)):
        keep[i] = False
        if not keep.any() or nnls_residual(K[keep].T, K[i]) > tol:
            keep[i] = True
    return K[keep]


def cone_pair_rows(E):
    """Rows of (E W E^T)_{ij}, i < j, as linear functionals of the row-major vec(W); i = j
    is implied by W PSD. E: the extreme rows of a cone matrix (extreme_rows)."""
    I, J = np.triu_indices(E.shape[0], 1)
    # -1 cannot be inferred from zero pairs (a cone with at most one extreme row)
    return (E[I][:, :, None] * E[J][:, None, :]).reshape(len(I), E.shape[1] ** 2)


def pair_count(K):
    """Pairs of non-zero rows of K: the size of the pair constraints before any reduction."""
    n = int(np.count_nonzero(np.abs(np.asarray(K)).max(axis=1) > 0)) if np.size(K) else 0
    return n * (n - 1) // 2


def sdp_cone_norm(Z, E, C, R):
    """A convex LOWER bound on the constrained gauge (4) of Z [p, q], with its constraints:

        min (phi_C(W1) + phi_R(W2)) / 2  s.t.  [[W1, Z], [Z^T, W2]] PSD,  K W1 K^T >= 0 entrywise.

    Why it is a relaxation: take any decomposition Z = sum_i t_i u_i v_i^T, t_i >= 0, with
    u_i in B_C and K u_i >= 0, v_i in B_R, and set W1 = sum t_i u_i u_i^T, W2 = sum t_i v_i v_i^T.
    Then [[W1, Z], [Z^T, W2]] = sum t_i [u_i; v_i][u_i; v_i]^T is PSD; K W1 K^T =
    sum t_i (K u_i)(K u_i)^T >= 0 entrywise because K u_i >= 0; and phi(u u^T) <= 1 on the
    unit balls (SDP_PHI), so the objective is <= sum t_i. Minimizing over decompositions,
    the SDP value is <= ||Z||_{D,K}, hence the program using it bounds p* from below.
    For (l2, l2) without the cone rows this SDP is exactly the nuclear norm.
    E: the extreme rows of K (extreme_rows), whose pairs imply all of K W1 K^T >= 0."""
    p, q = Z.shape
    W1 = cp.Variable((p, p), symmetric=True)
    W2 = cp.Variable((q, q), symmetric=True)
    cons = [cp.bmat([[W1, Z], [Z.T, W2]]) >> 0]
    rows = cone_pair_rows(E)
    if rows.shape[0]:
        cons.append(rows @ cp.vec(W1, order="C") >= 0)
    return 0.5 * (SDP_PHI[C](W1) + SDP_PHI[R](W2)), cons
