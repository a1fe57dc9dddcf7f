"""The free outputs: output indices o that reach Yhat untouched (in W2 and Yhat only), so
that L(Z)[r, o] = sum_f F[r, f] Z[f, o] and L^* L = I_c (x) F^T F; `Outputs` lays Z [P, p, q]
out as [N / c, c] over them (the Gram matrix's block G_F, gram.py; kronops.py)."""
import math

import torch


def free_outputs(spec) -> tuple:
    """(axis of w2, axis of y) of each output index o in W2 and Yhat only, in every term of
    the output spec: then L(Z)[r, o] = sum_f F[r, f] Z[f, o] and L^* L = I_c (x) F^T F."""
    found = None
    for _, ops, out in spec["output"]:
        (w2,) = [idx for name, idx in ops if name == "W2"]
        others = {i for name, idx in ops if name != "W2" for i in idx}
        pairs = {(a, out.index(i)) for a, i in enumerate(w2)
                 if w2.count(i) == 1 and out.count(i) == 1 and i not in others}
        found = pairs if found is None else found & pairs
    return tuple(sorted(found or ()))


class Outputs:
    """Z [P, p, q] as [N / c, c] over the c free outputs: Z.reshape(-1)[index] (c = 1: G)."""

    def __init__(self, spec, P, p, w2_shape):
        pairs = () if spec is None else spec["free_outputs"]   # a literal of the SPEC
        self.w2_axes, self.y_axes = [a for a, _ in pairs], [t for _, t in pairs]
        self.w2_shape, self.c = tuple(w2_shape), math.prod(w2_shape[a] for a in self.w2_axes)
        rest = [a for a in range(len(w2_shape)) if a not in self.w2_axes]
        order = torch.arange(P * p * math.prod(w2_shape)).reshape((P, p) + self.w2_shape)
        self.index = order.permute([0, 1] + [2 + a for a in rest + self.w2_axes]) \
            .reshape(-1, self.c)
        self.nf = self.index.shape[0]

    def basis(self, dtype, device):
        """w2's basis vectors with the free outputs at 0: [q / c, *w2]."""
        E = torch.eye(math.prod(self.w2_shape), dtype=dtype, device=device)
        E = E.reshape(self.w2_shape + (-1,))
        for a in sorted(self.w2_axes, reverse=True):
            E = E.select(a, 0)
        return E.reshape((-1,) + self.w2_shape)

    def rows(self, M, y_shape):
        """L's rows [|y|, n_f] (y_shape's order) -> those of output 0 [|y| / c, n_f]."""
        M = M.reshape(tuple(y_shape) + (M.shape[-1],))
        for t in sorted(self.y_axes, reverse=True):
            M = M.select(t, 0)
        return M.reshape(-1, M.shape[-1])

    def y_block(self, y):
        """[*y] -> [|y| / c, c]: the output axes last."""
        k = len(self.y_axes)
        return y.movedim(self.y_axes, list(range(y.dim() - k, y.dim()))).reshape(-1, self.c)

    def block(self, Z):
        return Z.reshape(-1)[self.index.to(Z.device)]

    def unblock(self, X, shape):
        out = X.new_empty(X.numel())
        out[self.index.to(X.device).reshape(-1)] = X.reshape(-1)
        return out.reshape(shape)
