"""A warm start for the BM factors: the lifted convex program solved by ADMM, then factored.

For the squared loss the convex program (16) in Z [P, p, q] is
    min_Z 1/2 z'Gz - b'z + 1/2 ||Y||^2 + beta sum_k ||Z_k||_D
(G = L^* L, b = L^*(Y) from gram.py; ||.||_D the nuclear norm for C = R = l2, which is
the l2 norm when q = 1, or any pair with a prox in dprox.py). ADMM splits it at z = x:
the z-step is two triangular solves with the Cholesky factor of G + rho I (made once per
rho; G = I_c (x) G_F over the c free outputs, gram.py, so only G_F + rho I [N/c, N/c],
N/c <= GRAM_MAX_N, with the c outputs as columns of one right-hand side), the x-step the
D-norm's prox (singular-value soft thresholding per pattern for l2/l2, group soft
thresholding of rows or columns), so one iteration costs O(N^2)
and does not touch the samples. Why: the BM objective is badly conditioned where beta is
small against the data's scale (spiral, n = 2000, beta = 1e-3: G is singular, spectrum
0 to 2.6e3, and the BM Hessian has curvature -0.43 at 1e-3 of p*), and Newton on the
factors then converges only linearly (~50 steps per halving of the gap, measured;
docs/trainer.md). ADMM is not bothered by G's conditioning (its z-step is exact), and
the factors of its x are balanced (U_k = A sqrt(S), V_k = B sqrt(S)), so the BM method
starts next to a minimum and only polishes.

ReLU cones (19) are not handled here: ADMM on their lifted program (two cone variables
per pattern, a split S w = s >= 0 for the cones) was tried on the ReLU benchmark (n = 600,
P = 200) and rejected: 88 ms per iteration (N = 4000: the solves are memory bound) and,
after 1000 iterations, (p - p*)/p* = 0.2 to 10 once the factors were projected into the
cones, for every rho tried (docs/performance.md). interior.py solves that program instead.
"""
import math
import time

import torch

from .dprox import DNorm
from .gram import GRAM_MAX_N
from .threads import on_one_thread

MAX_ITER = 5000      # iterations of one warm start at most
RHO_BETA = 0.3       # the first rho = RHO_BETA * beta, then balanced (see LiftedADMM)
RHO_EVERY = 25       # iterations between two checks of the residuals' balance
RHO_BALANCE = 10.0   # rho changes once one relative residual is RHO_BALANCE times the other,
RHO_MAX_STEP = 10.0  # by the square root of their ratio, at most RHO_MAX_STEP fold,
RHO_CHANGES = 20     # at most RHO_CHANGES times (then fixed: ADMM's convergence needs it)
LOW_RANK = 0.25      # G_F's range instead of its inverse where rank(G_F) <= LOW_RANK N / c
RHO_FLOOR = 1e-15    # rho >= RHO_FLOOR max diag G: below it, rho I is lost in G's rounding
RHO_GROWTH = 40      # tenfold growths of rho at most: 1e-15 max diag G -> 1e25 of it


def shrink(Z, tau):
    """prox of tau ||.||_* per pattern: Z_k = A S B^T -> A max(S - tau, 0) B^T."""
    A, s, Bh = torch.linalg.svd(Z, full_matrices=False)
    return (A * torch.relu(s - tau)[:, None, :]) @ Bh


