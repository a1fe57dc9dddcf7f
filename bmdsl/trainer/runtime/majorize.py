"""A warm start for every loss that declares its smoothness: the lifted program (16) by
majorization in the metric of L^* L, accelerated, each step solved through the factored
block Gram of the free outputs (gram.py), then factored.

    min_Z  F(L(Z)) + beta sum_k ||Z_k||_D                  (Sahiner et al. 2024, eq. (16))

With B >= F'' a constant bound per sample (the loss entry's `curvature_bound` B [c, c] over
its classes: Bohning 1992, diag(s) - s s^T <= 1/2 (I - 1 1^T / c) for softmax
cross-entropy; else its `smoothness` L_F times I: 1/4 for logistic, 1 for Huber),
F(Yhat) <= F(Y_W) + <g, Yhat - Y_W> + 1/2 <Yhat - Y_W, (Yhat - Y_W) B>, g = grad F(Y_W),
Y_W = L(W). Each step minimizes that bound plus the D-norm, a squared-loss lifted program
    min_X 1/2 x' M x - b' x + beta sum_k ||X_k||_D,   M = B (x) G_F,  b = M w - L^*(g),
(G = L^* L = I_c (x) G_F over the c free outputs): the Gram-path ADMM of lifted.py solves it
with one factorization of a G_F + rho I [N/c, N/c] (KronMetric: B = a P, P a projection)
for all steps (again only where rho is rebalanced),
warm-started, to a relative residual MM_FORCING times the last relative step (a forcing
sequence), or, where the bound was exact at the step (its slack F(W) + <g, L(X - W)> +
1/2 |L(X - W)|_B^2 - F(X) ~ 0: Huber with every residual in its quadratic zone, B = I),
MM_TIGHTEN times the last tolerance: the next step's program is then the same (b = L^*(y)
whatever W), so an inexact step only interrupts its solve; such a step solved to
MM_CERTIFY_TOL returns to fit for a certificate (the n = 2000 CNN, Huber (l2, l1): 5 outer
steps, 144 inner iterations and 2 factorizations to a certificate; so, with rho = beta
from the start, 2, 40 and 1). W is extrapolated as in FISTA (Beck & Teboulle 2009) in the
metric M, with the gradient restart of O'Donoghue & Candes (2015): <L(W - X), L(X - Z)>
> 0. It is a proximal gradient method whose metric is L's own, so the data's conditioning
(what slows the plain FISTA, whose metric is ||L||^2 I) does not enter; only B against F's
true curvature does.
"""
import math
import time

import torch

from ...kernel.lossforms import LOSS_KERNELS
from .anderson import balanced_solve
from .gram import GRAM_MAX_N, Gram
from .hessian import curvature_kernel
from .kronops import KRON_DENSE_MAX, KronL, kron_entries
from .lifted import LiftedADMM
from .proxadmm import regularized_inverse
from .proxgrad import LiftedStart, lifted_refusals
from .threads import on_one_thread

MM_MAX_ITER = 3000
MM_FORCING = 0.1            # inner relative residual <= MM_FORCING * the last relative step
MM_INNER_TOL = (1e-11, 1e-2)
MM_INNER_MAX = 1000         # ADMM iterations per step at most
MM_RHO_BETA = 1.0           # the first rho = MM_RHO_BETA * beta (measured), then balanced:
MM_ADAPT_CHUNK = 50         # after every MM_ADAPT_CHUNK iterations, once one relative residual
MM_BALANCE = 10.0           # is MM_BALANCE times the other, rho changes by MM_RHO_STEP (a new
MM_RHO_STEP = 4.0           # factorization), at most MM_RHO_CHANGES times per step
MM_RHO_CHANGES = 2
MM_RULE = (MM_ADAPT_CHUNK, MM_BALANCE, MM_RHO_STEP, MM_RHO_CHANGES)
MM_CERTIFY_DECREASE = 1e-7  # a step that lowers the objective by at most this fraction of it
                            # returns to fit for a certificate
