"""The lifted FISTA's second phase: L-BFGS on the BM factors of its iterate, through the same
lifted operator (runtime/proxgrad.py, which calls `handoff` where the trainer set it as the
problem's hook; the emitted stand-alone trainer has no such hook and runs the FISTA alone).

    min_{U, V}  F(L(sum_j u_kj v_kj^T)) + (beta/2) sum_{k,j} (||u_kj||_C^2 + ||v_kj||_R^2)
                                                  (Sahiner et al. 2024, eq. (14), (16))

with enough units per pattern that every lifted point is reachable: for C = R = l2 (the
nuclear norm) r = min(p, q), rank Z_k <= min(p, q); for a pair whose units are coordinate
vectors on one side (dprox.DNorm.atoms: R = l1, ||Z_k||_D = sum_j ||Z_k e_j||_C, a unit
per column, v_kj = s_kj e_j; C = l1 the same by rows) r = q (or p) with that side held on its
coordinate: there ||s e_j||_R = |s| for any norm, so the regularizer is smooth wherever the
other side's norm squared is (order 2), and its minimum over s is beta ||Z_k e_j||_C, the
D-norm's column term (eq. (15)). Started from factors of the FISTA's iterate (units it
leaves at zero at a tiny seeded scale: a zero unit is a saddle whose gradient vanishes, so
L-BFGS could never grow it). One evaluation costs one lifted prediction L(Z) and one adjoint
L^*(grad F) -- a FISTA iteration's work -- not the BM objective's autograd through the
model's einsums (digits CNN: about 0.05 s against 1.5 s).

Why: the FISTA's metric is lip I, so on a badly conditioned program (the digits CNN with
cross_entropy: lip ~ 5e5 beta) its O(lip / k^2) rate needs thousands of
iterations more; the factored objective is smooth, and L-BFGS builds the curvature that the
FISTA's metric lacks. Measured in docs/performance.md ("Non-quadratic losses: the FISTA,
then L-BFGS on its factors").
"""
import torch

from .lbfgs import LBFGS
from .runtime.gram import lift
from .runtime.threads import on_one_thread

TINY = 1e-6           # scale of the units beyond the FISTA iterate's rank, times its largest
LBFGS_MEMORY = 50     # pairs kept by L-BFGS
# FISTA iterations before the hand-off, which needs a Lipschitz estimate >= CONDITION beta
HANDOFF, CONDITION = 50, 1e3


def applies(problem, norm) -> bool:
    """The BM regularizer is smooth on the units: each side's norm squared is a sum of
    squares (its declared form has order 2) or the side is held on coordinate vectors
    (norm.atoms); one process (a shard's L-BFGS would need every rank's line search in
    step)."""
    return not getattr(problem, "sharded", False) and \
        all(float(form["order"]) == 2.0 for side, form in problem.norms.items()
            if side != norm.atoms)


def handoff(problem, op, norm, Z, iterations, lip):
    """The L-BFGS phase from the FISTA's Z after HANDOFF iterations on a badly conditioned
    program (lip >= CONDITION beta), where it applies and Z is not 0 (from U = V = 0 the
    gradient vanishes: a saddle); else None (the FISTA goes on). Why the condition:
    measured lip / beta after 50 iterations, 2.2e4 on the n = 2000 CNN and 5.3e5 on the
    digits CNN (cross_entropy; the hand-off certified 2.6x faster there, and 1e-4 within
    120 s, where the FISTA alone did not), 144 on the built-in CNN (there the FISTA alone
    certified in 2.6 s, the hand-off in 3.9 s); docs/performance.md."""
    if iterations < HANDOFF or lip < CONDITION * float(problem.beta):
        return None
    return FactoredLBFGS(problem, op, norm, Z) if applies(problem, norm) and bool(Z.any()) \
        else None


def _atoms(Z, side):
    """Factors of Z with one unit per column (side "R": v_kj = s_kj e_j, u_kj = Z_k e_j /
    s_kj, s_kj = ||Z_k e_j||^(1/2), balanced for C = l2) or per row (side "C"), the masks
    [P, r, p], [P, r, q] that hold them there (None: free)."""
    if side == "C":
        V, U, maskV, maskU = _atoms(Z.transpose(1, 2), "R")
        return U, V, maskU, maskV
    P, p, q = Z.shape
    s = Z.norm(dim=1).sqrt()                                          # [P, q]
    U = (Z / torch.where(s > 0, s, torch.ones_like(s))[:, None, :]).transpose(1, 2)
    eye = torch.eye(q, dtype=Z.dtype, device=Z.device).expand(P, q, q)
    return U, eye * s[:, :, None], None, eye


class FactoredLBFGS:
    """L-BFGS (lbfgs.py) on (U, V) [P, r, p], [P, r, q] through `op` (liftedops / kronops),
    from Z, where `applies`. A loss that is not finite ends in a non-finite value, which fit
    refuses as a breakdown (fitloop's check of the warm start's factors)."""

    def __init__(self, problem, op, norm, Z):
        self.op = op
        # beta s^2 for ||x|| = s ||x||_2 (order 2, or a unit held on e_j: ||t e_j|| = s |t|)
        self.a, self.b = (float(problem.beta) * problem.norms[k]["scale"] ** 2 for k in "CR")
        if norm.atoms is None:
            (U, V, _), self.masks = norm.units(Z, min(Z.shape[1:])), (None, None)
        else:
            U, V, *self.masks = _atoms(Z, norm.atoms)
        gen = torch.Generator().manual_seed(0)
        tiny = (U.norm(dim=2) * V.norm(dim=2) == 0)[..., None] * TINY * float(U.abs().max())
        U, V = (W + tiny * _held(torch.randn(W.shape, generator=gen, dtype=W.dtype).to(W),
                                 mask) for W, mask in zip((U, V), self.masks))
        self.shapes = U.shape, V.shape
        self.opt = LBFGS(self._value_gradient, torch.cat([U.reshape(-1), V.reshape(-1)]),
                         LBFGS_MEMORY)

    def _split(self, x):
        return x[:self.shapes[0].numel()].view(self.shapes[0]), \
            x[self.shapes[0].numel():].view(self.shapes[1])

    def _value_gradient(self, x):
        """F(L(Z)) + the regularizer and its gradient in (U, V), flat: G_k v + its own,
        G_k^T u + its own, G = L^*(grad F) [P, p, q] (eq. (20))."""
        U, V = self._split(x)
        f, G = self.op.value_adjoint(self.op.forward(lift(U, V)))
        gU = _held(torch.einsum("kab,kjb->kja", G, V) + self.a * U, self.masks[0])
        gV = _held(torch.einsum("kab,kja->kjb", G, U) + self.b * V, self.masks[1])
        reg = 0.5 * (self.a * float((U * U).sum()) + self.b * float((V * V).sum()))
        return f + reg, torch.cat([gU.reshape(-1), gV.reshape(-1)])

    @property
    def evaluations(self):
        return self.opt.evaluations

    @property
    def value(self):
        return self.opt.f

    @on_one_thread
    def run(self, evaluations) -> bool:
        """About `evaluations` more evaluations (its state carries over); True once a whole
        call no longer changed the objective (converged, to a stationary point of the BM
        objective, so the FISTA then leaves its factors to the BM method's polish)."""
        return self.opt.run(max(1, int(evaluations)))

    def solution(self):
        """Z = lift(U, V) [P, p, q] (fit factors it again: balanced, m units)."""
        return lift(*self._split(self.opt.x))


def _held(X, mask):
    """X on the coordinates the units are held to (L-BFGS's steps, combinations of such
    gradients, then keep the units there)."""
    return X if mask is None else X * mask
