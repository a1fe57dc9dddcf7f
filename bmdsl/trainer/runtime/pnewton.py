"""A warm start for smooth losses that declare a Hessian: the lifted program (16) solved by
proximal Newton (Lee, Sun & Saunders 2014), then factored.

    min_Z  F(L(Z)) + beta sum_k ||Z_k||_D                  (Sahiner et al. 2024, eq. (16))

Each outer step k takes the second-order model of F at Z_k,
    F(L(Z)) ~ F(L(Z_k)) + <g, L(Z - Z_k)> + 1/2 (z - z_k)' L^* H L (z - z_k),
g = grad F(L(Z_k)), H = F''(L(Z_k)) as the loss's entry declares it (hessian.py: a diagonal,
or per-sample c x c blocks for softmax cross-entropy), so the subproblem
    min_Z 1/2 z' G_k z - b_k' z + beta sum_k ||Z_k||_D,   G_k = L^* H L, b_k = G_k z_k - L^* g
is the squared loss's lifted program in Gram form: the Gram-path ADMM of lifted.py solves it
(reused, warm-started from the previous step's iterate and multiplier), inexactly: to a
relative residual PN_FORCING times the last relative step (a forcing sequence, Lee et al.
sec. 3.2). Then a backtracking (Armijo) line search on the true objective along the step
to the subproblem's solution, from t = 1. Near the optimum t = 1 is taken and the rate is
superlinear: measured on the gated spiral (docs/performance.md), 8-15 outer steps where
the prox ADMM of proxadmm.py took 700-3300 iterations, each with the loss's prox per sample.

L's dense matrix M [|y|, P p q] is built once (as the lifted FISTA's, at most PN_DENSE_MAX
entries: the n = 2000 self-attention cells' [24000, 864] is above the FISTA's 4e6);
G_k costs |y| N^2 (N = P p q) and one Cholesky factorization N^3 / 3 per outer step.
"""
import math
import time

import torch

from .anderson import balanced_solve
from .freeoutputs import Outputs
from .gram import SECOND_ORDER_N_MAX, Gram
from .hessian import Curvature, DenseL, curvature_kernel
from .lifted import LiftedADMM
from .proxgrad import LiftedStart, lifted_refusals

PN_DENSE_MAX = 40_000_000   # entries of L's dense matrix [|y|, N] at most (320 MB; G_k
                            # costs |y| N^2 per step; the memory budget is the trainer's)
PN_SIGMA = 1e-4          # Armijo's sufficient decrease, a fraction of the model's decrease
PN_HALVINGS = 40         # halvings of the step at most per line search
PN_INNER_MAX = 1500      # ADMM iterations per subproblem at most
PN_FORCING = 0.1         # inner relative residual <= PN_FORCING * the last relative step ...
PN_INNER_TOL = (1e-11, 1e-2)   # ... clipped to this interval (loose first, tight at the end)
PN_CERTIFY_DECREASE = 1e-6   # see LiftedProxNewton.FIRST_CHUNK
PN_RHO_BETA = 0.1       # the subproblem ADMM's first rho = PN_RHO_BETA * beta, then balanced:
PN_ADAPT_CHUNK = 50     # ... after every PN_ADAPT_CHUNK iterations, once one relative residual
PN_BALANCE = 10.0       # is PN_BALANCE times the other, rho changes by PN_RHO_STEP (a new
PN_RHO_STEP = 4.0       # factorization of G_k + rho I), at most PN_RHO_CHANGES times per step
PN_RHO_CHANGES = 4
PN_MU_START = 1e-2      # damping mu: G_k + mu s I, s = mean diag(L^* L); t = 1 divides mu by
PN_MU_GROW = 10.0       # PN_MU_GROW, a shorter step multiplies it (Levenberg-Marquardt style)
PN_MU_MIN = 1e-12       # below it mu is 0: the model is F's own second-order one


def _twice_differentiable(spec):
    kernel = curvature_kernel(spec)
    return kernel is None or bool(kernel.twice_differentiable)


def _NewtonModel(G, b, shape):
    """The subproblem's quadratic in Gram form, as lifted.LiftedADMM reads a gram.Gram (its
    L^* H L couples the outputs: no block layout)."""
    return Gram(G, b, 0.0, shape)


