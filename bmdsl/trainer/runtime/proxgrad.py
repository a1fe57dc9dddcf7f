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
L^*(grad F), one prox. The prediction is a product with L's dense matrix [|y|, P p q] where it has
at most DENSE_MAX entries, else uses the activations of the basis of w1 per pattern,
D_k * A(e_a) [P, p, *a], made once (footprint.lifted_fista); with the squared loss's Gram
matrix (gram.py) everything stays in the lifted space instead.

The loss comes from `problem.value_grad(yhat, need_grad) -> (F, grad F or None)` when set
(bmdsl's trainer: the loss registry's value and gradient), else from autograd of the
runtime's torch loss. The solution Z is factored into BM units by the pair's
factorization (dprox.py); when m units per pattern cannot hold it (more non-zero groups
or singular values than m), the BM method polishes the truncated factors.

Why: before it, everything but the squared loss with C = R = l2 started BM from random
factors (Newton, L-BFGS), which stalled above p* (spiral, C = l2, R = l1: 4.6e-3 above
p*) or took minutes (cross_entropy); docs/performance.md has the measurements.
"""
import math
import time

import torch

from ...kernel.einsum import run_terms
from .offset import has_output_bias

from .dprox import DNorm

DENSE_MAX = 4_000_000  # entries of L's matrix [|y|, P p q] kept dense at most (32 MB)
SHRINK = 0.9          # the Lipschitz estimate tried first at each iteration, times lip
POWER_ITERS = 15      # power iterations for the first Lipschitz estimate (||L||^2)
BACKTRACK = 60        # doublings of the estimate at most per iteration


class _Predictive:
    """The smooth part through predictions: Z -> L(Z) [*y], F and grad F on [*y], L^*."""

    def __init__(self, problem):
        P, p = problem.P, problem.p
        E = torch.eye(p, dtype=problem.Y.dtype, device=problem.Y.device)
        E = E.reshape((1, p) + problem.w1_shape).expand((P, p) + problem.w1_shape)
        self.problem = problem
        self.H = problem.activate(problem.pre_activation(E.contiguous()))   # [P, p, *a]
        self.transposed = self._transpose(problem.spec["output"])
        self.w2 = (P, p) + problem.w2_shape
        hook = getattr(problem, "value_grad", None)
        self.value_grad = hook if hook is not None else self._autograd
        self.value = (lambda y: hook(y, False)[0]) if hook is not None else \
            (lambda y: float(problem.F(y, problem.Y)))

    def forward(self, Z):
        return self.problem.output(self.H, Z.reshape(self.w2))

    def adjoint(self, g):
        """L^*(g) from the basis activations H: the output equation transposed in W2
        (linear in it), so sum_{n,r} g H P is one planned contraction of H, already
        made, instead of the layer's X and the masks D again (digits CNN: 1.0 s
        against 3.8 s per adjoint)."""
        arrays = dict(self.problem.arrays, H=self.H, R=g)
        kj = ("k_", "j_")     # the batch axes of H and W2, as problem.output names them
        G = run_terms(self.transposed, arrays, {"H": kj}, kj)
        return G.reshape(self.w2[:2] + (-1,))

    @staticmethod
    def _transpose(output):
        """Each term coef * B(H, W2) -> out as coef * B(H, R = out) -> W2's indices."""
        terms = []
        for coef, ops, out in output:
            (w2,) = [idx for name, idx in ops if name == "W2"]
            terms.append((coef, tuple((n, i) for n, i in ops if n != "W2") + (("R", out),),
                          w2))
        return tuple(terms)

    def _autograd(self, y):
        y = y.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.problem.F(y, self.problem.Y)
            (g,) = torch.autograd.grad(f, y)
        return float(f), g


class _Dense(_Predictive):
    """L as a dense matrix M [|y|, P p q] where it is small (DENSE_MAX): two matrix-vector
    products per iteration instead of einsum chains (a tiny attention problem: ~2 ms per
    iteration of interpreter overhead through the einsums)."""

    def __init__(self, problem):
        P, p, q = problem.P, problem.p, problem.q
        Y = problem.Y
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

    def value_grad(self, Z):
        return float(self.gram.loss(Z)), self.gram.gradient(Z)


