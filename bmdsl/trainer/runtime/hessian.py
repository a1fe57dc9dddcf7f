"""A loss's curvature for the lifted proximal Newton (pnewton.py): H = F''(Yhat) as the
loss's entry (bmdsl/kernel/lossforms.py) declares it, and the weighted Gram L^* H L.

Asked by capability, never by name:
* `hessian_block(yh, y) -> [..., c, c]`: one block per sample over the class axis (softmax
  cross-entropy's diag(s) - s s^T couples the classes of a sample, not the samples);
* `hessian_diag(yh, y)`: the diagonal of a sum of scalar functions of each entry
  (logistic; Huber's piecewise-constant generalized Hessian).
A quadratic loss (F = 1/2 ||Yhat - Y||^2) is left to the Gram path's ADMM (lifted.py): its
Hessian is constant, so one Newton step would be that whole solve.
"""
import numpy as np
import torch

from ...kernel.lossforms import LOSS_KERNELS
from .freeoutputs import Outputs

ROWS_CHUNK = 20_000_000     # entries of H L's rows [rows, N] made at once (160 MB)


def curvature_kernel(spec):
    """The loss entry (an instance with the model's parameters) if it declares a Hessian
    and is not quadratic, else None."""
    kernel = LOSS_KERNELS.get(spec["loss"])
    if kernel is None or kernel.quadratic or \
            (kernel.hessian_block is None and kernel.hessian_diag is None):
        return None
    return kernel(**dict(spec.get("loss_params") or ()))


