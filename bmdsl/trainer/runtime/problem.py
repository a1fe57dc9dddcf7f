"""The BM problem (14)/(18)/(19) on torch tensors: predictions, objective, cone slack,
adjoint and per-unit Jacobians, all batched over patterns k and units j (no Python loop).

Layouts: U [P, m, *w1], V [P, m, *w2]; masks D [P, *a] (None for linear); Yhat [*y].
`spec` holds the einsum specs of the derivation (layer A(W1), output B(H, W2), adjoint
L_k^*(R)) over the placeholders W1, W2, H, D, R, and which axis of each data tensor is
the sample axis n (mini-batches slice along it, masks included).
"""
import math

import torch

from ...kernel.einsum import run_terms
from .forms import loss_prox, torch_loss, plain_squared, regularizer
from .fused import fused_plan
from .blocktree import block_count
from .freeoutputs import Outputs
from .gram import Gram, lift
from .offset import has_output_bias, offset_loss, output_channels

KJ = ("k_", "j_")
# entries of D_k * A(u_kj) per chunk of patterns in a prediction without autograd: the n =
# 2000 CNN's [32, 9, 2000, 36] at once 0.9 s, one pattern at a time 0.22 s (load 8)
PREDICT_CHUNK = 1 << 20


class BMProblem:
    # the sums over samples of runtime/interior.py go through these: identity here, an
    # all-reduce over the ranks for one shard's problem (trainer/sharded.py)
    sharded = False
    reduce_sum = reduce_max = staticmethod(lambda x: x)
    # gram.tree_sum's partial sums: a shard's problem sends them to the other ranks
    share = staticmethod(lambda x, owner, numel: x)

    def __init__(self, spec, arrays, D, shapes, gates=None, F=None):
        self.spec, self.arrays, self.D, self.gates = spec, dict(arrays), D, gates
        self.w1_shape, self.w2_shape = tuple(shapes["w1"]), tuple(shapes["w2"])
        self.a_shape, self.y_shape = tuple(shapes["a"]), tuple(shapes["y"])
        self.p, self.q = math.prod(self.w1_shape), math.prod(self.w2_shape)
        self.P = 1 if D is None else D.shape[0]
        self.Y = self.arrays[spec["target"]]
        self.n = self.Y.shape[spec["sample_axes"][spec["target"]]]
        self.outputs = self.Y.numel()   # |Y| of all samples (a shard's problem: of all shards)
        # (samples of all ranks, each rank's [first, last) block, this rank): gram.py sums
        # the samples in blocks fixed by n alone; a shard's problem holds whole blocks
        self.blocks = (self.n, [(0, block_count(self.n))], 0)
        # F(yhat, Y) in torch: the caller's (bmdsl's trainer passes the loss registry's
        # entry) or the runtime's copy; value_grad(yhat, need_grad) -> (F, grad F), when set, is
        # what the lifted solvers use (proxgrad.py; else autograd of F)
        self.F = F if F is not None else torch_loss(spec["loss"], spec["loss_params"])
        if has_output_bias(spec):         # F_b(Yhat) = min_b F(Yhat + 1 b^T) (offset.py)
            self.F = offset_loss(self.F, output_channels(self.y_shape))
        self.value_grad = None
        # terms_grad(yhat, need_grad) -> (F's terms per entry or per row, grad F), when set:
        # the lifted solvers sum the terms by blocks at once (liftedops.py)
        self.terms_grad = None
        # loss_prox(v, y, t, x0) -> prox_{tF}(v) or None (the lifted ADMM of proxadmm.py needs it):
        # the runtime's copy here, the registry entry's with bmdsl's trainer
        self.loss_prox = loss_prox(spec)
        self.beta, self.C, self.R = spec["beta"], spec["C"], spec["R"]   # the norms' names
        self.norms = spec["norms"]      # their declared numeric forms (forms.py)
        self.cone = spec["cone"]
        self.fused = fused_plan(spec, shapes)   # None: the generic einsum path (fused.py)
        self.gram = None     # gram.Gram: full-batch squared loss via G = L^* L (use_gram)
        # c, the outputs that reach Yhat untouched: L^* L = I_c (x) G_F (gram.Outputs)
        self.free_outputs = Outputs(spec, 1, 1, self.w2_shape).c
        if D is not None:
            self.arrays["D"] = D

    # -- data -------------------------------------------------------------------------------
    def batch(self, idx=None):
        """All arrays (idx None) or those samples: every tensor carrying n is sliced."""
        if idx is None:
            return self.arrays
        out = dict(self.arrays)
        for name, axis in self.spec["sample_axes"].items():
            if name in self.arrays:          # e.g. images are not needed once patched
                out[name] = self.arrays[name].index_select(axis, idx)
        if self.D is not None:
            out["D"] = self.D.index_select(self.spec["mask_axis"] + 1, idx)
        return out

    # -- the maps of (14) --------------------------------------------------------------------
    def pre_activation(self, W1, arrays=None, batch=KJ):
        """A(w) for W1 [*batch, *w1] -> [*batch, *a]."""
        return run_terms(self.spec["layer"], dict(arrays or self.arrays, W1=W1),
                         {"W1": batch}, batch)

    def activate(self, A, arrays=None):
        """D_k * A(u_kj) for A [P, m, *a] (identity when linear)."""
        D = (arrays or self.arrays).get("D")
        return A if D is None else D[:, None] * A

    def output(self, H, W2, arrays=None):
        """sum_kj B(H_kj, w2_kj) -> [*y]."""
        return run_terms(self.spec["output"], dict(arrays or self.arrays, H=H, W2=W2),
                         {"H": KJ, "W2": KJ}, ())

    def predict(self, U, V, arrays=None):
        """Yhat = sum_kj B(D_k * A(u_kj), v_kj) (eq. (14), (18)): blocked GEMMs with a
        hand-written backward when the specs are of fused.py's form, else the einsums."""
        arrays = arrays or self.arrays
        if self.fused is not None and self.fused.applies(U, V, arrays):
            return self.fused.predict(U, V, arrays)
        D, P = arrays.get("D"), U.shape[0]
        step = P if D is None or U.requires_grad or V.requires_grad else \
            max(1, PREDICT_CHUNK // max(1, D[0].numel() * U.shape[1]))
        if step < P:    # no autograd: by patterns (their sum), each [m, *a] block in cache
            return sum(self.predict(U[k:k + step], V[k:k + step], dict(arrays, D=D[k:k + step]))
                       for k in range(0, P, step))
        return self.output(self.activate(self.pre_activation(U, arrays), arrays), V, arrays)

    def objective(self, U, V, arrays=None, scale=1.0):
        """scale * F(Yhat) + regularizer; scale = n / batch size for a mini-batch."""
        loss = self.loss(U, V) if arrays is None or arrays is self.arrays else \
            self.F(self.predict(U, V, arrays), arrays[self.spec["target"]])   # a mini-batch
        return scale * loss + regularizer(self.beta, self.norms["C"], self.norms["R"], U, V)

    def slack(self, U, arrays=None):
        """(2 D_k - 1) * A(u_kj) [P, m, *a]: >= 0 is the ReLU cone (19)."""
        D = (arrays or self.arrays)["D"]
        return (2 * D[:, None] - 1) * self.pre_activation(U, arrays)

    # -- derivatives used by ALS, Newton and the certificate ---------------------------------
    def adjoint(self, R, arrays=None):
        """G_k = L_k^*(R) as [P, p, q] (eq. (20))."""
        arrays = dict(arrays or self.arrays, R=R)
        masked = "D" in arrays
        G = run_terms(self.spec["adjoint"], arrays, {"D": ("k_",)}, ("k_",) if masked else ())
        return G.reshape(self.P, self.p, self.q)

    def layer_basis(self, arrays=None):
        """A(e_a) for the basis of w1: [p, *a] (rows of the arrangement matrix)."""
        E = torch.eye(self.p, dtype=self.Y.dtype, device=self.Y.device)
        return self.pre_activation(E.reshape((self.p,) + self.w1_shape), arrays, ("a_",))

    def jac_u(self, V, arrays=None):
        """d Yhat / d U: [|y|, P, m, p], column (k, j, a) = B(D_k * A(e_a), v_kj)."""
        arrays = arrays or self.arrays
        A = self.layer_basis(arrays)
        H = A[None] if "D" not in arrays else arrays["D"][:, None] * A[None]
        J = run_terms(self.spec["output"], dict(arrays, H=H, W2=V),
                      {"H": ("k_", "a_"), "W2": KJ}, ("k_", "j_", "a_"))
        return J.reshape(self.P, V.shape[1], self.p, -1).permute(3, 0, 1, 2)

    def jac_v(self, U, arrays=None):
        """d Yhat / d V: [|y|, P, m, q], column (k, j, b) = B(D_k * A(u_kj), e_b)."""
        arrays = arrays or self.arrays
        H = self.activate(self.pre_activation(U, arrays), arrays)
        E = torch.eye(self.q, dtype=U.dtype, device=U.device).reshape((self.q,) + self.w2_shape)
        J = run_terms(self.spec["output"], dict(arrays, H=H, W2=E),
                      {"H": KJ, "W2": ("b_",)}, ("k_", "j_", "b_"))
        return J.reshape(self.P, U.shape[1], self.q, -1).permute(3, 0, 1, 2)

    # -- the full-batch loss; through its sufficient statistics when use_gram was called -----
    def use_gram(self):
        """Build G = L^* L, b = L^*(Y), ||Y||^2 once (gram.py); later full-batch losses,
        lifted gradients and Gauss-Newton blocks no longer touch the samples."""
        self.gram = Gram.build(self)
        return self

    def loss(self, U, V):
        """F(Yhat) on all samples."""
        if self.gram is not None:
            return self.gram.loss(lift(U, V))
        return self.F(self.predict(U, V), self.Y)

    def lifted_gradient(self, U, V):
        """G_k = L_k^*(grad F(Yhat)) [P, p, q] (eq. (20)), the certificate's matrices."""
        if self.gram is not None:
            return self.gram.gradient(lift(U, V).detach())
        with torch.no_grad():
            yhat = self.predict(U, V).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.F(yhat, self.Y), yhat)
        return self.adjoint(grad)

    def loss_along(self, U, V, dU, dV):
        """t -> F(Yhat(Z + t dZ)) with Z = lift(U, V), dZ = lift(dU, dV) (escape.py)."""
        if self.gram is not None:
            return self.gram.along(U, V, dU, dV)
        with torch.no_grad():
            yhat, step = self.predict(U, V), self.predict(dU, dV)
        return lambda t: self.F(yhat + t * step, self.Y)

    def gauss_newton(self, U, V, active):
        """J^T (d^2 F) J over the active units (all u, then all v), J = dYhat/d(u, v)."""
        if self.gram is not None:
            return self.gram.gauss_newton(U, V, active)
        na = int(active.sum())
        JU = self.jac_u(V)[:, active].reshape(-1, na * self.p)
        JV = self.jac_v(U)[:, active].reshape(-1, na * self.q)
        J = torch.cat([JU, JV], 1)
        if plain_squared(self.spec):
            return J.T @ J
        # d^2F J: Hessian-vector products of the loss, all columns in one batched call
        yhat = self.predict(U, V).detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.F(yhat, self.Y), yhat, create_graph=True)
            cols = J.T.reshape((J.shape[1],) + tuple(yhat.shape))
            (WJ,) = torch.autograd.grad(grad, yhat, cols, is_grads_batched=True)
        return J.T @ WJ.reshape(J.shape[1], -1).T
