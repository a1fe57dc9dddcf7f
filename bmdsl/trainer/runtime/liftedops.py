"""The smooth part of the lifted program (16) for its first-order solvers (proxgrad.py,
proxadmm.py): the prediction L(Z) (per sample), the loss F and the adjoint L^*(g) (sums
over samples), evaluated block by block and summed in blocksum.py's fixed order, so one
shard of a distributed run takes part in the same sums as one process holding every
sample, to the bit (Sahiner et al. 2024, eq. (16), (20)).

L is a product with its dense matrix where it has at most DENSE_MAX entries (the blocks'
rows padded to one size), else uses the activations
of the basis of w1 per pattern, D_k * A(e_a) [P, p, *a] of each block (einsums block by
block); with the squared loss's Gram matrix (gram.py) everything stays in the lifted
space instead. The loss comes from `problem.value_grad(yhat, need_grad, target)` when set
(bmdsl's trainer: the loss registry's value and gradient), else from autograd of the
runtime's torch loss, each on one block's samples.
"""
import torch

from ...kernel.einsum import run_terms
from .blocksum import Blocks, blocks_gram
from .gram import Gram

DENSE_MAX = 4_000_000  # entries of L's matrix [|y|, P p q] kept dense at most (32 MB)


class _Lifted:
    """What the dense and the basis forms share: per-block losses, and the reductions."""

    def __init__(self, problem):
        self.problem, self.blocks = problem, Blocks(problem)
        self.shape = (problem.P, problem.p, problem.q)
        self.N = problem.P * problem.p * problem.q
        hook = getattr(problem, "value_grad", None)
        self.value_grad_of = hook if hook is not None else self._autograd

    def _autograd(self, y, need_grad=True, target=None):
        y = y.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.problem.F(y, target)
            g = torch.autograd.grad(f, y)[0] if need_grad else None
        return float(f), g

    def _losses(self, yhat, need_grad):
        """F of each block [blocks, 1] and grad F [*y] (per sample, blocks joined): from
        the loss's terms at once where it declares them, else block by block."""
        hook = getattr(self.problem, "terms_grad", None)
        if hook is not None:
            terms, g = hook(yhat, need_grad)
            return self.blocks.sums(terms), g
        B, Y = self.blocks, self.problem.Y
        values, grads = [], []
        for j in range(len(B.spans)):
            f, g = self.value_grad_of(B.part(yhat, j), need_grad, B.part(Y, j))
            values.append(f)
            grads.append(g)
        F = torch.tensor(values, dtype=Y.dtype, device=Y.device)[:, None]
        return F, (torch.cat(grads, B.axis) if need_grad else None)

    def value(self, yhat) -> float:
        """F(yhat), summed over all samples."""
        return float(self.blocks.total(self._losses(yhat, False)[0])[0])

    def value_adjoint(self, yhat):
        """(F(yhat), L^*(grad F(yhat)) [P, p, q]): one reduction."""
        F, g = self._losses(yhat, True)
        total = self.blocks.total(torch.cat([F, self._adjoint_rows([g])], 1))
        return float(total[0]), self._order(total[1:]).reshape(self.shape)

    def adjoint(self, g):
        return self._order(self.blocks.total(self._adjoint_rows([g]))).reshape(self.shape)

    to_z = None      # a form whose rows come in another column order: its permutation

    def _order(self, z):
        """A reduced adjoint [N] in Z's flat order (a form whose rows come in another
        column order reorders after the sum, on N entries instead of blocks x N)."""
        return z if self.to_z is None else z.index_select(0, self.to_z)

    def sums(self, gs, squares):
        """[L^*(g) for g in gs] and [||x||^2 for x in squares]: one reduction."""
        B = self.blocks
        rows = [self._adjoint_rows(gs)] if gs else []
        for x in squares:
            xp = B.pad(x)
            rows.append(B.dots(xp, xp))
        total = B.total(torch.cat(rows, 1))
        N, k = self.N, len(gs)
        return ([self._order(total[i * N:(i + 1) * N]).reshape(self.shape) for i in range(k)],
                [float(v) for v in total[k * N:]])