class LiftedADMM:
    """min 1/2 z'Gz - b'z + beta sum_k ||Z_k||_*, resumable: `run(iters)` continues.

    Over-relaxed (alpha = 1.6) scaled-form ADMM (Boyd et al. 2011, sec. 3). rho starts at
    RHO_BETA * beta and is balanced: every RHO_EVERY iterations, where the relative primal
    residual |z - x| / |x| and the dual one |x - x_prev| / |u| differ more than RHO_BALANCE
    fold, rho is multiplied by the square root of their ratio (at most RHO_MAX_STEP fold; the
    relative residual ratio of Wohlberg 2017, "ADMM penalty parameter selection by
    residual balancing", scale invariant), u rescaled by old / new rho and G + rho I
    refactored; at most RHO_CHANGES times. Why: no fixed rho fits every model (the best
    measured: 0.03 beta on the n = 150 spiral, 10 beta on the self-attention, 300 times
    more). A refactorization costs 10-30 iterations, an eigendecomposition 3-6
    refactorizations (docs/trainer.md). A given rho stays fixed (pnewton.py and
    majorize.py balance their subproblems' own)."""
    name, title = "admm", "the lifted ADMM"
    FIRST_CHUNK = 250    # iterations before fit's first certificate (then doubling)
    MAX_ITER = MAX_ITER
    POLISH = True        # the BM method polishes its factors (ADMM's accuracy is modest)

    @staticmethod
    def accepts(problem, m):
        """None where it applies: the Gram path (squared loss, gram.py), no cones, and a
        pair whose D-norm has a prox (spec["prox"], from dnorm.PAIR_TABLE: (l2, l2),
        (l1, R), (C, l1)); any m. Else why not."""
        why = [text for refused, text in (
            (problem.gram is None, f"the Gram path (the squared loss on the full batch in "
                                   f"float64, P p q / c <= {GRAM_MAX_N})"),
            (problem.spec.get("prox") is None, "a (C, R) pair with a prox"),
            (problem.cone, "no ReLU cones")) if refused]
        return "it needs " + ", ".join(why) if why else None

    @classmethod
    def of(cls, problem):
        rows = problem.blocks[0] * (problem.Y.numel() // max(problem.n, 1))  # L's, all shards
        return cls(problem.gram, problem.beta, rank=rows // problem.gram.c,
                   norm=DNorm(problem.spec["prox"], problem.C, problem.R))

    def __init__(self, gram, beta, rho=None, norm=None, rank=None):
        """norm: the D-norm (dprox.DNorm) whose prox is the x-step; default the nuclear
        norm of C = R = l2. rank: a bound on G_F's rank (|y| / c: G_F = F^T F), None if
        unknown."""
        self.norm = norm or DNorm("spectral", "l2", "l2")
        # the block layout of the free outputs (gram.Outputs): G = I_c (x) G_F, so the
        # z-step solves all c outputs with one factorization of G_F + rho I [N/c, N/c]
        self.G, self.b, self.shape, self.beta = gram.GF, gram.B, gram.shape, float(beta)
        self.layout = gram.layout
        self.rho, self.adapt = float(rho or RHO_BETA * beta), rho is None
        self.changes = 0              # rho's changes by balancing
        # made in the first run() (fit's clock has them); cholesky: inverse is the factor
        self.inverse, self.low, self.cholesky = None, None, False
        self.rank = rank
        self.x = torch.zeros_like(self.b)
        self.u = torch.zeros_like(self.x)
        self.z = self.x               # the smooth-side iterate: G z - b is a dual estimate
        self.iterations, self.seconds = 0, 0.0
        self.primal, self.dual = float("inf"), float("inf")

    @on_one_thread
    def run(self, iters, tol=1e-8, alpha=1.6) -> bool:
        """Up to `iters` more iterations; True once both residuals are below tol relative
        to the iterates (|z - x| <= tol |x| and rho |x - x_prev| <= tol rho |u|). On one
        thread: GRAM_MAX_N is sized for one core, and two threads on a loaded 2-core
        machine spin on each other (the digits CNN: 25 iterations in 11-22 s, 0.2-0.4 s
        once they ran alone)."""
        start = time.perf_counter()
        if self.low is None:
            # the Cholesky factor C of G_F + rho I (or G_F's range, _low_rank); a
            # subclass's _inverse may give an explicit inverse instead (self.cholesky False)
            self.inverse = self._inverse()
        rho, x, u, z = self.rho, self.x, self.u, self.z
        done = False
        for _ in range(int(iters)):
            r = self.b + rho * (x - u)
            if self.low:      # (G_F + rho I)^{-1} = (I - Q diag(lam / (lam + rho)) Q^T) / rho
                Q, lam = self.low
                z = (r - Q @ ((lam / (lam + rho))[:, None] * (Q.T @ r))) / rho
            elif self.cholesky:     # C^{-T} C^{-1} r: two triangular solves
                z = torch.linalg.solve_triangular(self.inverse.mH, torch.linalg.solve_triangular(
                    self.inverse, r, upper=False), upper=True)
            else:
                z = self.inverse @ r
            if not bool(torch.isfinite(z).all()):    # (the SVD of a NaN can stall)
                raise FloatingPointError(f"lifted ADMM: the iterate is not finite after "
                                         f"{self.iterations} iterations (beta = {self.beta:.3g}, "
                                         f"rho = {rho:.3g}): beta is below the rounding of the "
                                         "data's Gram matrix, or the data overflows float64")
            zr = alpha * z + (1 - alpha) * x
            x_old = x
            x = self.layout.block(self.norm.prox(self.layout.unblock(zr + u, self.shape),
                                                 self.beta / rho))
            u = u + zr - x
            self.iterations += 1
            self.primal = float((z - x).norm()) / max(float(x.norm()), 1e-300)
            self.dual = float((x - x_old).norm()) / max(float(u.norm()), 1e-300)
            if self.primal <= tol and self.dual <= tol:
                done = True
                break
            ratio = self.primal / self.dual if self.dual > 0 else 1.0   # x still: no sign
            if self.adapt and self.changes < RHO_CHANGES and self.iterations % RHO_EVERY == 0 \
                    and not 1 / RHO_BALANCE <= ratio <= RHO_BALANCE:
                self.rho *= min(max(math.sqrt(ratio), 1 / RHO_MAX_STEP), RHO_MAX_STEP)
                self.inverse, self.changes = self._inverse(), self.changes + 1
                u, rho = u * (rho / self.rho), self.rho        # the same multiplier rho u
        self.x, self.u, self.z = x, u, z
        self.seconds += time.perf_counter() - start
        return done

    def _inverse(self):
        """The Cholesky factor C of G + rho I (lower, C C^T = G + rho I), or None where
        G_F's range serves (_low_rank, tried on the first call); rho grows tenfold while
        rounding makes G + rho I indefinite (G is only positive semidefinite, and
        rho ~ beta can be below its rounding). Bounded: rho starts at least at rounding's
        scale (RHO_FLOOR times G's largest diagonal entry: beta can underflow rho to 0)
        and grows at most RHO_GROWTH times; a G or b that is not finite (data whose
        products overflow float64) is a FloatingPointError naming the cause, never an
        endless loop. The factor, not the inverse: the two triangular solves read as many
        entries as the inverse's product, and forming the inverse (cholesky_inverse) took
        2.1 times the factorization, at every change of rho (N / c = 2592,
        bench/bench_zstep.py; docs/performance.md)."""
        G = self.G
        if not (bool(torch.isfinite(G).all()) and bool(torch.isfinite(self.b).all())):
            raise FloatingPointError("lifted ADMM: G = L*L or b = L*(Y) of the squared loss is "
                                     "not finite: products of the data overflow float64 "
                                     "(rescale the inputs and the target, e.g. to unit scale)")
        scale = float(G.diagonal().abs().max()) if G.numel() else 0.0
        floor = max(RHO_FLOOR * scale, 1e-300)
        if not self.rho >= floor:          # also NaN: beta / rho must stay finite
            self.rho = floor
        if self.low is None:
            self.low = self._low_rank()
        if self.low:
            return None
        for _ in range(RHO_GROWTH):     # G + rho I without an identity [N, N]
            chol, info = torch.linalg.cholesky_ex(G.diagonal_scatter(G.diagonal() + self.rho))
            if not int(info):
                self.cholesky = True
                return chol
            self.rho *= 10.0
        raise FloatingPointError(f"lifted ADMM: G + rho I is not positive definite even at "
                                 f"rho = {self.rho:.3g} (G's largest diagonal {scale:.3g}): the "
                                 "data's Gram matrix is broken (rescale the inputs and target)")

    def _low_rank(self):
        """(Q [N, r], lam [r]) with G_F = Q diag(lam) Q^T where its rank r is at most
        LOW_RANK N (few samples: r <= |y| / c), else False. The range of a sketch G_F Omega
        (Omega [N, rank + 8] Gaussian, seed 0: Halko et al. 2011) by its SVD, checked:
        |G_F - Q Q^T G_F| <= 1e-10 |G_F| or False. An iteration then costs O(N r), not
        O(N^2), and a new rho needs no factorization (the CNN with 16 images: N / c = 2592,
        r <= 16)."""
        G, N = self.G, self.G.shape[0]
        if self.rank is None or self.rank + 8 > LOW_RANK * N:
            return False
        gen = torch.Generator(device=G.device).manual_seed(0)
        Y = G @ torch.randn(N, self.rank + 8, generator=gen, dtype=G.dtype, device=G.device)
        A, s, _ = torch.linalg.svd(Y, full_matrices=False)
        Q = A[:, :int((s > 1e-11 * float(s[0])).sum())] if float(s[0]) > 0 else A[:, :0]
        GQ = G @ Q
        if float((G - Q @ GQ.T).norm()) > 1e-10 * float(G.norm()):
            return False
        lam, W = torch.linalg.eigh(Q.T @ GQ)
        return Q @ W, lam.clamp(min=0.0)       # G_F is semidefinite: rounding below 0

    def solution(self):
        """X [P, p, q]: the prox iterate, exactly low rank per pattern."""
        return self.layout.unblock(self.x, self.shape)

    def dual_hint(self):
        """Z [P, p, q]: the smooth-side iterate z. L^*(grad F(L(z))) = G z - b tends to
        -rho u, ADMM's multiplier, whose blocks have spectral norm <= beta at the fixed
        point: a dual direction the certificate tries besides the BM point's own."""
        return self.layout.unblock(self.z, self.shape)

    def factors(self, m):
        """BM factors [P, m, p], [P, m, q] of the current iterate by the pair's
        factorization (dprox.py; balanced SVD factors for C = R = l2, as `factor`)."""
        U, V, left = self.norm.units(self.solution(), m)
        self.POLISH = True if left else type(self).POLISH
        return U, V

    def info(self) -> dict:
        return {"method": "lifted ADMM", "iterations": self.iterations,
                "seconds": self.seconds, "rho": self.rho, "rho_changes": self.changes,
                "primal_residual": self.primal, "dual_residual": self.dual}


def factor(X, m):
    """Balanced BM factors of Z_k = X_k: U_kj = sqrt(s_j) a_j, V_kj = sqrt(s_j) b_j for the
    top min(m, rank) singular pairs (the rest of the m units are zero)."""
    P, p, q = X.shape
    A, s, Bh = torch.linalg.svd(X, full_matrices=False)
    r = min(m, s.shape[1])
    root = s[:, :r].sqrt()
    U = torch.zeros(P, m, p, dtype=X.dtype, device=X.device)
    V = torch.zeros(P, m, q, dtype=X.dtype, device=X.device)
    U[:, :r] = (A[:, :, :r] * root[:, None, :]).transpose(1, 2)
    V[:, :r] = Bh[:, :r, :] * root[:, :, None]
    return U, V