# a bound whose slack at the step is <= MM_EXACT |F| is exact there: the next step's
# tolerance is then at most MM_TIGHTEN times this one's, and a step so solved to at most
# MM_CERTIFY_TOL returns to fit for a certificate
MM_EXACT, MM_TIGHTEN, MM_CERTIFY_TOL = 1e-12, 1e-2, 1e-4


def _curved(spec):
    """The loss declares its Hessian and is twice differentiable (hessian.curvature_kernel)."""
    kernel = curvature_kernel(spec)
    return kernel is not None and bool(kernel.twice_differentiable)


def curvature_bound(spec, c):
    """The loss entry's declared bound B [c, c] >= F'' on c classes, or None."""
    kernel = LOSS_KERNELS.get(spec["loss"])
    if kernel is None or kernel.curvature_bound is None:
        return None
    return kernel(**dict(spec.get("loss_params") or ())).curvature_bound(c)


class KronMetric:
    """The metric B (x) G_F on Z's block X [N/c, c] for B = a P over the c free outputs (P an
    orthogonal projection: Bohning's 1/2 (I - 1 1^T / c), or a I): X -> G_F X B, and the
    ADMM's z-step (B (x) G_F + rho I)^{-1} X = (a G_F + rho I)^{-1} X P + X (I - P) / rho,
    one factorization."""

    def __init__(self, GF, B):
        self.GF, self.B = GF, B
        self.a = float(torch.linalg.eigvalsh(B).max())
        self.P = B / self.a

    def apply(self, X):
        return self.GF @ X @ self.B

    def inverse(self, rho):
        """(this operator at rho, the rho used: grown where a G_F + rho I is indefinite),
        through the Cholesky factor C of a G_F + rho I: two triangular solves per product
        cost what the inverse's product does, and forming the inverse took 2.3 times the
        factorization (N / c = 2592, measured at load 6: 2.5 s against 1.1 s)."""
        self.C, self.rho = regularized_inverse(self.a * self.GF, rho, "lifted majorization",
                                               factor=True)
        return self, self.rho

    def __matmul__(self, X):
        # C^{-T} C^{-1}: two triangular solves (torch.cholesky_solve took 7x as long here)
        XP, C, solve = X @ self.P, self.C, torch.linalg.solve_triangular
        return solve(C.mH, solve(C, XP, upper=False), upper=True) + (X - XP) / self.rho


def smoothness(spec):
    """The loss entry's declared Lipschitz constant of grad F, or None (not declared)."""
    kernel = LOSS_KERNELS.get(spec["loss"])
    if kernel is None or kernel.smoothness is None:
        return None
    value = kernel(**dict(spec.get("loss_params") or ())).smoothness
    return float(value) if value is not None and float(value) > 0 else None


