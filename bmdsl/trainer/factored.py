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

from ..certificates.dualnorms import DualNormOracle
from ..certificates.result import relative_gap
from ..certificates.samples import Samples
from .lbfgs import LBFGS
from .runtime.gram import lift
from .runtime.threads import on_one_thread

TINY = 1e-6           # scale of the units beyond the FISTA iterate's rank, times its largest
LBFGS_MEMORY = 50     # pairs kept by L-BFGS
CHECK = 10            # L-BFGS evaluations between two looks at the plain bound (below)
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


def handoff(problem, op, norm, Z, iterations, lip, bound=None):
    """The L-BFGS phase from the FISTA's Z after HANDOFF iterations on a badly conditioned
    program (lip >= CONDITION beta), where it applies and Z is not 0 (from U = V = 0 the
    gradient vanishes: a saddle); else None (the FISTA goes on). Why the condition:
    measured lip / beta after 50 iterations, 2.2e4 on the n = 2000 CNN and 5.3e5 on the
    digits CNN (cross_entropy; the hand-off certified 2.6x faster there, and 1e-4 within
    120 s, where the FISTA alone did not), 144 on the built-in CNN (there the FISTA alone
    certified in 2.6 s, the hand-off in 3.9 s); docs/performance.md. `bound` (the
    trainer's BoundModel) lets the phase end a chunk once it could certify (PlainBound)."""
    if iterations < HANDOFF or lip < CONDITION * float(problem.beta):
        return None
    if not (applies(problem, norm) and bool(Z.any())):
        return None
    return FactoredLBFGS(problem, op, norm, Z, None if bound is None else PlainBound(bound))


class PlainBound:
    """The certificate's first candidate (certificates/search.py: v = t grad F(Yhat) with
    t = beta / max_k ||G_k||_D*, eq. (20)) from what an L-BFGS evaluation already holds:
    Yhat and G = L^*(grad F) through the lifted operator, so no prediction or adjoint of
    bmdsl's einsums (0.3 s each on the digits CNN) and no ray search. With t at the end
    of the feasible ray its dual value is <= the certificate's (which searches the ray),
    so the bound is >= the certificate's plain bound, to rounding."""

    def __init__(self, bound):
        self.samples = Samples(bound)
        self.oracle = DualNormOracle(bound, samples=self.samples)
        self.beta = float(bound.beta)

    def __call__(self, p, yhat, G) -> float:
        g = self.samples.grad(yhat.detach().cpu().double().numpy())
        top = self.oracle(G.detach().cpu().double().numpy()).max
        d = self.samples.dual_value(self.beta / max(top, 1e-300) * g)
        return relative_gap(p, d)


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

    def __init__(self, problem, op, norm, Z, plain=None):
        self.op, self.problem, self.norm, self.plain = op, problem, norm, plain
        self.seen = []     # the last evaluations: (objective, loss, Z, Yhat, G)
        self.stopped = False   # a call ended early (run)
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
        Z = lift(U, V)
        yhat = self.op.forward(Z)
        f, G = self.op.value_adjoint(yhat)
        gU = _held(torch.einsum("kab,kjb->kja", G, V) + self.a * U, self.masks[0])
        gV = _held(torch.einsum("kab,kja->kjb", G, U) + self.b * V, self.masks[1])
        reg = 0.5 * (self.a * float((U * U).sum()) + self.b * float((V * V).sum()))
        self.seen = (self.seen + [(f + reg, f, Z, yhat, G)])[-4:]
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
        objective, so the FISTA then leaves its factors to the BM method's polish). With
        the fit's goal (problem.goal, a relative gap) and a PlainBound, the call ends
        early, every CHECK evaluations, once the plain bound at the current point meets it:
        fit then certifies there instead of at the chunk's end (the doubling chunks ran
        up to 2x the evaluations needed: 1430 for about 1150 on the digits CNN). Once only:
        a call after it means the certificate missed (its point is refactored into fit's
        m units, which may be fewer than the rank here), and the chunks run whole again."""
        goal, left = getattr(self.problem, "goal", None), max(1, int(evaluations))
        if goal is None or self.plain is None or self.stopped:
            return self.opt.run(left)
        while left > 0:
            before = self.opt.evaluations
            if self.opt.run(min(CHECK, left)):
                return True
            left -= max(1, self.opt.evaluations - before)
            bound = self._plain()
            if bound is not None and bound <= goal:
                self.stopped = True
                return False
        return False

    def _plain(self):
        """The plain bound at the current point (None: its evaluation is not among the
        last few, e.g. a line search that ended at an earlier trial)."""
        for f, loss, Z, yhat, G in self.seen:
            if f == self.opt.f:
                return self.plain(loss + float(self.problem.beta) * self.norm.value(Z), yhat, G)
        return None

    def solution(self):
        """Z = lift(U, V) [P, p, q] (fit factors it again: balanced, m units)."""
        return lift(*self._split(self.opt.x))


def _held(X, mask):
    """X on the coordinates the units are held to (L-BFGS's steps, combinations of such
    gradients, then keep the units there)."""
    return X if mask is None else X * mask
