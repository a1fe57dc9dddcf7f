"""The optimality certificate of trained factors (Sahiner et al. 2024, eq. (20)).

`bmdsl.certificates.certify` when it is importable; otherwise a small fallback with the
two bounds that need no solver: the Fenchel gap at the scaled dual point
v = t grad F(Yhat), |t| <= beta / max_k ||G_k||_D* (valid at every point), and Theorem
3.4's max_k (||G_k||_D*/beta - 1)_+ (valid at stationary points). ||G_k||_D* comes from
bmdsl.derive.dnorm.dual_norm; with ReLU cones the cone is dropped, an upper bound (still valid).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FallbackCertificate:
    objective: float
    dual_value: float
    gap_bound: float
    thm34_bound: float
    thm34_applicable: bool
    stationarity: float

    def text(self) -> str:
        return (f"objective {self.objective:.10g}, dual value {self.dual_value:.10g}: "
                f"(p - p*)/p* <= {self.gap_bound:.3e} (Fenchel gap, any point); "
                f"Theorem 3.4 bound {self.thm34_bound:.3e} "
                f"({'applicable' if self.thm34_applicable else 'not applicable'}: "
                f"stationarity residual {self.stationarity:.2e})")

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()}


def certify(bound, U, V, *, refine_iters: int = 1000, gram=None, hints=(), samples=None,
            directions=(), target=None):
    """Certificate of numpy factors U [P, m, *w1], V [P, m, *w2]; `gram` (runtime/gram.py)
    makes the dual-point refinement independent of the number of samples; `hints` are
    lifted points tried as dual directions, `directions` loss gradients tried as they are
    (certificates.search); `samples` evaluates the
    sums over samples (certificates.samples; a shard's, all-reduced: trainer/sharded.py);
    `target` (the fit's gap goal): no refinement once the unrefined bound meets it."""
    try:
        from ..certificates import certify as full
    except ImportError:
        return fallback(bound, U, V)
    quadratic = None if gram is None else gram.numpy()
    return full(bound, U, V, refine_iters=refine_iters, quadratic=quadratic, hints=hints,
                samples=samples, directions=directions, target=target)


def fallback(bound, U, V, stationarity_tol: float = 1e-3) -> FallbackCertificate:
    from ..derive.dnorm import NormPair, dual_norm
    from ..atoms.norms import get_norm
    from ..atoms.losses import best_dual_scale
    yhat = bound.predict_bm(U, V)
    g = bound.loss.grad(yhat, bound.Y)
    G = bound.adjoint(g)
    # the pair's entry decides: its closed form if tractable, else the cheap upper bound
    # (a fallback must not spend an enumeration or an SDP)
    how = "auto" if NormPair(bound.C, bound.R).tractable else "bound"
    top = max(dual_norm(Gk, bound.C, bound.R, method=how).value for Gk in G)
    p = bound.objective_bm(U, V)
    t = best_dual_scale(bound.loss, g, bound.Y, bound.beta / top if top > 0 else np.inf)
    d = -bound.loss.conjugate(t * g, bound.Y)
    # stationarity: relative size of the BM gradient G_k v + beta u, G_k^T u + beta v
    u, v = U.reshape(bound.P, U.shape[1], -1), V.reshape(bound.P, V.shape[1], -1)
    smooth = lambda name: get_norm(name).smooth_square   # noqa: E731
    gu = np.einsum("kab,kjb->kja", G, v) + bound.beta * u if smooth(bound.C) else None
    gv = np.einsum("kab,kja->kjb", G, u) + bound.beta * v if smooth(bound.R) else None
    res = (np.sqrt(np.sum(gu ** 2) + np.sum(gv ** 2)) / max(p, 1e-300)
           if gu is not None and gv is not None else math.inf)
    gap = (p - d) / d if d > 0 else (0.0 if p == d else math.inf)   # p = d: p is p*
    return FallbackCertificate(p, d, gap,
                               max(0.0, top / bound.beta - 1.0), res <= stationarity_tol, res)
