"""A warm start for ReLU layers with a scalar output: the cone-constrained convex program
solved by a primal-dual interior-point method, then factored.

For q = 1 and C = l2 the convex program is Pilanci & Ergen 2020's (5), cones written out,
in x = (u_k, w_k) [P, 2, p] (u the units with a positive output weight, w the negative):
    min F(sum_k L_k(u_k - w_k)) + beta sum_k (||u_k|| + ||w_k||)
    s.t. S_k u_k >= 0, S_k w_k >= 0   (S_k = (2 D_k - 1) M, the cones (19): 2 |a| P rows)
for every loss whose registry entry is `quadratic` or declares its diagonal Hessian
(smoothloss.py: squared, logistic, Huber; not cross_entropy, which has no scalar form).
Each norm is smoothed to sqrt(|x|^2 + eps^2) - eps, which is below |x| by at most eps:
the program is then smooth with linear constraints, and Mehrotra's predictor-corrector
applies (Nocedal & Wright, Numerical Optimization, sec. 16.6, 19.3). eps follows the
complementarity down (continuation: a fixed small eps made Newton oscillate around the
zero units of a CNN test case) to a floor where all 2 P smoothings together move the
objective by <= EPS_REL F(0). The iterates stay feasible (S_k x = s exactly, the
constraints being linear). The Newton model is only local (F unless quadratic, and the
smoothed norms: undamped, the squared loss's steps oscillated on a CNN test case once the
Newton system was solved accurately): the primal step is damped by backtracking on the
barrier merit F + beta sum ||.||_eps - mu sum log s (Armijo), along a direction that
descends on it.

The Newton system is A^T H A + B (conesystem.py), H the loss's Hessian in the prediction.

Accuracy: the run ends when s'z <= 1e-9 |f| and the dual residual has stopped shrinking
(near the end B's condition number reaches ~1e17 and the solves lose digits); the
factorizations' ridge is relative to B's data and norm parts, not its barrier part
(conesystem.py). Against CVXPY at tight tolerances on 72 small problems (n = 30, d = 2,
P = 40; squared, logistic and Huber losses; beta 1e-2 and 1e-3) it ended within 5.4e-8
(relative) of p* in all 71 that Clarabel solved (bench/bench_interior_accuracy.py).

Why: with 2 n P cone rows this program is hard for first-order methods (on the ReLU
benchmark, n = 600, P = 200: an augmented Lagrangian with FISTA and the BM L-BFGS both
stayed > 1e-1 above p* after 24 s), and Clarabel took 216-237 s on it; this method took
66-73 iterations of 0.12-0.15 s each to 1e-9 of p* (docs/performance.md).
"""
import math
import time

import torch

from .coneops import ConeOperators
from .conesystem import newton_solver
from .damping import damped_step
from .forms import euclidean
from .newton import balance_signed
from .rowsums import RowSums
from .smoothloss import loss_model, refusal
from .threads import on_one_thread

EPS_REL = 1e-9       # all smoothings together move the objective by <= EPS_REL F(0)
KAPPA = 0.1          # until then, by <= KAPPA times the complementarity s'z (continuation)
STALL = 3            # iterations without progress of the dual residual that end a run
MAX_ELEMENTS = 60_000_000   # entries of L [|y|, P p], of [P, 2, |a|] and of [|a|, p^2]
MAX_SYSTEM = 8192    # the smaller side of the Newton system (|y| or 2 P p)


def _step_to_boundary(v, dv):
    """Largest a with v + a dv >= 0 (inf if none binds; rows left out have dv = 0)."""
    return float(torch.where(dv < 0, -v / dv, math.inf).min())