def dense_fits(problem) -> bool:
    return problem.Y.numel() * problem.P * problem.p * problem.q <= DENSE_MAX


def smooth_part(problem):
    """The Gram matrix where the trainer made one (squared loss), else L's dense matrix
    where it is small, else predictions through the basis activations."""
    if problem.gram is not None:
        return _Quadratic(problem.gram)
    return _Dense(problem) if dense_fits(problem) else _Predictive(problem)


def lifted_refusals(problem, *more):
    """What no lifted first-order warm start (this FISTA, proxadmm.py) takes, then `more`
    (pairs of refused, text): ReLU cones, a pair without a prox, float32, an output bias,
    one shard of a distributed run (see the two `accepts`)."""
    return [text for refused, text in (
        (problem.cone, "ReLU cones"),
        (problem.spec.get("prox") is None, "a (C, R) pair without a prox"),
        (problem.Y.dtype != torch.float64, "float32"),
        (has_output_bias(problem.spec), "an output bias"),
        (getattr(problem, "sharded", False), "one shard of --nproc > 1")) + more if refused]


class LiftedFISTA:
    """min_Z F(L(Z)) + beta sum_k ||Z_k||_D from Z = 0, resumable: `run(iters)` continues."""
    name, title = "fista", "the lifted FISTA"
    FIRST_CHUNK = 100    # iterations before fit's first certificate (then doubling)
    MAX_ITER = 20000
    POLISH = True        # until factors() shows that m units hold the solution exactly

    @staticmethod
    def accepts(problem, m):
        """None where it applies, else why not: no cones, float64 (the certificate's 1e-6
        is below float32's rounding of the loss), and the pair's D-norm has a prox
        (spec["prox"], from dnorm.PAIR_TABLE). Not with an output bias: F_b's inner offset
        solve is exact only to its rounding floor, which the line search cannot tell from
        curvature near the optimum (measured: the Lipschitz estimate grew to 4e16 and the
        run stopped 2e-6 above p*); nor on one shard of a distributed run, whose
        value_grad holds only its own samples."""
        why = lifted_refusals(problem)
        return "it does not take " + ", ".join(why) if why else None

    @classmethod
    def of(cls, problem):
        return cls(problem)

    def __init__(self, problem):
        self.problem, self.beta = problem, float(problem.beta)
        self.norm = DNorm(problem.spec["prox"], problem.C, problem.R)
        self.shape = (problem.P, problem.p, problem.q)
        self.smooth = None   # made in the first run(), so fit's clock includes it
        self.iterations, self.seconds, self.restarts = 0, 0.0, 0
        self.lip, self.loss, self.step = None, math.inf, math.inf

    def _start(self):
        s = self.smooth = smooth_part(self.problem)
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

    def run(self, iters, tol=1e-9) -> bool:
        """Up to `iters` more iterations; True once the gradient mapping lip |Z_next - W|
        is <= tol beta. Why that measure: the prox step's optimality condition puts
        grad F(W) - lip (W - Z_next) in beta times the D-norm's subdifferential, so the
        dual points the certificate builds from the gradient violate ||G_k||_D* <= beta
        by about lip |Z_next - W|, relative to beta: what the bound loses by scaling them."""
        start = time.perf_counter()
        if self.smooth is None:
            self._start()
        s, beta = self.smooth, self.beta
        done = False
        for _ in range(int(iters)):
            fW, g = s.value_grad(self.yW)
            G = s.adjoint(g)
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

    def solution(self):
        """Z [P, p, q]: the last prox point (exactly sparse or low rank where it should be)."""
        return self.Z

    def dual_hint(self):
        """The extrapolated point W: grad F(L(W)) is one more dual direction to try."""
        return self.W

    def factors(self, m):
        """BM factors [P, m, p], [P, m, q] of Z; POLISH stays True if m units could not
        hold every non-zero group (or singular value) of the solution."""
        U, V, left = self.norm.units(self.solution(), m)
        self.POLISH = left > 0
        return U, V

    def info(self) -> dict:
        return {"method": "lifted FISTA", "iterations": self.iterations,
                "seconds": self.seconds, "lipschitz": self.lip, "restarts": self.restarts,
                "objective": self.loss + self.beta * self.norm.value(self.Z)
                if self.smooth is not None else math.inf, "gradient_mapping": self.step}
