"""A warm start for every smooth loss and every pair with a cheap prox: the lifted convex
program (16) solved by accelerated proximal gradient, then factored.

    min_Z  F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||_D          (Sahiner et al. 2024, (16))

for linear and gated-ReLU layers (no cones), any loss with a value and a gradient, and any
(C, R) whose D-norm has a prox (dprox.py: singular-value thresholding for (l2, l2), row
or column group soft thresholding for (l1, R) and (C, l1)). FISTA (Beck & Teboulle 2009)
with the gradient-based adaptive restart of O'Donoghue & Candes (2015) and a backtracking
line search on the Lipschitz estimate that may also shrink it (Scheinberg, Goldfarb & Bai
2014: t_{k+1} = (1 + sqrt(1 + 4 t_k^2 lip_{k+1} / lip_k)) / 2).

One iteration: one lifted prediction L(Z) (of the prox point, which the line search
needs anyway; the extrapolated point's prediction follows by linearity), one adjoint
L^*(grad F), one prox. L, F and L^* come from liftedops.py (L's block over the free outputs
where it fits, kronops.py, else L's dense matrix where it is small, else the basis
activations, warmfootprint.lifted_fista; with the squared loss's Gram
matrix everything stays in the lifted space); their sums over samples are taken in a
fixed order by blocks of samples, so a shard of a distributed run reaches one process's
iterates bit for bit (blocksum.py). The solution Z is factored into BM units by the pair's
factorization (dprox.py); when m units per pattern cannot hold it (more non-zero groups
or singular values than m), the BM method polishes the truncated factors.

Why: before it, everything but the squared loss with C = R = l2 started BM from random
factors (Newton, L-BFGS), which stalled above p* (spiral, C = l2, R = l1: 4.6e-3 above
p*) or took minutes (cross_entropy); docs/performance.md has the measurements.
"""
import math
import time

import torch

from .offset import has_output_bias

from .dprox import DNorm
from .kronops import lifted_operator
from .threads import on_one_thread

SHRINK = 0.9          # the Lipschitz estimate tried first at each iteration, times lip
POWER_ITERS = 15      # power iterations for the first Lipschitz estimate (||L||^2)
BACKTRACK = 60        # doublings of the estimate at most per iteration


def lifted_refusals(problem, *more):
    """What no lifted first-order warm start (this FISTA, proxadmm.py) takes, then `more`
    (pairs of refused, text): ReLU cones, a pair without a prox, float32, an output bias
    (see the two `accepts`). One shard of a distributed run is taken: every sum over
    samples is reduced (liftedops.py)."""
    return [text for refused, text in (
        (problem.cone, "ReLU cones"),
        (problem.spec.get("prox") is None, "a (C, R) pair without a prox"),
        (problem.Y.dtype != torch.float64, "float32"),
        (has_output_bias(problem.spec), "an output bias")) + more if refused]


class LiftedStart:
    """What the lifted warm starts on L(Z) share (this FISTA, proxadmm.py, pnewton.py):
    the D-norm's prox, Z's shape [P, p, q], and factoring the solution into units."""

    @classmethod
    def of(cls, problem):
        return cls(problem)

    def _lift(self, problem):
        self.problem, self.beta = problem, float(problem.beta)
        self.norm = DNorm(problem.spec["prox"], problem.C, problem.R)
        self.shape = (problem.P, problem.p, problem.q)

    left = None     # groups the last factors() left out of its m units (None: not yet)

    def factors(self, m):
        """BM factors [P, m, p], [P, m, q] of the solution (and `left`)."""
        U, V, self.left = self.norm.units(self.solution(), m)
        return U, V

    @property
    def POLISH(self):
        """The BM method polishes the factors unless the last factors() held every
        non-zero group (or singular value) of the solution."""
        return self.left is None or self.left > 0

    def solution(self):
        """Z [P, p, q]: the last prox iterate (exactly sparse or low rank where it should be)."""
        return self.Z

    def dual_hint(self):
        """Z: the certificate tries grad F(L(Z)) as one more dual direction."""
        return self.Z


