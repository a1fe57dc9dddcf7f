"""The squared loss through its sufficient statistics (the normal equations of (16)).

With Z_k = sum_j u_kj v_kj^T (Z [P, p, q], N = P p q entries) the prediction is linear,
Yhat = L(Z) (eq. (16)), so F = 1/2 ||L(Z) - Y||^2 = 1/2 z'Gz - b'z + 1/2 ||Y||^2 with
G = L^* L [N, N] and b = L^*(Y). One pass over the samples, in chunks, builds G, b and
||Y||^2 (cost |y| N^2); afterwards the loss, its lifted gradient G_k = L_k^*(Yhat - Y)
(eq. (20)) and the Gauss-Newton block J^T J of Newton's Hessian cost O(N^2) per step,
whatever the number of samples n. That is what lets Newton's method (newton.py) and the
certificate run at n = 100000 (docs/performance.md).

Used for float64 full-batch steps only: the expansion subtracts numbers of size ||Y||^2,
an absolute error ~ 1e-16 ||Y||^2 in float64, which would be ~ 1e-7 ||Y||^2 in float32.
"""
import numpy as np
import torch

from .blocktree import GRAM_BLOCKS, MIN_BLOCK, block_count, block_start  # noqa: F401 (as before)
from .blocktree import pairwise_sum, tree_sum  # noqa: F401
from .forms import plain_squared
from .freeoutputs import Outputs, free_outputs  # noqa: F401 (as before)
from .threads import on_one_thread

# The largest N for a dense G comes from time: the lifted solvers factor G + rho I
# (Cholesky, N^3 / 3 flops) before their first iteration, which should take at most
# FACTOR_SECONDS at FACTOR_FLOPS (float64 Cholesky on one core of this 2-core machine
# at load ~8: 5.8e9 flop/s at N = 1500, 9.9e9 at N = 3000); 10 s gives N <= 5313, which
# takes the n = 2000 CNN (P p q = 5184). Memory is the trainer's to check, before anything
# is built: warmfootprint.gram and each warm start's estimate against the memory budget
# (bmdsl.core.memory); over it, the Gram path and that warm start are refused.
FACTOR_SECONDS = 10.0
FACTOR_FLOPS = 5e9


def gram_max_n(seconds=FACTOR_SECONDS, flops=FACTOR_FLOPS) -> int:
    """The largest N whose factorization, N^3 / 3 flops, takes at most `seconds`."""
    n = round((3.0 * seconds * flops) ** (1.0 / 3.0))   # the cube root, maybe one above
    return n if n ** 3 <= 3.0 * seconds * flops else n - 1


GRAM_MAX_N = gram_max_n()
# The proximal Newton and the prox ADMM (non-quadratic losses) take N <= SECOND_ORDER_N_MAX
# only: above it the lifted FISTA was faster. The CNN with logistic at n = 5000 (N = 2592):
# the FISTA certified in 25 s (200 iterations) where the proximal Newton took 301 s (22
# steps, each ~ |y| N^2 + N^3 / 3, about N FISTA iterations) and the prox ADMM was not
# certified in 323 s (1594 iterations); docs/performance.md, "Other sizes"
SECOND_ORDER_N_MAX = 1500
GRAM_CHUNK = 20_000_000        # entries of one chunk of the matrix of L [rows, N]
GRAM_TILE = 128                # rows of G_F per product in a leaf (its upper triangle only)