class Curvature:
    """H at a prediction and M^T H M for L's dense matrix M [|y|, N] (rows in Y's order).

    layout (freeoutputs.Outputs, optional): where L = F (x) I_c over c > 1 free outputs
    that H's blocks span (or any, for a diagonal H), M^T H M is assembled from the
    c (c + 1) / 2 blocks F^T diag(H_oo') F [N / c, N / c]: |y| N^2 / c^2 (c + 1) / 2 flops
    against |y| N^2 (4.5x fewer for c = 3), c (c - 1) / 2 of them for softmax's H."""

    def __init__(self, kernel, Y, layout=None):
        self.kernel, self.Y = kernel, Y
        self.y_np = Y.detach().cpu().double().numpy()
        self.block = kernel.hessian_block is not None    # the richer form where declared
        self.c = int(Y.shape[-1]) if self.block else 1
        spans = layout is not None and layout.c > 1 and (
            not self.block or (layout.c == self.c and layout.y_axes == [Y.dim() - 1]))
        self.layout = layout if spans else None

    def hessian(self, yhat):
        """[rows, c, c] blocks (c = 1: the diagonal), clipped at 0 on the diagonal form (a
        convex F's is >= 0, up to rounding)."""
        z = yhat.detach().cpu().double().numpy().reshape(self.y_np.shape)
        if self.block:
            H = self.kernel.hessian_block(z, self.y_np)
        else:
            H = np.clip(self.kernel.hessian_diag(z, self.y_np), 0.0, None)
        H = torch.as_tensor(np.asarray(H, dtype=np.float64)).to(self.Y)
        return H.reshape(-1, self.c, self.c)

    def apply(self, H, v):
        """H v for v [*y] in Y's layout (H from `hessian`)."""
        rows = v.reshape(-1, self.c, 1)
        return (torch.bmm(H, rows) if self.c > 1 else H * rows).reshape(v.shape)

    def weighted_gram(self, M, yhat, H=None):
        """L^* H L = M^T H M [N, N], summed over chunks of whole samples' rows (H: the
        Hessian at yhat if already made)."""
        H = self.hessian(yhat) if H is None else H
        if self.layout is not None:
            return self._block_gram(M, H)
        N, c = M.shape[1], self.c
        Mb = M.reshape(-1, c, N)
        G = torch.zeros(N, N, dtype=M.dtype, device=M.device)
        step = max(1, ROWS_CHUNK // max(1, c * N))
        for s in range(0, Mb.shape[0], step):
            rows = Mb[s:s + step]
            HM = torch.bmm(H[s:s + step], rows) if c > 1 else H[s:s + step] * rows
            G.addmm_(rows.reshape(-1, N).T, HM.reshape(-1, N))
        return 0.5 * (G + G.T)    # symmetric up to the products' rounding

    def _block_gram(self, M, H):
        """M^T H M from F [|y| / c, N / c] (output 0's rows and columns of M) and the
        blocks T_oo' = F^T diag(H_oo') F, laid out in Z's flat order (Outputs.index)."""
        lay, Y = self.layout, self.Y
        index = lay.index.to(M.device)
        if getattr(self, "_F", (None,))[0] is not M:    # M is fixed: F made once
            self._F = (M, lay.rows(M, Y.shape)[:, index[:, 0]].contiguous())   # [R, nf]
        F = self._F[1]
        c, nf = lay.c, F.shape[1]
        if self.block:     # H's blocks are over Y's last axis, the free outputs' (checked)
            W = H
        else:              # a diagonal: its entries in y_block's layout [R, c]
            W = torch.diag_embed(lay.y_block(H.reshape(Y.shape)))
        T = M.new_zeros(c, nf, c, nf)
        # rows of every block summing to 0 (softmax's diag(s) - s s^T: its 1 1^T-direction
        # is flat) make T's block rows sum to 0: the diagonal blocks are minus the sums of
        # the others', c (c - 1) / 2 products in all (c = 2: one instead of three). To
        # rounding of H's largest entry (a confident sample's s (1 - s) rounds to 0 while
        # s s' does not)
        zero_rows = c > 1 and float(W.sum(-1).abs().max()) <= 1e-12 * float(W.abs().max())
        for o in range(c):
            for o2 in range(o + int(zero_rows), c):
                w = W[:, o, o2]
                if bool(w.any()):
                    T[o, :, o2] = F.T @ (w[:, None] * F)
                    if o2 != o:     # a diagonal block is symmetric (and nf = 1 aliases)
                        T[o2, :, o] = T[o, :, o2].T
        if zero_rows:
            for o in range(c):
                T[o, :, o] = -sum(T[o, :, o2] for o2 in range(c) if o2 != o)
        inv = torch.argsort(index.T.reshape(-1))      # Z's flat index -> (o, f)
        G = T.reshape(c * nf, c * nf)[inv][:, inv]
        return 0.5 * (G + G.T)


class DenseL:
    """L as one dense matrix M [|y|, P p q] in one process (the proximal Newton's products
    and its weighted Gram M^T H M): forward, adjoint, F and grad F on [*y]."""

    def __init__(self, problem):
        P, p, q, Y = problem.P, problem.p, problem.q, problem.Y
        E = torch.eye(q, dtype=Y.dtype, device=Y.device).reshape((1, q) + problem.w2_shape)
        E = E.expand((P, q) + problem.w2_shape)
        # the columns L(e_kab) = B(D_k A(e_a), e_b), as gram.Gram.build makes them
        self.M = problem.jac_u(E).permute(0, 1, 3, 2).reshape(-1, P * p * q)
        self.problem, self.shape, self.y_shape = problem, (P, p, q), tuple(Y.shape)
        hook = getattr(problem, "value_grad", None)
        self.value_grad = hook if hook is not None else self._autograd
        self.value = (lambda y: hook(y, False)[0]) if hook is not None else \
            (lambda y: float(problem.F(y, problem.Y)))

    def forward(self, Z):
        return (self.M @ Z.reshape(-1)).reshape(self.y_shape)

    def adjoint(self, g):
        return (self.M.T @ g.reshape(-1)).reshape(self.shape)

    def _autograd(self, y):
        y = y.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.problem.F(y, self.problem.Y)
            (g,) = torch.autograd.grad(f, y)
        return float(f), g
