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
import torch

from .forms import plain_squared

# The largest N for a dense G comes from time: the lifted solvers factor G + rho I
# (Cholesky, N^3 / 3 flops) before their first iteration, which should take at most
# FACTOR_SECONDS at FACTOR_FLOPS (float64 Cholesky on one core of this 2-core machine
# at load ~8: 5.8e9 flop/s at N = 1500, 9.9e9 at N = 3000); 10 s gives N <= 5313, which
# takes the n = 2000 CNN (P p q = 5184). Memory is the trainer's to check, before anything
# is built: footprint.gram and each warm start's estimate against the memory budget
# (bmdsl.core.memory); over it, the Gram path and that warm start are refused.
FACTOR_SECONDS = 10.0
FACTOR_FLOPS = 5e9


def gram_max_n(seconds=FACTOR_SECONDS, flops=FACTOR_FLOPS) -> int:
    """The largest N whose factorization, N^3 / 3 flops, takes at most `seconds`."""
    n = int((3.0 * seconds * flops) ** (1.0 / 3.0))
    while (n + 1) ** 3 / 3.0 <= seconds * flops:     # the cube root's rounding
        n += 1
    while n > 0 and n ** 3 / 3.0 > seconds * flops:
        n -= 1
    return n


GRAM_MAX_N = gram_max_n()
GRAM_CHUNK = 20_000_000        # entries of one chunk of the matrix of L [rows, N]


GRAM_BLOCKS = 256              # the samples are summed in at most this many blocks
MIN_BLOCK = 16                 # samples per block at least (a block costs ~1 ms of calls)


