"""L through its block over the free outputs: L(Z)[r, o] = sum_f F[r, f] Z[f, o] (gram.Outputs),
for the lifted warm starts on L(Z) (majorize.py, proxadmm.py, proxgrad.py).

Where every output index o reaches Yhat untouched (gram.free_outputs: a fact of the
derivation's output spec), L is c copies of one matrix F [|y| / c, N / c] (Sahiner et al.
2024, eq. (16)): stored per block of samples [blocks, rows, N / c], it is c times smaller
than L's dense matrix, so the digits CNN's (|y| = 17970, N = 23040: 3.3 GB) becomes
33 MB, and L(Z), L^*(g) are one batched product each. The sums over samples (L^*, F,
F^T F) go through blocksum.py's fixed-order tree, as liftedops._Dense's.
"""
import torch

from .blocksum import blocks_gram
from .freeoutputs import Outputs
from .liftedops import _Dense, _Lifted, _Predictive, _Quadratic, dense_fits

KRON_DENSE_MAX = 40_000_000   # entries of F's blocks [blocks, rows, N / c] at most (320 MB)
FEW_OUTPUTS = 4               # c at most for which L(Z) is c matrix-vector products


def kron_entries(problem) -> int:
    """Entries of F's blocks (rows padded to the widest block: at most 1/16 more)."""
    c = problem.free_outputs
    rows = problem.outputs // c
    return (rows + rows // 16) * (problem.P * problem.p * problem.q // c)


def kron_form(problem) -> bool:
    """L through F's blocks: where L's dense matrix does not fit (liftedops.DENSE_MAX; a
    FISTA iteration on the n = 2000 CNN: 0.6 s through the basis activations, 0.06 s) and
    F's do (KRON_DENSE_MAX), in one process (the sums over samples are fixed-order, the
    batched products with F's blocks are not: majorize.py). Not where L's dense matrix
    fits: on the tiny models the block's index shuffles cost more than its c-fold saving
    (the prox ADMM on the 12-point spiral: 3.3 ms against 2.1 ms per iteration)."""
    return (not getattr(problem, "sharded", False) and not dense_fits(problem)
            and kron_entries(problem) <= KRON_DENSE_MAX)


def lifted_operator(problem):
    """The squared loss's Gram matrix where the trainer made one, else L's dense matrix
    where it is small, else F's blocks (kron_form), else the basis activations."""
    if problem.gram is not None:
        return _Quadratic(problem.gram)
    if kron_form(problem):
        return KronL(problem)
    return _Dense(problem) if dense_fits(problem) else _Predictive(problem)


class KronL(_Lifted):
    """forward, value, value_adjoint, adjoint and gram (G_F = F^T F) through F's blocks."""

    def __init__(self, problem):
        super().__init__(problem)
        P, p, Y, B = problem.P, problem.p, problem.Y, self.blocks
        self.layout = lay = Outputs(problem.spec, P, p, problem.w2_shape)
        self.c, self.nf = lay.c, lay.nf
        axis = B.axis
        # a sample's r entries (Y's order without the sample axis) -> [r / c, c]
        rest = [t - (t > axis) for t in lay.y_axes]
        within = B.y_shape[:axis] + B.y_shape[axis + 1:]
        order = torch.arange(B.r).reshape(within)
        self.perm = order.movedim(rest, list(range(len(within) - len(rest), len(within)))) \
            .reshape(-1).to(Y.device)
        # gathers, not scatters (index_select: ~3x faster, measured on the n = 2000 CNN);
        # none where a sample's entries are already output-last (the CNN's, the MLP's)
        if bool((self.perm == torch.arange(B.r, device=Y.device)).all()):
            self.perm = None
        else:
            self.unperm = torch.argsort(self.perm)
        self.to_z = torch.argsort(lay.index.T.reshape(-1)).to(Y.device)  # [c, N/c] -> Z's
        self.rows = B.r // self.c                      # rows of F per sample
        E = lay.basis(Y.dtype, Y.device)
        E = E.reshape((1,) + tuple(E.shape)).expand((P,) + tuple(E.shape))
        free_before = sum(1 for t in lay.y_axes if t < axis)
        self.F = torch.zeros(len(B.spans), B.widest * self.rows, self.nf, dtype=Y.dtype,
                             device=Y.device)
        for j, (lo, hi) in enumerate(B.spans):
            arrays = B.arrays(j)
            y = arrays[problem.spec["target"]]
            M = problem.jac_u(E, arrays).permute(0, 1, 3, 2).reshape(-1, self.nf)
            M = lay.rows(M, y.shape)                   # rows of output 0, Y's order
            rest_shape = [s for t, s in enumerate(y.shape) if t not in lay.y_axes]
            M = M.reshape(rest_shape + [self.nf]).movedim(axis - free_before, 0)
            self.F[j, :(hi - lo) * self.rows] = M.reshape(-1, self.nf)

    def _blocked(self, g):
        """[*y] -> [blocks, widest * r / c, c] (padded samples: zeros)."""
        B = self.blocks
        gp = B.pad(g)[:, :B.widest * B.r].reshape(len(B.spans), B.widest, B.r)
        if self.perm is not None:
            gp = gp.index_select(2, self.perm)
        return gp.reshape(len(B.spans), B.widest * self.rows, self.c)

    def forward(self, Z):
        B = self.blocks
        X = self.layout.block(Z)                                        # [N / c, c]
        # one product over all blocks' rows (a row's value does not depend on the others; one
        # process only, kron_form): 3x faster than the batched one with c columns
        F = self.F.view(-1, self.nf)
        # a few outputs: one matrix-vector product each (a GEMM with 2 columns ran at half
        # their speed, measured on the n = 2000 CNN)
        yb = (torch.stack([F @ X[:, o] for o in range(self.c)], 1) if self.c <= FEW_OUTPUTS
              else F @ X).view(len(B.spans), B.widest, B.r)
        out = yb if self.perm is None else yb.index_select(2, self.unperm)
        full = yb.new_zeros(len(B.spans), B.R)
        full[:, :B.widest * B.r] = out.reshape(len(B.spans), -1)
        return B.unpad(full)

    def _adjoint_rows(self, gs):
        """Per block, F_j^T g_j in the layout [c, N / c] ([blocks, len(gs) N]): `_order`
        puts the sum in Z's order (a column permutation commutes with the sum over blocks,
        so the bits are the same; gathering N entries instead of blocks x N: the digits
        CNN's value_adjoint 1.98x, bench/bench_kron_adjoint.py)."""
        out = [torch.bmm(self._blocked(g).transpose(1, 2), self.F).reshape(len(self.F), -1)
               for g in gs]                                            # [blocks, c nf] each
        return out[0] if len(out) == 1 else torch.cat(out, 1)

    def value_adjoint(self, yhat):
        """(F(yhat), L^*(grad F(yhat))): the loss's block sums reduced apart from the
        adjoint's rows (the same additions; no copy of [blocks, N] rows to join them)."""
        (F, g), total = self._losses(yhat, True), self.blocks.total
        return float(total(F)[0]), self._order(total(self._adjoint_rows([g]))).reshape(self.shape)

    def gram(self):
        """G_F = F^T F [N / c, N / c], the blocks' F_j^T F_j added along gram.py's tree."""
        return blocks_gram(self.problem, self.F, self.blocks.first, self.nf)