class _Predictive(_Lifted):
    """Predictions through the basis activations D_k * A(e_a) of each block."""

    def __init__(self, problem):
        super().__init__(problem)
        P, p = problem.P, problem.p
        E = torch.eye(p, dtype=problem.Y.dtype, device=problem.Y.device)
        E = E.reshape((1, p) + problem.w1_shape).expand((P, p) + problem.w1_shape)
        self.parts = [self.blocks.arrays(j) for j in range(len(self.blocks.spans))]
        self.H = [problem.activate(problem.pre_activation(E.contiguous(), a), a)
                  for a in self.parts]                                   # [P, p, *a] each
        self.w2 = (P, p) + problem.w2_shape
        self.transposed = self._transpose(problem.spec["output"])

    def gram(self):
        """L^* L [N, N] (gram.py's, summed in its fixed order)."""
        return Gram.build(self.problem).dense()

    def forward(self, Z):
        W2 = Z.reshape(self.w2)
        return torch.cat([self.problem.output(H, W2, a) for H, a in zip(self.H, self.parts)],
                         self.blocks.axis)

    def _adjoint_rows(self, gs):
        B = self.blocks
        return torch.stack([torch.cat([self._adjoint(B.part(g, j), H, a).reshape(-1)
                                       for g in gs])
                            for j, (H, a) in enumerate(zip(self.H, self.parts))])

    def _adjoint(self, g, H, arrays):
        """L^*(g) on one block from its basis activations H: the output equation
        transposed in W2 (linear in it), one planned contraction of H, already made,
        instead of the layer's X and the masks D again (digits CNN: 1.0 s against 3.8 s
        per adjoint)."""
        kj = ("k_", "j_")     # the batch axes of H and W2, as problem.output names them
        return run_terms(self.transposed, dict(arrays, H=H, R=g), {"H": kj}, kj)

    @staticmethod
    def _transpose(output):
        """Each term coef * B(H, W2) -> out as coef * B(H, R = out) -> W2's indices."""
        terms = []
        for coef, ops, out in output:
            (w2,) = [idx for name, idx in ops if name == "W2"]
            terms.append((coef, tuple((n, i) for n, i in ops if n != "W2") + (("R", out),),
                          w2))
        return tuple(terms)


class _Dense(_Lifted):
    """L as dense matrices, one per block [R, P p q] (rows padded with zeros to the widest
    block): the prediction and the adjoint are one product each (a tiny attention problem:
    ~2 ms per iteration of interpreter overhead through the einsums)."""

    def __init__(self, problem):
        super().__init__(problem)
        P, q, B, Y = problem.P, problem.q, self.blocks, problem.Y
        E = torch.eye(q, dtype=Y.dtype, device=Y.device).reshape((1, q) + problem.w2_shape)
        E = E.expand((P, q) + problem.w2_shape)
        self.M = torch.zeros(len(B.spans), B.R, self.N, dtype=Y.dtype, device=Y.device)
        for j in range(len(B.spans)):
            # the columns L(e_kab) = B(D_k A(e_a), e_b), as gram.Gram.build makes them
            M = problem.jac_u(E, B.arrays(j)).permute(0, 1, 3, 2).reshape(-1, self.N)
            lo, hi = B.spans[j]
            shape = B.y_shape[:B.axis] + (hi - lo,) + B.y_shape[B.axis + 1:]
            M = M.reshape(shape + (self.N,)).movedim(B.axis, 0).reshape(-1, self.N)
            self.M[j, :M.shape[0]] = M

    def gram(self):
        """L^* L [N, N] from the blocks' matrices (M_j^T M_j, padded rows add zeros) added
        along gram.py's tree: the same bits with any sharding, without evaluating L's
        columns a second time as Gram.build would (half of the first iteration)."""
        return blocks_gram(self.problem, self.M, self.blocks.first, self.N)

    def forward(self, Z):
        # one matrix-vector product over all blocks' rows: a row's value does not depend
        # on the rows around it (measured on one thread, blocks of 8k rows; torch.bmm
        # over one block and over several rounds them differently)
        nb, R, N = self.M.shape
        return self.blocks.unpad((self.M.view(nb * R, N) @ Z.reshape(-1)).view(nb, R))

    def _adjoint_rows(self, gs):
        # G^T M with M in its stored layout: M^T G copied M's transpose at every call (5x
        # slower, measured); a block's products do not depend on the batch's size
        G = torch.stack([self.blocks.pad(g) for g in gs], 1)             # [blocks, k, R]
        return torch.bmm(G, self.M).reshape(G.shape[0], -1)


class _Quadratic:
    """The squared loss through G = L^* L, b = L^*(Y) (gram.py): the 'prediction' is Z."""

    def __init__(self, gram):
        self.gram = gram

    def forward(self, Z):
        return Z

    def adjoint(self, g):
        return g

    def value(self, Z):
        return float(self.gram.loss(Z))

    def value_adjoint(self, Z):
        return float(self.gram.loss(Z)), self.gram.gradient(Z)


def dense_fits(problem) -> bool:
    """L's matrix is small enough: decided on all samples' |y| (problem.outputs), so every
    rank of a distributed run takes the same form as one process."""
    return problem.outputs * problem.P * problem.p * problem.q <= DENSE_MAX

