"""A warm start for every loss with a prox: the lifted program (16) split at its prediction
and solved by ADMM, then factored.

    min_Z  F(L(Z)) + beta sum_k ||Z_k||_D          (Sahiner et al. 2024, eq. (16))
  = min    F(u) + beta sum_k ||W_k||_D   s.t.  u = L(Z),  W = Z

(graph-form ADMM; Boyd et al. 2011, sec. 3 and 4.4). With scaled multipliers a [*y], b
[P, p, q], a penalty rho and a weight eta on the second constraint, one iteration is
  Z = (L^* L + eta I)^{-1} (L^*(u - a) + eta (W - b))     the Gram of the operator, loss-free
  u = prox_{F / rho}(L(Z) + a)                            the loss's prox, per sample
  W = prox_{beta / (rho eta) ||.||_D}(Z + b)              the D-norm's prox (dprox.py)
  a += L(Z) - u,  b += Z - W                              (over-relaxed, alpha = 1.6)
L^* L + eta I does not depend on rho or on the loss: it is built and inverted once, so rho
adapts freely (residual balancing, Boyd et al. 2011, sec. 3.4.1). Where the c outputs are
free (gram.free_outputs) L^* L = I_c (x) G_F: only (G_F + eta I)^{-1} [N/c, N/c] is made
(N/c <= SECOND_ORDER_N_MAX), applied to Z's block [N/c, c] (all c outputs in one product), and
L(Z), L^*(g) go through F's blocks (kronops.py); else (G + eta I)^{-1} [N, N], N = P p q.
Why: the lifted FISTA's rate depends on L^* L's conditioning, which is hopeless where beta
is small against the data (the gated spiral: duplicate gated columns make it singular; the
FISTA ended 1e-5 to 3e-4 above p* in 30 s with cross_entropy, logistic, huber); the
Z-step here is an exact solve whatever the conditioning, as the squared loss's ADMM
(lifted.py) has it through its Gram path. ReLU cones are not split here (interior.py).
Distributed: L^* L is gram.py's (the same bits on every sharding), L^*(u), L^*(a) and the
residuals' sums over samples are reduced in liftedops.py's fixed order; u, its prox and a
are per sample and stay on their rank.
"""
import math
import time

import torch

from .freeoutputs import Outputs
from .gram import SECOND_ORDER_N_MAX
from .kronops import KronL, kron_form
from .liftedops import _Dense, _Predictive, dense_fits
from .proxgrad import LiftedStart, lifted_refusals
from .threads import on_one_thread

ETA_G = 1e-3         # eta = ETA_G * mean diag(L^* L) (see LiftedProxADMM)
RHO_START = 1.0      # the losses' curvature is of order one (squared 1, logistic 1/4)
ADAPT_FIRST = 10     # rho may change at iterations 10, 20, 40, 80, ... (see run)
BALANCE = 10.0       # rho changes once one relative residual is this many times the other
RHO_STEP = 2.0       # ... by this factor
RHO_MIN = 1e-3       # and stays >= this (the loss prox's t = 1/rho <= 1e3; see run)
ETA_FLOOR = 1e-13    # eta >= ETA_FLOOR max diag G: below it, eta I is lost in G's rounding


def regularized_inverse(G, eta, who="lifted prox ADMM", factor=False):
    """(G + eta I)^{-1} (with factor: its Cholesky factor C, C C^T = G + eta I, as the
    majorization solves with it) and the eta used: eta grows tenfold (at most 40 times) while
    rounding makes G + eta I indefinite (G = L^* L is only semidefinite). An explicit
    inverse: one matrix-vector product per iteration (faster than a triangular solve with
    one right-hand side, lifted.py measured it). `who` names the solver in errors."""
    if not bool(torch.isfinite(G).all()):
        raise FloatingPointError(f"{who}: L^* L is not finite: products of the "
                                 "data overflow float64 (rescale the inputs)")
    scale = float(G.diagonal().abs().max()) if G.numel() else 0.0
    eta = max(eta, ETA_FLOOR * scale, 1e-300)
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    for _ in range(40):
        chol, info = torch.linalg.cholesky_ex(G + eta * eye)
        if not int(info):
            return (chol if factor else torch.cholesky_inverse(chol).T), eta  # rows: lifted.py
        eta *= 10.0
    raise FloatingPointError(f"{who}: L^* L + eta I is not positive definite even "
                             f"at eta = {eta:.3g} (rescale the inputs)")