def block_count(n: int) -> int:
    """Blocks of the Gram sums (and the units of the processes' shards, so at most this
    many processes): a function of n alone, so that every number of processes sums the
    same blocks."""
    return max(1, min(int(n) // MIN_BLOCK, GRAM_BLOCKS))


def block_start(n: int, k: int) -> int:
    """The first sample of block k: blocks of floor(n / count) or one more samples."""
    return int(k) * int(n) // block_count(n)


def pairwise_sum(lo, hi, leaf, release=lambda x: None):
    """The sum of leaf(k) over blocks k in [lo, hi) by pairwise halving; a right child,
    once added, goes to release(x) (leaf may reuse its memory)."""
    if hi - lo == 1:
        return leaf(lo)
    mid = (lo + hi) // 2
    left, right = pairwise_sum(lo, mid, leaf, release), pairwise_sum(mid, hi, leaf, release)
    left.add_(right)                                   # one partial sum per tree level
    release(right)
    return left


def tree_sum(ranges, mine, leaf, share, numel, release=lambda x: None):
    """The sum of leaf(k) over blocks k in [0, nb) (nb = ranges[-1][1]) by pairwise
    halving of [0, nb): the same additions in the same order for any `ranges` (rank r
    holds blocks ranges[r]). A node inside one rank's range is summed by that rank
    (`pairwise_sum`) and sent to the others by share(value or None, owner, numel) (the
    same value, of numel entries, on every rank); the nodes above are added on
    every rank. In one process (ranges = [(0, nb)]) this is pairwise_sum(0, nb)."""
    def added(left, right):
        left.add_(right)
        release(right)
        return left

    def local(lo, hi):
        return pairwise_sum(lo, hi, leaf, release)

    def node(lo, hi):
        owner = next((r for r, (a, b) in enumerate(ranges) if a <= lo and hi <= b), None)
        if owner is not None:
            return share(local(lo, hi) if owner == mine else None, owner, numel)
        mid = (lo + hi) // 2
        return added(node(lo, mid), node(mid, hi))
    return node(0, ranges[-1][1])


def gram_pays(problem, dtype, full_batch) -> bool:
    """Squared loss, float64, full batch, and N small enough for a dense G."""
    N = problem.P * problem.p * problem.q
    return (plain_squared(problem.spec) and dtype == torch.float64 and full_batch
            and N <= GRAM_MAX_N)


def lift(U, V):
    """Z_k = sum_j u_kj v_kj^T: [P, p, q] for U [P, m, *w1], V [P, m, *w2]."""
    P, m = U.shape[:2]
    return torch.einsum("kja,kjb->kab", U.reshape(P, m, -1), V.reshape(P, m, -1))


class Gram:
    """G [N, N], b [N] and ||Y||^2 of the squared loss; `build` is the one data pass."""

    def __init__(self, G, b, yy, shape):
        self.G, self.b, self.yy, self.shape = G, b, yy, tuple(shape)

    @classmethod
    def build(cls, problem, chunk=GRAM_CHUNK):
        """Columns L(e_kab) = B(D_k A(e_a), e_b) come from the Jacobian in U at V = the
        basis of w2 (problem.jac_u). The samples are summed in `block_count(n)` blocks
        (global sample indices) and the blocks' statistics pairwise over a fixed binary
        tree (`tree_sum`), so the rounding is the same however the samples are shared
        among processes: a shard holds whole blocks (problem.blocks), each rank sums the
        subtrees inside its blocks and the rest of the tree is combined identically on
        every rank (`problem.share` sends a subtree's sum from the rank that holds it)."""
        P, p, q = problem.P, problem.p, problem.q
        N = P * p * q
        Y = problem.Y
        rows_per_sample = max(1, Y.numel() // max(problem.n, 1))
        step = max(1, chunk // (N * rows_per_sample))
        E = torch.eye(q, dtype=Y.dtype, device=Y.device).reshape((1, q) + problem.w2_shape)
        E = E.expand((P, q) + problem.w2_shape)
        n_all, ranges, first = problem.blocks   # all samples, [b0, b1) per rank, mine
        offset = block_start(n_all, ranges[first][0])     # of this rank's samples

        free = []      # buffers of added partial sums (a fresh 1 MB zeros costs page faults)

        def leaf(k):
            """[G b yy] of global block k, flattened; sub-chunks of fixed size in order."""
            start, stop = block_start(n_all, k) - offset, block_start(n_all, k + 1) - offset
            out = free.pop().zero_() if free else torch.zeros(N * N + N + 1, dtype=Y.dtype,
                                                                device=Y.device)
            G, b = out[:N * N].view(N, N), out[N * N:N * N + N]
            for s in range(start, stop, step):
                idx = torch.arange(s, min(stop, s + step), device=Y.device)
                arrays = problem.batch(idx)
                M = problem.jac_u(E, arrays).permute(0, 1, 3, 2).reshape(-1, N)
                y = arrays[problem.spec["target"]].reshape(-1)
                G.addmm_(M.T, M)
                b.addmv_(M.T, y)
                out[-1] += y @ y
            return out

        threads = torch.get_num_threads()
        torch.set_num_threads(1)    # a GEMM split over threads may sum in another order
        try:
            if problem.sharded:
                total = tree_sum(ranges, first, leaf, problem.share, N * N + N + 1,
                                 free.append)
            else:           # one process: tree_sum's additions, in the same order
                total = pairwise_sum(0, ranges[-1][1], leaf, free.append)
        finally:
            torch.set_num_threads(threads)
        return cls(total[:N * N].view(N, N), total[N * N:N * N + N], float(total[-1]),
                   (P, p, q))

    def numpy(self):
        """(G, b, ||Y||^2) as float64 numpy, the form bmdsl.certificates takes."""
        return (self.G.detach().cpu().double().numpy(), self.b.detach().cpu().double().numpy(),
                float(self.yy))

    def loss(self, Z):
        z = Z.reshape(-1)
        return 0.5 * (z @ (self.G @ z)) - self.b @ z + 0.5 * self.yy

    def gradient(self, Z):
        """L^*(L(Z) - Y) = G z - b as [P, p, q]."""
        return (self.G @ Z.reshape(-1) - self.b).reshape(self.shape)

    def along(self, U, V, dU, dV):
        """t -> F(L(Z + t dZ)), Z = lift(U, V), dZ = lift(dU, dV): a quadratic in t."""
        z, dz = lift(U, V).reshape(-1), lift(dU, dV).reshape(-1)
        Gz = self.G @ z
        f0 = float(0.5 * (z @ Gz) - self.b @ z + 0.5 * self.yy)
        slope, curv = float(dz @ (Gz - self.b)), float(dz @ (self.G @ dz))
        return lambda t: f0 + t * slope + 0.5 * t * t * curv

    def gauss_newton(self, U, V, active):
        """J^T J over the active units, ordered (all u, then all v) as newton.hessian.
        J = dL(Z)/d(u, v) = L o dZ/d(u, v), so J^T J = J_z^T G J_z with the per-unit
        blocks of J_z: dZ_k/du_kj = I_p (x) v_kj [pq, p] and dZ_k/dv_kj = u_kj (x) I_q
        [pq, q]; only the rows and columns of G of the units' patterns are touched."""
        P, m = U.shape[:2]
        p, q = self.shape[1:]
        u, v = U.reshape(P, m, p)[active], V.reshape(P, m, q)[active]     # [na, p], [na, q]
        na = u.shape[0]
        k = torch.arange(P, device=U.device)[:, None].expand(P, m)[active]
        Gk = self.G.reshape(P, p * q, P, p * q)[k][:, :, k]                 # [na, pq, na, pq]
        eye_p = torch.eye(p, dtype=U.dtype, device=U.device)
        eye_q = torch.eye(q, dtype=U.dtype, device=U.device)
        Ju = torch.einsum("ax,tb->tabx", eye_p, v).reshape(na, p * q, p)
        Jv = torch.einsum("ta,by->taby", u, eye_q).reshape(na, p * q, q)
        J = torch.cat([Ju, Jv], 2)                                           # [na, pq, p+q]
        r = p + q
        # GJ[s] = Gk[:, :, s, :] J[s] and H[t] = J[t]^T GJ[t]: two batched matmuls
        GJ = torch.bmm(Gk.permute(2, 0, 1, 3).reshape(na, na * p * q, p * q), J)
        GJ = GJ.reshape(na, na, p * q, r).permute(1, 2, 0, 3).reshape(na, p * q, na * r)
        H = torch.bmm(J.transpose(1, 2), GJ).reshape(na * r, na * r)         # (t, x) order
        t = torch.arange(na, device=U.device)[:, None] * r
        order = torch.cat([(t + torch.arange(p, device=U.device)).reshape(-1),
                           (t + p + torch.arange(q, device=U.device)).reshape(-1)])
        return H[order][:, order]