class LiftedProxNewton(LiftedStart):
    """min F(L(Z)) + beta sum_k ||Z_k||_D by proximal Newton from Z = 0; `run(iters)`
    continues (an iteration is one outer step)."""
    name, title = "pnewton", "the lifted proximal Newton"
    # outer steps before fit's first certificate, and between the next; a step that
    # lowers the objective by at most PN_CERTIFY_DECREASE of it returns to fit at once
    # (measured, n = 2000 cross_entropy: doubling chunks certified at step 21, 9 steps late;
    # a certificate there costs ~1.5 s, as much as one or two steps)
    FIRST_CHUNK = 4
    CHUNK_GROWTH = 1
    MAX_ITER = 200
    NEEDS = {"cone": False}   # never with ReLU cones (what the emitter may leave out)

    @staticmethod
    def accepts(problem, m):
        """None where it applies, else why not: a loss whose entry declares a Hessian
        (hessian_block or hessian_diag; not a quadratic one: the Gram path's ADMM solves
        that in one step) and is twice differentiable (Lee et al.'s superlinear rate needs
        C^2; Huber's zero curvature outside its quadratic zone made the steps' models
        unbounded but for the D-norm: 200 halvings and 10-20 s on the test spiral), what no lifted warm start takes (proxgrad.lifted_refusals), L's
        dense matrix within PN_DENSE_MAX entries, N = P p q <= SECOND_ORDER_N_MAX (G_k
        is dense; gram.py) and at most |y| (a wide L: the lifted FISTA; see proxadmm.py);
        one process."""
        N = problem.P * problem.p * problem.q
        why = lifted_refusals(
            problem, (curvature_kernel(problem.spec) is None,
                      "a loss without a declared Hessian (hessian_diag or hessian_block), "
                      "or a quadratic one"),
            (not _twice_differentiable(problem.spec),
             "a loss that is not twice differentiable (Huber: its generalized Hessian is 0 "
             "outside the quadratic zone, measured 10-20 s against the prox ADMM's 1-3 s)"),
            (problem.outputs * N > PN_DENSE_MAX,
             f"|y| P p q > {PN_DENSE_MAX:.0e} (L's dense matrix)"),
            (N > SECOND_ORDER_N_MAX, f"P p q > {SECOND_ORDER_N_MAX} (a step costs about "
             "P p q of the lifted FISTA's iterations)"),
            (problem.outputs < N, "fewer outputs |y| than lifted variables P p q"),
            (getattr(problem, "sharded", False),
             "one shard of --nproc > 1 (its L^* H L is not summed over the ranks)"))
        return "it does not take " + ", ".join(why) if why else None

    def __init__(self, problem):
        self._lift(problem)
        self.op = None       # made in the first run(), so fit's clock includes it
        self.admm, self.rho = None, PN_RHO_BETA * self.beta
        self.iterations, self.seconds, self.inner, self.halvings = 0, 0.0, 0, 0
        self.step, self.tol_inner = math.inf, PN_INNER_TOL[1]
        self.objective, self.mu = math.inf, PN_MU_START

    def _start(self):
        pb = self.problem
        self.op = DenseL(pb)
        self.curvature = Curvature(curvature_kernel(pb.spec), pb.Y,
                                   Outputs(pb.spec, pb.P, pb.p, pb.w2_shape))
        self.Z = torch.zeros(self.shape, dtype=pb.Y.dtype, device=pb.Y.device)
        self.yZ = self.op.forward(self.Z)
        self.f, self.g = self.op.value_grad(self.yZ)
        self.objective = self.f
        self.scale = float((self.op.M ** 2).sum(0).mean())    # mean diag(L^* L)

    def _subproblem(self):
        """The step's quadratic + D-norm program solved by the Gram ADMM to tol_inner,
        warm-started from the previous step's iterate and multiplier, Anderson-accelerated,
        with rho balanced between chunks of PN_ADAPT_CHUNK iterations (anderson.py; at most
        PN_RHO_CHANGES new factorizations per step): no fixed rho suited both n = 45 (best
        0.01 beta) and n = 2000 (best 0.1 beta) on the gated spiral."""
        op = self.op
        self.H = self.curvature.hessian(self.yZ)
        G = self.curvature.weighted_gram(op.M, self.yZ, self.H)
        if self.mu > 0:
            G.diagonal().add_(self.mu * self.scale)
        model = _NewtonModel(G, b=G @ self.Z.reshape(-1) - op.adjoint(self.g).reshape(-1),
                       shape=self.shape)
        self.Z0, self.g0 = self.Z, self.g      # the model's centre (dual_direction)
        self.admm, inner = balanced_solve(
            self._admm(model, self.rho, self.admm), lambda a, rho: self._admm(model, rho, a),
            self.tol_inner, PN_INNER_MAX,
            (PN_ADAPT_CHUNK, PN_BALANCE, PN_RHO_STEP, PN_RHO_CHANGES))
        self.inner += inner
        self.rho = self.admm.rho
        return self.admm.solution()

    def _admm(self, model, rho, last):
        """lifted.LiftedADMM on the model, started from the last ADMM's x and multiplier
        (u is scaled by 1 / rho: rescaled to the new rho)."""
        admm = LiftedADMM(model, self.beta, rho=rho, norm=self.norm)
        if last is not None:
            admm.x, admm.u = last.x, last.u * (last.rho / rho)
        return admm

    def run(self, iters, tol=1e-10) -> bool:
        """Up to `iters` more outer steps; True once the relative step t |D| / |Z| is
        <= tol with the subproblem solved to its tightest tolerance."""
        start = time.perf_counter()
        if self.op is None:
            self._start()
        op, beta, done = self.op, self.beta, False
        for _ in range(int(iters)):
            X = self._subproblem()
            D = X - self.Z
            yD = op.forward(D)
            if not bool(torch.isfinite(yD).all()):
                raise FloatingPointError(
                    f"lifted proximal Newton: the step is not finite after {self.iterations} "
                    "steps (the data's scale overflows float64; rescale the inputs)")
            reg = beta * self.norm.value(self.Z)
            # the model's decrease (Lee et al. eq. (2.6)): <g, L(D)> + beta (|X| - |Z|)
            delta = float((self.g * yD).sum()) + beta * self.norm.value(X) - reg
            self.iterations += 1
            if not delta < 0:      # no descent at this accuracy: solve the model tighter
                if self.tol_inner <= PN_INNER_TOL[0]:
                    done = True
                    break
                self.tol_inner = max(PN_INNER_TOL[0], self.tol_inner * 1e-2)
                continue
            phi0, t = self.f + reg, 1.0
            for _ in range(PN_HALVINGS):
                Zt, yt = self.Z + t * D, self.yZ + t * yD
                ft = op.value(yt)
                if ft + beta * self.norm.value(Zt) <= phi0 + PN_SIGMA * t * delta:
                    break
                t *= 0.5
                self.halvings += 1
            else:
                self.mu = max(self.mu, PN_MU_MIN) * PN_MU_GROW
                done = self.tol_inner <= PN_INNER_TOL[0]   # no decrease found at all
                self.tol_inner = max(PN_INNER_TOL[0], self.tol_inner * 1e-2)
                if done:
                    break
                continue
            self.mu = self.mu / PN_MU_GROW if t == 1.0 else max(self.mu, PN_MU_MIN) * PN_MU_GROW
            self.mu = 0.0 if self.mu < PN_MU_MIN else self.mu
            self.step = t * float(D.norm()) / max(float(Zt.norm()), 1e-300)
            self.Z, self.yZ = Zt, yt
            self.f, self.g = op.value_grad(yt)
            decrease, self.objective = self.objective - (self.f + beta * self.norm.value(Zt)), \
                self.f + beta * self.norm.value(Zt)
            if self.step <= tol and self.tol_inner <= PN_INNER_TOL[0] * 100:
                done = True
                break
            self.tol_inner = min(self.tol_inner, max(PN_INNER_TOL[0], PN_FORCING * self.step))
            if 0 <= decrease <= PN_CERTIFY_DECREASE * abs(self.objective):
                break       # likely certifiable: back to fit for a certificate (see above)
        self.seconds += time.perf_counter() - start
        return done

    def dual_direction(self):
        """The model's loss gradient at the last subproblem's smooth iterate z (the ADMM's,
        lifted.py): g + H L(z - Z_k). At the model's optimum L^* of it has D-dual norms <=
        beta (the ADMM's multiplier), so it is a near-feasible dual direction even where Z
        is accurate only to the inner tolerance (measured: the gradient at Z alone gave a
        gap bound of 8e-3 at 1e-10 of p*, n = 2000 cross_entropy)."""
        if self.admm is None or self.admm.iterations == 0:
            return None
        z = self.admm.dual_hint()
        return self.g0 + self.curvature.apply(self.H, self.op.forward(z - self.Z0))

    def info(self) -> dict:
        return {"method": "lifted proximal Newton", "iterations": self.iterations,
                "seconds": self.seconds, "inner_iterations": self.inner,
                "halvings": self.halvings, "relative_step": self.step,
                "objective": self.objective}