class LiftedProxADMM(LiftedStart):
    """min F(u) + beta sum_k ||W_k||_D s.t. u = L(Z), W = Z; resumable: `run(iters)`."""
    name = "proxadmm"
    title = "the lifted prox ADMM"
    FIRST_CHUNK = 100    # iterations before fit's first certificate (then doubling)
    MAX_ITER = 20000
    NEEDS = {"cone": False}   # never with ReLU cones (what the emitter may leave out)

    @staticmethod
    def accepts(problem, m):
        """None where it applies, else why not: a loss whose entry declares a prox
        (problem.loss_prox), a pair with a prox (spec["prox"]), no cones, float64, N / c
        <= SECOND_ORDER_N_MAX (G_F is dense; c = 1 unless kronops.kron_form) and N = P p q at most
        |y| (where L is wide, the lifted FISTA was faster, both through F's blocks: on the
        tiny attention model with cross_entropy, (l2, l1), 0.6 s against 25 s; on the
        n = 2000 CNN with cross_entropy, (l2, l2), certified in 40 s against a gap bound of
        1.7 after 65 s; bench_block.py, docs/performance.md), no output bias (F_b has no
        prox)."""
        N = problem.P * problem.p * problem.q
        c = problem.free_outputs if kron_form(problem) else 1
        why = lifted_refusals(
            problem, (getattr(problem, "loss_prox", None) is None, "a loss without a prox"),
            (N // c > SECOND_ORDER_N_MAX, f"P p q / c > {SECOND_ORDER_N_MAX} (c = {c}; gram.py)"),
            (problem.outputs < N, "fewer outputs |y| than lifted variables P p q"))
        return "it does not take " + ", ".join(why) if why else None

    def __init__(self, problem):
        self._lift(problem)
        self.op = None       # made in the first run(), so fit's clock includes it
        self.rho, self.eta = RHO_START, None
        self.iterations, self.seconds, self.changes = 0, 0.0, 0
        self.primal, self.dual = math.inf, math.inf

    def _start(self):
        pb = self.problem
        if kron_form(pb):
            self.op = KronL(pb)
            self.layout = self.op.layout
        else:
            self.op = _Dense(pb) if dense_fits(pb) else _Predictive(pb)
            self.layout = Outputs(None, pb.P, pb.p, pb.w2_shape)      # c = 1: G whole
        G = self.op.gram()          # summed in a fixed order: the same bits on any sharding
        eta = ETA_G * float(G.diagonal().mean()) if G.numel() else 1.0
        self.K, self.eta = regularized_inverse(G, eta)
        Y = pb.Y
        self.Z = torch.zeros(self.shape, dtype=Y.dtype, device=Y.device)
        self.W, self.b = self.Z.clone(), self.Z.clone()
        self.u = torch.zeros_like(Y)
        self.a = torch.zeros_like(Y)

    @on_one_thread
    def run(self, iters, tol=1e-9, alpha=1.6) -> bool:
        """Up to `iters` more iterations; True once both relative residuals are <= tol
        (primal: |(L(Z) - u, sqrt(eta) (Z - W))| against the larger side; dual:
        rho |L^*(du) + eta dW| against |rho (L^* a + eta b)|, the multiplier's size)."""
        start = time.perf_counter()
        if self.op is None:
            self._start()
        op, prox, Y = self.op, self.problem.loss_prox, self.problem.Y
        eta, beta = self.eta, self.beta
        Z, W, u, a, b = self.Z, self.W, self.u, self.a, self.b
        (Lu, La), _ = op.sums([u, a], [])
        done = False
        for _ in range(int(iters)):
            rhs = Lu - La + eta * (W - b)
            Z = self.layout.unblock(self.K @ self.layout.block(rhs), self.shape)
            LZ = op.forward(Z)
            if not bool(torch.isfinite(LZ).all()):
                raise FloatingPointError(
                    f"lifted prox ADMM: the iterate is not finite after {self.iterations} "
                    f"iterations (rho = {self.rho:.3g}): the data's scale overflows float64")
            LZr, Zr = alpha * LZ + (1 - alpha) * u, alpha * Z + (1 - alpha) * W
            Lu_old, W_old = Lu, W
            u = prox(LZr + a, Y, 1.0 / self.rho, u)
            W = self.norm.prox(Zr + b, beta / (self.rho * eta))
            a = a + LZr - u
            b = b + Zr - W
            # the sums over samples, in one reduction: L^*(u), L^*(a), |L(Z) - u|^2, |L(Z)|^2, |u|^2
            (Lu, La), (ru, lz, uu) = op.sums([u, a], [LZ - u, LZ, u])
            self.iterations += 1
            r = math.sqrt(ru + eta * float(((Z - W) ** 2).sum()))
            side = max(math.sqrt(lz + eta * float((Z ** 2).sum())),
                       math.sqrt(uu + eta * float((W ** 2).sum())), 1e-300)
            s = float((Lu - Lu_old + eta * (W - W_old)).norm())
            # the two parts of A^* y = rho (L^* a + eta b), which cancel at the optimum
            dual = max(float(La.norm()), eta * float(b.norm()), 1e-300)
            self.primal, self.dual = r / side, s / dual
            if self.primal <= tol and self.dual <= tol:
                done = True
                break
            k, rest = divmod(self.iterations, ADAPT_FIRST)
            if rest == 0 and k & (k - 1) == 0:
                # residual balancing at doubling intervals: finitely many changes in any
                # run, so ADMM's convergence (for a fixed rho) holds after the last one;
                # measured: every 10 iterations, rho oscillated (58 changes) on a tiny
                # attention model with cross_entropy and ended 8e-5 above p*. The scaled
                # multipliers follow rho (y = rho a fixed)
                if self.primal > BALANCE * self.dual:
                    self.rho *= RHO_STEP
                    a, b, La = a / RHO_STEP, b / RHO_STEP, La / RHO_STEP
                    self.changes += 1
                elif self.dual > BALANCE * self.primal and self.rho / RHO_STEP >= RHO_MIN:
                    self.rho /= RHO_STEP
                    a, b, La = a * RHO_STEP, b * RHO_STEP, La * RHO_STEP
                    self.changes += 1
        self.Z, self.W, self.u, self.a, self.b = Z, W, u, a, b
        self.seconds += time.perf_counter() - start
        return done

    def solution(self):
        """W [P, p, q]: the prox iterate (exactly sparse or low rank where it should be)."""
        return self.W

    def dual_direction(self):
        """rho a [*y]: exactly grad F(u) at the prox point u (the prox's optimality
        condition), ADMM's dual estimate; at the fixed point L^*(rho a) = -rho eta b,
        whose blocks have D-dual norm <= beta."""
        return self.rho * self.a

    def info(self) -> dict:
        return {"method": "lifted prox ADMM", "iterations": self.iterations,
                "seconds": self.seconds, "rho": self.rho, "eta": self.eta,
                "rho_changes": self.changes, "primal_residual": self.primal,
                "dual_residual": self.dual}
