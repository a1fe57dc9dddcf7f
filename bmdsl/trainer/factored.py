"""The lifted FISTA's second phase: L-BFGS on the BM factors of its iterate, through the same
lifted operator (runtime/proxgrad.py, which calls `handoff` where the trainer set it as the
problem's hook; the emitted stand-alone trainer has no such hook and runs the FISTA alone).

    min_{U, V}  F(L(sum_j u_kj v_kj^T)) + (beta/2) sum_{k,j} (||u_kj||_C^2 + ||v_kj||_R^2)
                                                  (Sahiner et al. 2024, eq. (14), (16))

with r = min(p, q) units per pattern, so every lifted point is reachable (for C = R = l2 the
D-norm is the nuclear norm and rank Z_k <= min(p, q)); started from the balanced factors of
the FISTA's iterate (units beyond its rank at a tiny seeded scale: a zero unit is a saddle
whose gradient vanishes, so L-BFGS could never grow it). One evaluation costs one lifted
prediction L(Z) and one adjoint L^*(grad F) -- a FISTA iteration's work -- not the BM
objective's autograd through the model's einsums (digits CNN: about 0.05 s against 1.5 s).

Why: the FISTA's metric is lip I, so on a badly conditioned program (the digits CNN with
cross_entropy: lip ~ 5e5 beta) its O(lip / k^2) rate needs thousands of
iterations more; the factored objective is smooth (both norms' squares are, `order` 2), and
L-BFGS builds the curvature that the FISTA's metric lacks. Measured in docs/performance.md
("Non-quadratic losses: the FISTA, then L-BFGS on its factors").
"""
import math

import torch

from .runtime.gram import lift
from .runtime.threads import on_one_thread

TINY = 1e-6           # scale of the units beyond the FISTA iterate's rank, times its largest
LBFGS_MEMORY = 50     # pairs kept by L-BFGS


def applies(problem) -> bool:
    """The BM regularizer is smooth: both norms' squares are sums of squares (their declared
    forms have order 2); one process (a shard's L-BFGS would need every rank's line search
    in step)."""
    return not getattr(problem, "sharded", False) and \
        all(float(form["order"]) == 2.0 for form in problem.norms.values())


def handoff(problem, op, norm, Z):
    """The L-BFGS phase from the FISTA's Z where it applies and Z is not 0 (from U = V = 0 the
    gradient vanishes: a saddle), else None (the FISTA goes on)."""
    return FactoredLBFGS(problem, op, norm, Z) if applies(problem) and bool(Z.any()) else None


class FactoredLBFGS:
    """L-BFGS on (U, V) [P, r, p], [P, r, q] through `op` (liftedops / kronops), from Z,
    where `applies`. A loss that is not finite ends in a non-finite value, which fit
    refuses as a breakdown (fitloop's check of the warm start's factors)."""

    def __init__(self, problem, op, norm, Z):
        self.op, self.evaluations, self.value = op, 0, math.inf
        # beta s^2 for ||x|| = s ||x||_2 (order 2, applies): the regularizer's curvature
        self.a, self.b = (float(problem.beta) * problem.norms[k]["scale"] ** 2 for k in "CR")
        (U, V, _), gen = norm.units(Z, min(Z.shape[1:])), torch.Generator().manual_seed(0)
        tiny = (U.norm(dim=2) * V.norm(dim=2) == 0)[..., None] * TINY * float(U.abs().max())
        self.U, self.V = ((W + tiny * torch.randn(W.shape, generator=gen, dtype=W.dtype)
                           .to(W)).requires_grad_(True) for W in (U, V))
        self.opt = torch.optim.LBFGS([self.U, self.V], history_size=LBFGS_MEMORY,
                                     tolerance_grad=0, tolerance_change=0,
                                     line_search_fn="strong_wolfe")

    def _closure(self):
        """F(L(Z)) + the regularizer, and its gradient in U.grad, V.grad: G_k v + its own,
        G_k^T u + its own, G = L^*(grad F) [P, p, q] (eq. (20))."""
        U, V = self.U.detach(), self.V.detach()
        f, G = self.op.value_adjoint(self.op.forward(self.solution()))
        self.U.grad = torch.einsum("kab,kjb->kja", G, V) + self.a * U
        self.V.grad = torch.einsum("kab,kja->kjb", G, U) + self.b * V
        self.evaluations += 1
        reg = 0.5 * (self.a * float((U * U).sum()) + self.b * float((V * V).sum()))
        return torch.tensor(f + reg, dtype=torch.float64)

    @on_one_thread
    def run(self, evaluations) -> bool:
        """About `evaluations` more evaluations (torch's step: up to that many L-BFGS
        iterations and evaluations; its state carries over); True once a whole call no
        longer changed the objective (relative 1e-15: converged, to a stationary point of
        the BM objective, so the FISTA then leaves its factors to the BM method's polish)."""
        group = self.opt.param_groups[0]
        group["max_iter"] = group["max_eval"] = max(1, int(evaluations))
        before, self.value = self.value, float(self.opt.step(self._closure))
        return abs(before - self.value) <= 1e-15 * abs(self.value)

    def solution(self):
        """Z = lift(U, V) [P, p, q] (fit factors it again: balanced, m units)."""
        return lift(self.U.detach(), self.V.detach())