def gram_pays(problem, dtype, full_batch) -> bool:
    """Squared loss, float64, full batch, and the block G_F small enough to be dense."""
    return (plain_squared(problem.spec) and dtype == torch.float64 and full_batch
            and problem.P * problem.p * problem.q // problem.free_outputs <= GRAM_MAX_N)


def lift(U, V):
    """Z_k = sum_j u_kj v_kj^T: [P, p, q] for U [P, m, *w1], V [P, m, *w2]."""
    P, m = U.shape[:2]
    return torch.einsum("kja,kjb->kab", U.reshape(P, m, -1), V.reshape(P, m, -1))


class Gram:
    """G = L^* L = I_c (x) G_F in the block layout of the free outputs (Outputs): the block
    G_F [N/c, N/c], B = L^*(Y) as [N/c, c] and ||Y||^2; `build` is the one data pass."""

    def __init__(self, GF, B, yy, shape, layout=None):
        """layout None: G given whole (c = 1, B may be the vector b)."""
        self.layout = layout or Outputs(None, GF.shape[0], 1, (1,))
        self.GF, self.B, self.yy, self.shape = GF, B.reshape(-1, self.layout.c), yy, tuple(shape)
        self.index, self.c = self.layout.index.to(GF.device), self.layout.c

    @property
    def b(self):
        """L^*(Y) in Z's flat order [N]."""
        return self.layout.unblock(self.B, (-1,))

    def dense(self):
        """L^* L [N, N] whole (c^2 times the block's entries)."""
        G = self.GF.new_zeros(self.index.numel(), self.index.numel())
        for o in range(self.c):
            G[self.index[:, o, None], self.index[None, :, o]] = self.GF
        return G

    @classmethod
    def build(cls, problem, chunk=GRAM_CHUNK):
        """Columns L(e_kab) = B(D_k A(e_a), e_b) come from the Jacobian in U at V = the
        basis of w2 with the free outputs at 0 (problem.jac_u), rows of output 0 only:
        G_F = F^T F, B = F^T Y (Y's outputs as columns). The samples are
        summed in `block_count(n)` blocks (global sample indices) and the blocks'
        statistics pairwise over a fixed binary tree (`tree_sum`), so the rounding is the
        same however the samples are shared among processes: a shard holds whole blocks
        (problem.blocks), each rank sums the subtrees inside its blocks and the rest of the
        tree is combined identically on every rank (`problem.share` sends a subtree's sum
        from the rank that holds it)."""
        P, p, q = problem.P, problem.p, problem.q
        layout = Outputs(problem.spec, P, p, problem.w2_shape)
        c, N = layout.c, layout.nf
        Y = problem.Y
        rows_per_sample = max(1, Y.numel() // max(problem.n, 1))
        step = max(1, chunk // (N * rows_per_sample))
        E = layout.basis(Y.dtype, Y.device)
        E = E.reshape((1,) + tuple(E.shape)).expand((P,) + tuple(E.shape))
        n_all, ranges, first = problem.blocks   # all samples, [b0, b1) per rank, mine
        offset = block_start(n_all, ranges[first][0])     # of this rank's samples
        # G_F's upper triangle by row tiles, rows [a, b) x columns [a, N) stored flat from
        # at[i]: a leaf's products and the tree's additions touch ~half of G_F (the n = 2000
        # CNN's leaf, 16 rows, N / c = 2592, with its addition: 45 against 84 ms, medians
        # at load 3-4, bench/bench_gram_tiles.py)
        tiles = [(a, min(N, a + GRAM_TILE)) for a in range(0, N, GRAM_TILE)]
        at = [sum((b - a) * (N - a) for a, b in tiles[:i]) for i in range(len(tiles) + 1)]
        size = at[-1] + N * c + 1

        free = []      # buffers of added partial sums (a fresh 1 MB zeros costs page faults)

        def leaf(k):
            """[G_F B yy] of global block k, flattened; sub-chunks of fixed size in order.
            The first is written, not added to zeros: the same sums (x + 0 = x), without
            a pass over the [N, N] buffer (a leaf of the n = 2000 CNN: 7-17% faster,
            bench/bench_gram_leaf.py)."""
            start, stop = block_start(n_all, k) - offset, block_start(n_all, k + 1) - offset
            out = free.pop() if free else torch.empty(size, dtype=Y.dtype, device=Y.device)
            B = out[at[-1]:at[-1] + N * c].view(N, c)
            if start >= stop:
                return out.zero_()
            for s in range(start, stop, step):
                idx = torch.arange(s, min(stop, s + step), device=Y.device)
                arrays = problem.batch(idx)
                y = arrays[problem.spec["target"]]
                M = problem.jac_u(E, arrays).permute(0, 1, 3, 2).reshape(-1, N)
                M = layout.rows(M, y.shape)
                yy = y.reshape(-1) @ y.reshape(-1)
                for (a, b), t in zip(tiles, at):     # beta = 0: the old entries ignored
                    out[t:t + (b - a) * (N - a)].view(b - a, N - a).addmm_(
                        M[:, a:b].T, M[:, a:], beta=float(s > start))
                B.addmm_(M.T, layout.y_block(y), beta=float(s > start))
                out[-1] = out[-1] + yy if s > start else yy
            return out

        if problem.sharded:
            total = on_one_thread(tree_sum)(ranges, first, leaf, problem.share, size,
                                            free.append)
        else:           # one process: tree_sum's additions, in the same order
            total = on_one_thread(pairwise_sum)(0, ranges[-1][1], leaf, free.append)
        G = total.new_empty(N, N)
        for (a, b), t in zip(tiles, at):
            G[a:b, a:] = total[t:t + (b - a) * (N - a)].view(b - a, N - a)
        G.triu_().add_(G.triu(1).T)      # the upper triangle mirrored: exactly symmetric
        return cls(G, total[at[-1]:at[-1] + N * c].view(N, c),
                   float(total[-1]), (P, p, q), layout)

    def numpy(self):
        """(G, b, ||Y||^2) as float64 numpy, the form bmdsl.certificates takes: G as an
        operator (G @ z through the block, never the [N, N] matrix)."""
        return (BlockOperator(self.GF.detach().cpu().double().numpy(),
                              self.index.cpu().numpy()),
                self.b.detach().cpu().double().numpy(), float(self.yy))

    def loss(self, Z):
        X = self.layout.block(Z)
        return 0.5 * (X * (self.GF @ X)).sum() - (self.B * X).sum() + 0.5 * self.yy

    def gradient(self, Z):
        """L^*(L(Z) - Y) = G z - b as [P, p, q]."""
        return self.layout.unblock(self.GF @ self.layout.block(Z) - self.B, self.shape)

    def along(self, U, V, dU, dV):
        """t -> F(L(Z + t dZ)), Z = lift(U, V), dZ = lift(dU, dV): a quadratic in t."""
        X, D = self.layout.block(lift(U, V)), self.layout.block(lift(dU, dV))
        GX = self.GF @ X
        f0 = float(0.5 * (X * GX).sum() - (self.B * X).sum() + 0.5 * self.yy)
        slope, curv = float((D * (GX - self.B)).sum()), float((D * (self.GF @ D)).sum())
        return lambda t: f0 + t * slope + 0.5 * t * t * curv

    def gauss_newton(self, U, V, active, chunk=4_000_000):
        """J^T J over the active units, ordered (all u, then all v) as newton.hessian.
        J = dL(Z)/d(u, v) = L o dZ/d(u, v), so J^T J = J_z^T G J_z with the per-unit
        blocks of J_z: dZ_k/du_kj = I_p (x) v_kj [pq, p] and dZ_k/dv_kj = u_kj (x) I_q
        [pq, q], in G_F's block layout J [P, pq / c, c, m (p + q)]. G J_z is made for a few
        patterns' rows at a time (at most `chunk` entries), never G's blocks [na pq, na pq]
        (1.4 GB for two steps at P = 60, m = 5, p = 7, q = 5; docs/performance.md)."""
        P, m = U.shape[:2]
        p, q = self.shape[1:]
        f, r = p * q // self.c, p + q
        eye_p = torch.eye(p, dtype=U.dtype, device=U.device)
        eye_q = torch.eye(q, dtype=U.dtype, device=U.device)
        Ju = torch.einsum("ax,kjb->kabjx", eye_p, V.reshape(P, m, q)).reshape(P, p * q, m, p)
        Jv = torch.einsum("kja,by->kabjy", U.reshape(P, m, p), eye_q).reshape(P, p * q, m, q)
        J = torch.cat([Ju, Jv], 3)[:, self.index[:f]].reshape(P, f, self.c, m * r)
        GF = self.GF.reshape(P, f, P, f)
        # unit (k, j)'s column s at newton.hessian's position; inactive units left out
        na, s = int(active.sum()), torch.arange(r, device=U.device)
        t = (active.reshape(-1).cumsum(0) - 1).reshape(P, m, 1)
        keep = active[:, :, None].expand(P, m, r).reshape(-1)
        pos = torch.where(s < p, t * p + s, na * p + t * q + s - p).reshape(-1)
        H = U.new_empty(na * r, na * r)
        step = max(1, chunk // (f * self.c * P * m * r))
        for a in range(0, P, step):
            rows = slice(a * m * r, min(P, a + step) * m * r)
            GJ = torch.einsum("aibj,bjov->aiobv", GF[a:a + step], J)
            Hc = torch.einsum("aiou,aiobv->aubv", J[a:a + step], GJ).reshape(-1, P * m * r)
            H[pos[rows][keep[rows]][:, None], pos[keep][None, :]] = Hc[keep[rows]][:, keep]
        return H


class BlockOperator:
    """G = I_c (x) G_F in Z's flat order, for numpy: G @ z and G's shape."""

    def __init__(self, GF, index):
        self.GF, self.index, self.shape = GF, index, (index.size, index.size)

    def __matmul__(self, z):
        out = np.empty(self.index.size, dtype=np.result_type(self.GF, z))
        out[self.index.reshape(-1)] = (self.GF @ z[self.index]).reshape(-1)
        return out