class LiftedMajorized(LiftedStart):
    """min F(L(Z)) + beta sum_k ||Z_k||_D by accelerated majorization from Z = 0; `run(iters)`
    continues (an iteration is one outer step)."""
    name, title = "mm", "the lifted majorization"
    FIRST_CHUNK = 5
    MAX_ITER = MM_MAX_ITER

    @staticmethod
    def accepts(problem, m):
        """None where it applies, else why not: a loss whose entry declares its smoothness
        (a Lipschitz constant of its gradient) and not both a Hessian and C^2 (measured on
        the n = 2000 CNN: cross_entropy and logistic reached gap bounds 2 to 4 orders
        lower with the lifted FISTA in 60 s; Huber certified only here), what no lifted
        warm start takes
        (proxgrad.lifted_refusals), the block G_F dense (N / c <= GRAM_MAX_N, c the free
        outputs: gram.free_outputs) and F's blocks within KRON_DENSE_MAX entries; one
        process. Why not a twice-differentiable loss: the bound is loose where the
        predictions are confident (measured with Bohning's B on the n = 2000 CNN,
        cross_entropy: gap bound 2.7 after 219 steps in 63 s; the FISTA through F's blocks
        certified in 40 s). Why not a shard: G_F, F and L^* are summed along blocksum.py's
        fixed-order tree, but the products with F's blocks are not (2 ranks took 15 outer
        steps where one process took 9)."""
        c = getattr(problem, "free_outputs", 1)
        nf = problem.P * problem.p * problem.q // c
        why = lifted_refusals(
            problem, (smoothness(problem.spec) is None and curvature_bound(problem.spec, 2)
                      is None, "a loss without a declared smoothness (a Lipschitz constant "
                      "of its gradient) or curvature bound"),
            (_curved(problem.spec), "a twice-differentiable loss with a declared Hessian "
             "(the proximal Newton's, else the lifted FISTA's: measured faster)"),
            (nf > GRAM_MAX_N, f"P p q / c > {GRAM_MAX_N} (c = {c} free outputs; G_F dense)"),
            (kron_entries(problem) > KRON_DENSE_MAX,
             f"|y| P p q / c^2 > {KRON_DENSE_MAX:.0e} (L's block F)"),
            (getattr(problem, "sharded", False),
             "one shard of --nproc > 1 (the products with F's blocks are not fixed-order)"))
        return "it does not take " + ", ".join(why) if why else None

    def __init__(self, problem):
        self._lift(problem)
        self.op = None       # made in the first run(), so fit's clock includes it
        self.iterations, self.seconds, self.inner, self.restarts, self.exact = 0, 0.0, 0, 0, 0
        self.step, self.tol_inner, self.objective = math.inf, MM_INNER_TOL[1], math.inf
        self.lf, self.admm = smoothness(problem.spec), None

    def _bound(self):
        """B [c, c] over the free outputs: the declared curvature bound where they are the
        class axis (the last of Y) and it is a multiple of a projection, else its largest
        eigenvalue (or the smoothness) times I (also a bound)."""
        pb, lay = self.problem, self.op.layout
        c, last = lay.c, pb.Y.dim() - 1
        B = curvature_bound(pb.spec, int(pb.Y.shape[-1]))
        if B is not None:
            B = torch.as_tensor(B, dtype=pb.Y.dtype, device=pb.Y.device)
            P = B / float(torch.linalg.eigvalsh(B).max())
            if lay.y_axes == [last] and B.shape == (c, c) and torch.allclose(P @ P, P):
                return B
        lf = smoothness(pb.spec) if B is None else float(torch.linalg.eigvalsh(B).max())
        return lf * torch.eye(c, dtype=pb.Y.dtype, device=pb.Y.device)

    def _start(self):
        pb = self.problem
        self.op = KronL(pb)
        self.B = self._bound()
        self.metric = KronMetric(self.op.gram(), self.B)
        self.lf = self.metric.a
        self.model = Gram(self.metric.GF, torch.zeros(self.op.nf, self.op.c, dtype=pb.Y.dtype,
                          device=pb.Y.device), 0.0, self.shape, self.op.layout)
        self.admm = self._admm(None, MM_RHO_BETA * self.beta)
        self.Z = torch.zeros(self.shape, dtype=pb.Y.dtype, device=pb.Y.device)
        self.yZ = self.op.forward(self.Z)
        self.W, self.yW, self.t = self.Z, self.yZ, 1.0
        self.objective = self.op.value(self.yZ)

    @on_one_thread
    def run(self, iters, tol=1e-10) -> bool:
        """Up to `iters` more outer steps, each step's program solved to tol_inner with rho
        balanced between chunks (anderson.py); True once the relative step |X - W| / |X|
        is <= tol with the steps solved to their tightest tolerance."""
        start = time.perf_counter()
        if self.op is None:
            self._start()
        op, lay, beta, done = self.op, self.op.layout, self.beta, False
        for _ in range(int(iters)):
            fW, A = op.value_adjoint(self.yW)
            if not (math.isfinite(fW) and bool(torch.isfinite(A).all())):
                raise FloatingPointError(
                    f"lifted majorization: the loss or its gradient is not finite after "
                    f"{self.iterations} steps (the data's scale overflows float64; rescale "
                    "the inputs and the target)")
            self.admm.b = self.metric.apply(lay.block(self.W)) - lay.block(A)
            self.admm, inner = balanced_solve(self.admm, self._admm, self.tol_inner,
                                              MM_INNER_MAX, MM_RULE)
            self.inner, X = self.inner + inner, self.admm.solution()
            self.yW0 = self.yW
            yX = op.forward(X)
            fX, d = op.value(yX), yX - self.yW
            objective = fX + beta * self.norm.value(X)
            # the bound's slack at X: 0 where F is quadratic with curvature B between W and X
            slack = fW + float((A * (X - self.W)).sum() + 0.5 * (d * self._on_y(d)).sum()) - fX
            exact = slack <= MM_EXACT * abs(fX)
            self.step = float((X - self.W).norm()) / max(float(X.norm()), 1e-300)
            self.iterations += 1
            if float(((self.yW - yX) * (yX - self.yZ)).sum()) > 0 or \
                    objective > self.objective:                  # restart the momentum
                self.t, mom = 1.0, 0.0
                self.restarts += 1
            else:
                tn = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * self.t * self.t))
                mom, self.t = (self.t - 1.0) / tn, tn
            decrease = self.objective - objective
            self.W, self.yW = X + mom * (X - self.Z), yX + mom * (yX - self.yZ)
            self.Z, self.yZ, self.objective = X, yX, objective
            if self.step <= tol and self.tol_inner <= MM_INNER_TOL[0] * 100:
                done = True
                break
            solved, self.tol_inner = self.tol_inner, min(MM_INNER_TOL[1], max(
                MM_INNER_TOL[0], MM_FORCING * self.step))
            if exact:       # the next step's program is this one's: solve it tighter
                self.tol_inner = min(self.tol_inner, max(MM_INNER_TOL[0], solved * MM_TIGHTEN))
            self.exact += exact
            if 0 <= decrease <= MM_CERTIFY_DECREASE * abs(objective) or \
                    (exact and solved <= MM_CERTIFY_TOL):
                break       # likely certifiable: back to fit for a certificate
        self.seconds += time.perf_counter() - start
        return done

    def dual_direction(self):
        """The last step's model gradient at its ADMM's smooth iterate z (lifted.py):
        g + (L(z) - L(W)) B, g = grad F(L(W)). At the step's optimum its L^* has D-dual
        norms <= beta (the ADMM's multiplier), so it is a near-feasible dual direction
        even where Z is accurate only to the inner tolerance (as pnewton.py's)."""
        if self.admm is None or self.admm.iterations == 0:
            return None
        _, g = self.op._losses(self.yW0, True)
        return g + self._on_y(self.op.forward(self.admm.dual_hint()) - self.yW0)

    def _on_y(self, d):
        """d B on each sample's free outputs (Y's last axis where B is not a multiple of I)."""
        c = self.B.shape[0]
        return (d.reshape(-1, c) @ self.B).reshape(d.shape) if c == d.shape[-1] \
            else self.lf * d

    def _admm(self, last, rho):
        """lifted.LiftedADMM on the step's program, its z-step through the metric; from
        the last ADMM's iterate and multiplier (rescaled to rho) and b if given."""
        admm = LiftedADMM(self.model, self.beta, rho=rho, norm=self.norm)
        admm._inverse = lambda: self._inverse(admm)
        if last is not None:
            admm.x, admm.u, admm.b = last.x, last.u * (last.rho / rho), last.b
        return admm

    def _inverse(self, admm):
        inverse, admm.rho = self.metric.inverse(admm.rho)
        admm.low = False      # lifted.py's low-rank z-step is G_F's, not the metric's
        return inverse

    def info(self) -> dict:
        return {"method": "lifted majorization", "iterations": self.iterations,
                "seconds": self.seconds, "inner_iterations": self.inner,
                "restarts": self.restarts, "exact_steps": self.exact, "relative_step": self.step,
                "smoothness": self.lf, "objective": self.objective,
                "rho": None if self.op is None else self.admm.rho}