class LiftedFISTA(LiftedStart):
    """min_Z F(L(Z)) + beta sum_k ||Z_k||_D from Z = 0, resumable: `run(iters)` continues."""
    name, title = "fista", "the lifted FISTA"
    FIRST_CHUNK = 100    # iterations before fit's first certificate (then doubling)
    MAX_ITER = 20000

    @staticmethod
    def accepts(problem, m):
        """None where it applies, else why not: no cones, float64 (the certificate's 1e-6
        is below float32's rounding of the loss), and the pair's D-norm has a prox
        (spec["prox"], from dnorm.PAIR_TABLE). Not with an output bias: F_b's inner offset
        solve is exact only to its rounding floor, which the line search cannot tell from
        curvature near the optimum (measured: the Lipschitz estimate grew to 4e16 and the
        run stopped 2e-6 above p*)."""
        why = lifted_refusals(problem)
        return "it does not take " + ", ".join(why) if why else None

    def __init__(self, problem):
        self._lift(problem)
        self.smooth = self.factored = None   # made in run() (on fit's clock), at the hand-off
        self.iterations, self.seconds, self.restarts = 0, 0.0, 0
        self.lip, self.loss, self.step = None, math.inf, math.inf

    def _start(self):
        s = self.smooth = lifted_operator(self.problem)
        Y = self.problem.Y
        self.Z = torch.zeros(self.shape, dtype=Y.dtype, device=Y.device)
        self.yZ = s.forward(self.Z)
        self.W, self.yW, self.t = self.Z, self.yZ, 1.0
        self.lip = max(self._power(), 1e-300)

    def _power(self) -> float:
        """lambda_max(L^* L) by power iteration from a seeded start (an estimate: the line
        search corrects it either way)."""
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(self.shape, generator=gen, dtype=torch.float64).to(self.Z)
        lam = 0.0
        for _ in range(POWER_ITERS):
            y = self.smooth.adjoint(self.smooth.forward(x)) if self.problem.gram is None \
                else self.problem.gram.gradient(x) + self.problem.gram.b.reshape(self.shape)
            lam = float(y.norm())
            if not (lam > 0 and math.isfinite(lam)):
                break
            x = y / lam
        return lam if math.isfinite(lam) else 1.0

    @on_one_thread
    def run(self, iters, tol=1e-9) -> bool:
        """Up to `iters` more iterations; True once the gradient mapping lip |Z_next - W|
        is <= tol beta. Why that measure: the prox step's optimality condition puts
        grad F(W) - lip (W - Z_next) in beta times the D-norm's subdifferential, so the
        dual points the certificate builds from the gradient violate ||G_k||_D* <= beta
        by about lip |Z_next - W|, relative to beta: what the bound loses by scaling them.
        The problem's `handoff` hook (bmdsl's trainer sets it: L-BFGS on the factors of Z
        where the BM regularizer is smooth, trainer/factored.py, which decides when, from
        the iterations and the Lipschitz estimate) may take over, an evaluation counted as
        an iteration."""
        start = time.perf_counter()
        if self.smooth is None:
            self._start()
        s, beta, iters, done = self.smooth, self.beta, int(iters), False
        for k in range(iters):
            if self.factored is None and getattr(self.problem, "handoff", None):
                self.factored = self.problem.handoff(self.problem, s, self.norm, self.Z,
                                                     self.iterations, self.lip)
            if self.factored is not None:   # the rest of the chunk: L-BFGS evaluations
                spent = self.factored.evaluations
                done = self.factored.run(iters - k)
                self.iterations += max(1, self.factored.evaluations - spent)
                break
            fW, G = s.value_adjoint(self.yW)
            if not (math.isfinite(fW) and bool(torch.isfinite(G).all())):
                raise FloatingPointError(
                    f"lifted FISTA: the loss or its gradient is not finite after "
                    f"{self.iterations} iterations (the data's scale overflows float64; "
                    "rescale the inputs and the target)")
            lip_old, lip = self.lip, self.lip * SHRINK
            for _ in range(BACKTRACK):    # the quadratic model at W must majorize F
                Zn = self.norm.prox(self.W - G / lip, beta / lip)
                D = Zn - self.W
                yn = s.forward(Zn)
                fn = s.value(yn)
                model = fW + float((G * D).sum()) + 0.5 * lip * float((D * D).sum())
                if fn <= model + 1e-13 * abs(fW):
                    break
                lip *= 2.0
            self.lip = lip
            self.step = lip * float(D.norm()) / max(beta, 1e-300)
            self.loss = fn
            if float(((self.W - Zn) * (Zn - self.Z)).sum()) > 0:   # momentum uphill: restart
                self.t, c = 1.0, 0.0
                self.restarts += 1
            else:
                tn = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * self.t * self.t * lip / lip_old))
                c, self.t = (self.t - 1.0) / tn, tn
            self.W, self.yW = Zn + c * (Zn - self.Z), yn + c * (yn - self.yZ)
            self.Z, self.yZ = Zn, yn
            self.iterations += 1
            if self.step <= tol:
                done = True
                break
        self.seconds += time.perf_counter() - start
        return done

    @property
    def POLISH(self):
        """As LiftedStart's, and after the hand-off always: L-BFGS converges to a
        stationary point of the nonconvex BM objective, not a certified one."""
        return super().POLISH or self.factored is not None

    def solution(self):
        """Z [P, p, q]: the last prox point (exactly sparse or low rank where it should be),
        or after the hand-off the product of the L-BFGS phase's factors."""
        return self.Z if self.factored is None else self.factored.solution()

    def dual_hint(self):
        """The extrapolated point W (after the hand-off, Z): grad F(L(W)) is one more dual
        direction to try."""
        return self.W if self.factored is None else self.solution()

    def info(self) -> dict:
        return {"method": "lifted FISTA", "iterations": self.iterations,
                "seconds": self.seconds, "lipschitz": self.lip, "restarts": self.restarts,
                "objective": math.inf if self.smooth is None else self.factored.value if
                self.factored is not None else self.loss + self.beta * self.norm.value(self.Z),
                "gradient_mapping": self.step,
                "factored_evaluations": 0 if self.factored is None else self.factored.evaluations}
