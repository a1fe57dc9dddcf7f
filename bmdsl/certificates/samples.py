"""The certificate's sums over samples: the one place it touches the data.

Everything the certificate computes from the data is either per sample (Yhat = L(Z),
g = grad F(Yhat)) or a sum over samples: F(Yhat), the conjugate F*(v) of the Fenchel dual
(Sahiner et al. 2024, eq. (112)-(113)), G_k = L_k^*(g) of eq. (20), and the inner products
of the best point on a dual ray. `Samples` evaluates them on the samples this process
holds and passes every sum through `total` (and every "largest" through `most`); here
both are the identity. A subclass whose `local` bound holds one shard of the samples and
whose `total` / `most` all-reduce over the processes (trainer/sharded.py) makes the
certificate data-parallel: every decision it takes (the ray's scale, the refinement's
restarts and stops, the pair search) is then taken on the reduced numbers, the same on
every rank. The dual norms ||G_k||_D* need only the reduced G_k, except with ReLU cones:
their rows are per sample, and what acts on them (the cone dual norms and the KKT
multipliers through conennls.py, the cone violation) takes the rows of `local` and
reduces through `total` / `most` too (`rank` orders the processes' rows).
"""
from __future__ import annotations

import numpy as np

from ..kernel.search import brent_max


class Samples:
    """Sums over the samples of `local` (default: all of `bound`'s samples)."""
    sharded = False      # True: other processes hold the other samples
    # numpy arrays contracted by torch.einsum (core/contract.py): numpy's einsum took most
    # of a certificate at n = 2000 (docs/performance.md, "Construction and certificates")
    backend = "numpy_by_torch"
    rank = 0             # this process's place in the sample order

    def __init__(self, bound, local=None):
        self.bound = bound
        self.local = bound if local is None else local
        self.loss, self.Y = bound.loss, self.local.Y

    # -- the two reductions (identity in one process) --------------------------------------
    def total(self, x):
        """The sum of x over the processes holding the other samples."""
        return x

    def most(self, x):
        """The largest x over the processes."""
        return x

    # -- what the certificate evaluates -----------------------------------------------------
    def predict(self, Z):
        """Yhat = sum_k L_k(Z_k) on these samples (per sample: nothing to reduce)."""
        return self.local.predict_lifted(Z, backend=self.backend)

    def grad(self, yhat):
        return self.loss.grad(yhat, self.Y)

    def adjoint(self, g):
        """G_k = L_k^*(g), eq. (20): [P, p, q], a sum over samples."""
        return self.total(self.local.adjoint(g, backend=self.backend))

    def value(self, yhat) -> float:
        """F(Yhat), a sum over samples."""
        return float(self.total(float(self.loss.value(yhat, self.Y))))

    def dual_value(self, v) -> float:
        """-F*(v) (a sum over samples; +inf off the domain stays +inf in the sum)."""
        f = float(self.total(float(self.loss.conjugate(v, self.Y))))
        return -f if np.isfinite(f) else -np.inf

    def dual_scale(self, g, t_max: float) -> float:
        """argmax_{|t| <= t_max} -F*(t g): `atoms.dualray.best_dual_scale` with its sums
        and its interval reduced (the domain of t is the intersection of the samples')."""
        g = np.asarray(g, dtype=float)
        lo, hi = self.loss.scale_domain(g, np.asarray(self.Y, dtype=float))
        lo = max(float(self.most(float(lo))), -float(t_max))
        hi = min(-float(self.most(-float(hi))), float(t_max))
        if not self.most(float(np.any(g))) or hi <= lo:
            return 0.0 if lo <= 0.0 <= hi else float(lo)
        if self.loss.quadratic:
            # F = 1/2 ||Yhat - Y||^2: -F*(t g) is a concave parabola with vertex
            # -<g, Y>/||g||^2 (the squared loss's closed form, with its two sums reduced)
            gg, gy = self.total(np.array([np.sum(g * g), np.sum(g * self.Y)]))
            return 0.0 if gg == 0 else float(np.clip(-gy / gg, lo, hi))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("the dual ray is unbounded: pass a finite t_max")
        phi = lambda t: self.dual_value(t * g)  # noqa: E731
        cands = [lo, hi, brent_max(phi, lo, hi, rtol=1e-14)] + ([0.0] if lo <= 0.0 <= hi else [])
        return float(max(cands, key=phi))