class ConeInteriorPoint(ConeOperators):
    """min over (u_k, w_k) in the cones, resumable: `run(iters)` continues."""
    name, title = "interior", "the cone interior point"
    NEEDS = {"cone": True}   # ReLU cones only (what the emitter may leave out)
    FIRST_CHUNK = 20     # iterations before fit's first certificate (then doubling): 10
    # certified nothing in any measured run (16-66 iterations to converge) and cost one
    # certificate (1.3 s of 12 on the diabetes benchmark)
    MAX_ITER = 200
    POLISH = False       # converged, its factors are a BM optimum: no BM step needed

    @staticmethod
    def accepts(problem, m):
        """None where it applies: a scalar output with ReLU cones, a loss of smoothloss.py
        (its entry quadratic or with a diagonal Hessian), C = l2 and R of scale 1 (on the
        scalar output weight every norm is |v|), float64, two units per pattern (one per
        sign), the patterns' gates (the start), and the sizes below; else why not."""
        why = [text for needed, text in (
            (problem.cone, "ReLU cones"), (problem.q == 1, "a scalar output"),
            (euclidean(problem.norms["C"]), "C = l2"),
            (float(problem.norms["R"]["scale"]) == 1.0, "R of scale 1"), (m >= 2, "m >= 2"),
            (problem.Y.dtype == torch.float64, "float64"),
            (problem.gates is not None, "the patterns' gates")) if not needed]
        loss = refusal(problem.spec)
        why += [loss] if loss else []
        if why:
            return "it needs " + ", ".join(why)
        ny, rows = problem.Y.numel(), math.prod(problem.a_shape)
        P, p = problem.P, problem.p
        # a shard's problem solves the dense system (Woodbury's is over all samples)
        system = 2 * P * p if problem.sharded else min(problem.outputs, 2 * P * p)
        if max(ny * P * p, 2 * P * rows, rows * p * p) > MAX_ELEMENTS or system > MAX_SYSTEM:
            return (f"its operators exceed {MAX_ELEMENTS} entries or its Newton system "
                    f"{MAX_SYSTEM} rows")
        return None

    @classmethod
    def of(cls, problem):
        """The solver, or None where a gate is not strictly inside its cone (a start on a
        cone's face has zero slack, and the barrier cannot begin there)."""
        solver = cls(problem)
        return solver if solver.interior else None

    def __init__(self, problem, dense=None):
        """dense: solve the Newton system densely through Q = L^T L (True) or by Woodbury
        through |y| x |y| (False); None picks the smaller system."""
        P, p = problem.P, problem.p
        self._setup(problem, P, p, dense)

    @on_one_thread
    def _setup(self, problem, P, p, dense):
        # counts and maxima over shards (exact); sums over samples go through self.rs in
        # a fixed order (rowsums.py: the same bits with any number of processes), on the
        # rows of |y| and |a| padded per block (a padding row: zero in L and M)
        self.sum, self.max = problem.reduce_sum, problem.reduce_max
        self.rs = rs = RowSums(problem)
        ones = torch.ones((P, 1) + problem.w2_shape, dtype=problem.Y.dtype,
                          device=problem.Y.device)
        L = rs.pad(problem.jac_u(ones).reshape(-1, P * p).T, "y")    # [P p, |y|]: L_k(e_a)
        Wy, Wa = rs.width("y"), rs.width("a")
        self.L = L.T.contiguous()                                    # [|y|, P p]
        self.Lp = self.L.view(rs.nb, Wy, P * p)                      # its blocks
        del L
        self.y = rs.pad(problem.Y.reshape(-1), "y")
        # S_k = diag(2 D_k - 1) M with M [|a|, p] shared by all patterns: S_k x = sign_k *
        # (M x) and S_k^T diag(w) S_k = M^T diag(w) M, so no [P, |a|, p] tensor is needed
        self.M = rs.pad(problem.layer_basis().reshape(p, -1), "a").T.contiguous()
        self.Mp = self.M.view(rs.nb, Wa, p)
        self.MpT = self.Mp.transpose(1, 2).contiguous()              # [blocks, p, W]
        self.MMp = (self.M[:, :, None] * self.M[:, None, :]).reshape(rs.nb, Wa, p * p)
        self.sign = rs.pad((2 * problem.D - 1).reshape(P, -1), "a").reshape(P, 1, -1)
        # a zero row of M (e.g. padding) binds nothing: left out of the barrier
        self.rows = (self.M.norm(dim=1) > 0)[None, None, :].expand(P, 2, -1)
        self.nrows = int(self.sum(self.rows.sum()))
        self.P, self.p, self.beta = P, p, float(problem.beta)
        self.spec = problem.spec
        self.loss = loss_model(problem, rs, self.y)                  # smoothloss.py
        f0 = self.loss.zero_value()                                  # F(0)
        self.eps = max(EPS_REL * f0 / (self.beta * 2 * P), 1e-300)
        self.dense = (problem.sharded or problem.outputs > 2 * P * p) if dense is None \
            else bool(dense)
        # the squared loss's constant L^T L; other losses rebuild L^T H L (conesystem.py)
        self.Q = self.gram() if self.dense and self.loss.quadratic else None
        # L_k [P, |y|, p] contiguous, for the batched products of the Woodbury matrix
        self.Lk = None if self.dense else self.L.reshape(-1, P, p).transpose(0, 1).contiguous()
        self.block_scale = rs.total((self.Lp ** 2).reshape(rs.nb, Wy, P, p).sum(3).sum(1))[:, None] / p
        # start: every unit along its pattern's gate (strictly inside its cone), at the
        # scale |Y| / sqrt(2 P); multipliers z = mu0 / s (measured on the benchmark: 49-55
        # iterations for scales 1-10 against 88 for 1e-2)
        h = problem.gates.reshape(P, 1, p) / problem.gates.reshape(P, 1, p).norm(dim=2,
                                                                              keepdim=True)
        ynorm = math.sqrt(2 * f0)         # |Y| of all shards for the squared loss
        self.x = h.expand(P, 2, p) * (ynorm / math.sqrt(2 * P))
        self.s = self.slack(self.x)
        # no row at all (an all-zero layer, e.g. all-zero inputs): nothing for a barrier to
        # do, and no start -- `of` declines, and the BM method trains alone
        self.interior = self.nrows > 0 and int(self.sum((~(self.s[self.rows] > 0)).sum())) == 0
        mu0 = 1e3 * f0 / max(self.nrows, 1)
        self.z = torch.where(self.rows, mu0 / self.s, torch.zeros_like(self.s))
        self.s = torch.where(self.rows, self.s, torch.ones_like(self.s))
        self.iterations, self.seconds = 0, 0.0
        self.mu = self.residual = self.step = self.smoothing = self.best = float("inf")
        self.calm = 0        # iterations since |rd| |x| last halved

    # -- the iterations --------------------------------------------------------------------------
    @on_one_thread
    def run(self, iters, tol=1e-9) -> bool:
        """Up to `iters` more Mehrotra iterations; True once both the complementarity s'z
        and the dual residual times the iterate, |rd| |x| (its first-order effect on the
        objective), are below tol |f| -- or once s'z is and |rd| has stopped shrinking
        for STALL iterations (rounding). (A residual tolerance relative to the gradient
        alone stopped 8e-6 above p* on a P = 26 test problem with |x| ~ 18.)
        On one thread: the same rounding as any other number of processes."""
        start = time.perf_counter()
        x, s, z, rows = self.x, self.s, self.z, self.rows
        done = False
        for _ in range(int(iters)):
            self.mu = self.rs.sum(s * z, "a") / self.nrows   # rows left out: z = 0
            self.smoothing = max(self.eps, KAPPA * self.mu * self.nrows
                                 / (self.beta * 2 * self.P))
            yhat = self.predict(x)
            g, rho = self._gradient(x, self.loss.gradient(yhat))
            rp = torch.where(rows, self.slack(x) - s, torch.zeros_like(s))   # C x - s
            rd = g - self.slack_adjoint(z)
            self.residual = float(rd.norm()) * float(x.norm())
            f = max(abs(self.objective(x, yhat)), 1e-300)
            if self.residual < 0.5 * self.best:
                self.best, self.calm = self.residual, 0
            else:
                self.calm += 1
            if self.mu * self.nrows <= tol * f and (self.residual <= tol * f
                                                    or self.calm >= STALL):
                done = True
                break
            solve = newton_solver(self, x, rho, s, z, self.loss.hessian(yhat))
            # predictor (affine scaling): the complementarity target 0
            d, ds, dz = self._direction(solve, rd, rp, s, z, s * z)
            ap = min(1.0, self._boundary(s, ds))
            ad = min(1.0, self._boundary(z, dz))
            mu_aff = self.rs.sum((s + ap * ds) * (z + ad * dz), "a") / self.nrows
            target = (mu_aff / self.mu) ** 3 * self.mu
            # corrector: centering sigma mu and the second-order term ds dz
            d, ds, dz = self._direction(solve, rd, rp, s, z, s * z + ds * dz - target)
            ap = min(1.0, 0.99 * self._boundary(s, ds))
            # the Newton model of F and of the smoothed norms is local: a damped step
            d, ds, dz, ap = damped_step(self, solve, (d, ds, dz), ap, x, s, z, g, rd, rp, target)
            ad = min(1.0, 0.99 * self._boundary(z, dz))
            self.step = min(ap, ad)
            if not (self.step >= 1e-10 and bool(torch.isfinite(d).all())):
                done = True            # stalled by rounding: the iterate is as good as it gets
                break
            x, s, z = x + ap * d, s + ap * ds, z + ad * dz
            self.iterations += 1
        self.x, self.s, self.z = x, s, z
        self.seconds += time.perf_counter() - start
        return done

    def _boundary(self, v, dv):
        """_step_to_boundary over all shards' rows."""
        return -float(self.max(torch.tensor(-_step_to_boundary(v, dv), dtype=torch.float64)))

    def _direction(self, solve, rd, rp, s, z, rc):
        """Newton step for rd = 0, C x - s = 0, s z = target (rc = s z - target + ...)."""
        rows = self.rows
        q = torch.where(rows, (rc + z * rp) / s, torch.zeros_like(s))
        d = solve(-rd - self.slack_adjoint(q))
        ds = torch.where(rows, self.slack(d) + rp, torch.zeros_like(s))
        dz = torch.where(rows, (-rc - z * ds) / s, torch.zeros_like(s))
        return d, ds, dz

    # -- the result -----------------------------------------------------------------------------
    def dual_hint(self):
        """None: the BM point's own residual is this method's dual direction already."""
        return None

    def factors(self, m):
        """BM factors [P, m, *w1], [P, m, *w2] per Pilanci & Ergen 2020, Theorem 1 (6a)/(6b): unit 0
        u_k / sqrt|u_k| with weight +sqrt|u_k|, unit 1 w_k / sqrt|w_k| with -sqrt|w_k|; the
        other m - 2 units are zero. Each unit stays in its cone (a positive multiple)."""
        signs = torch.tensor([1.0, -1.0], dtype=self.x.dtype, device=self.x.device)
        u, v, _ = balance_signed(self.x, signs.expand(self.P, 2), tol=0.0)   # newton.py
        U = torch.zeros(self.P, m, self.p, dtype=self.x.dtype, device=self.x.device)
        V = torch.zeros(self.P, m, dtype=self.x.dtype, device=self.x.device)
        U[:, :2], V[:, :2] = u, v
        return U, V

    def info(self) -> dict:
        return {"method": "interior point", "iterations": self.iterations,
                "seconds": self.seconds, "complementarity": self.mu * self.nrows,
                "dual_residual": self.residual, "smoothing": self.eps}
