"""Optimality certificates for BM factors and convex points (Sahiner et al. 2024, Theorem 3.4,
eq. (20), and the Fenchel dual (112)-(113); docs/certificates.md).

    cert = certify(bound, U, V)        # BM factors U [P, m, *w1], V [P, m, *w2]
    cert = certify_lifted(bound, Z)    # a point Z [P, p, q] of the convex program (16)
    print(cert.text()); cert.to_dict()

Two bounds on the relative gap (p - p*)/p*, both reported: the Fenchel duality gap
(valid at every point) and Theorem 3.4's eq. (20) (valid at stationary points, reported
beside the stationarity residual).  Modules: dualnorms (per-pattern ||G_k||_D*, exact or
upper bounds), dual + search + refine + prox (feasible dual points), stationarity,
checks (Theorems 3.3, 3.5, Corollary 3.10), primal (lifted objective), scope, result,
samples (every sum over samples, the seam of data-parallel certification).
"""
from .checks import TheoremCheck
from .core import certify, certify_lifted
from .factors import stack_units
from .result import Certificate

__all__ = ["certify", "certify_lifted", "stack_units", "Certificate", "TheoremCheck"]
