"""certify(bound, U, V) and certify_lifted(bound, Z): assemble the certificate.

Both compute Yhat, g = grad F(Yhat), G_k = L_k^*(g) and the per-pattern dual norms, then
* Theorem 3.4 (eq. (20)): eps = max_k (||G_k||_D*/beta - 1)_+, valid at a stationary point;
* its any-point form: for every point, with delta = regularizer + <G, Z>,
      p - p* <= eps p* + delta      (so (p - p*)/p* <= eps + max(delta, 0) / d)
  because F(L Z*) >= F(L Z) + <G, Z* - Z>, <G_k, Z*_k> >= -||G_k||_D* ||Z*_k||_D and
  beta sum_k ||Z*_k||_D <= p* (F >= 0); at a BM stationary point delta = 0 (A.7, (57));
* the Fenchel duality gap (dual.py, search.py): d = -F*(v) <= p* at a feasible v, valid
  at every point.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import DataError
from .checks import check_theorems
from .dualnorms import DualNormOracle
from .primal import objective_lifted
from .result import Certificate, gap_warnings, relative_gap
from .samples import Samples
from .scope import scope_text
from .search import search_dual
from .stationarity import bm_residual, cone_violation

CONE_TOL = 1e-6   # relative cone violation above which the BM point is called infeasible


def _array(x, name: str, shape_tail: tuple, P: int) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} is not a numeric array") from None
    want = f"[P = {P}, m, {', '.join(map(str, shape_tail))}]"
    if a.ndim != 2 + len(shape_tail) or a.shape[0] != P or a.shape[2:] != tuple(shape_tail):
        raise DataError(f"{name} has shape {list(a.shape)}, expected {want}",
                        hint="factors are stacked by pattern and unit: U [P, m, *w1_shape], "
                             "V [P, m, *w2_shape], with the same patterns as the model")
    if not np.all(np.isfinite(a)):
        raise DataError(f"{name} contains NaN or infinite values")
    return a


def _assemble(bound, oracle, *, objective, regularizer, Z, g, G, residual, kind, tol, iters,
              point, objective_kind, lifted, theorems, violation, samples,
              quadratic=None, hints=(), directions=(), target=None) -> Certificate:
    found = search_dual(bound, oracle, g, Z, objective, iters=iters, quadratic=quadratic,
                        hints=hints, samples=samples, directions=directions, target=target,
                        G=G)
    norms = found.plain.norms                       # ||G_k||_D* at the point itself
    beta = bound.beta
    eps = float(max(0.0, norms.max / beta - 1.0))
    d = found.best.value
    delta = regularizer + float(np.sum(G * Z))
    stationary = residual <= tol
    n_upper = sum(k != "exact" for k in norms.kinds)
    methods = sorted(set(norms.methods))
    return Certificate(
        model=bound.model.name, activation=bound.activation.name, point=point, P=bound.P,
        beta=beta, objective=objective, dual_value=d, gap_bound=relative_gap(objective, d),
        dual_source=found.best.source, plain_dual_value=found.plain.value,
        plain_gap_bound=relative_gap(objective, found.plain.value),
        refine_iterations=found.iterations, refinement=found.refinement,
        thm34_bound=eps, thm34_applicable=stationary,
        thm34_any_point=eps + max(delta, 0.0) / d if d > 0 else math.inf,
        euler_residual=delta / objective if objective else 0.0,
        stationarity=residual, stationarity_kind=kind, stationarity_tol=tol,
        dual_norms=tuple(float(x) for x in norms.values), dual_norm_kinds=norms.kinds,
        dual_norm_methods=norms.methods,
        exact_or_bounded="exact" if n_upper == 0 else f"upper bound ({n_upper} of {bound.P} "
                                                        "patterns)",
        cone_method=", ".join(methods) if bound.cone else None, cone_violation=violation,
        objective_kind=objective_kind,
        theorems=theorems(stationary, residual, eps),
        scope=scope_text(bound, lifted=lifted, cone_violation=violation, tol=CONE_TOL),
        warnings=gap_warnings(objective, d))


def certify(bound, U, V, *, cone_method: str = "auto", stationarity_tol: float = 1e-3,
            refine_iters: int = 1000, quadratic=None, hints=(), samples=None,
            directions=(), target=None) -> Certificate:
    """Certificate of the BM point (U [P, m, *w1_shape], V [P, m, *w2_shape]) for the
    convex program of `bound` (eq. (14), (16), (20)).  `refine_iters` bounds the cheap
    proximal-gradient iterations used to find a better dual point (0: plain point only);
    `quadratic` = (G, b, ||Y||^2), the squared loss's sufficient statistics (the trainer's
    gram.py), makes them independent of n. The bound itself is always evaluated on the
    data, so a wrong `quadratic` could only give a worse dual point, never a wrong bound.
    `hints`: lifted points Z [P, p, q] whose grad F(L(Z)) is tried as a dual direction too
    (same guarantee: any direction gives a valid bound once scaled to feasibility);
    `directions`: loss gradients [*y] tried as they are (the same guarantee).
    `samples` (samples.py) evaluates every sum over samples: by default on the bound's
    data; a sharded one (trainer/sharded.py) on this process's shard, all-reduced.
    `target`: a relative gap bound (a fit's cert_tol) that, once met without refinement,
    makes the refinement unnecessary (search.py): the bound stays valid, only less tight."""
    samples = samples or Samples(bound)
    U = _array(U, "U", bound.w1_shape, bound.P)
    V = _array(V, "V", bound.w2_shape, bound.P)
    if U.shape[1] != V.shape[1]:
        raise DataError(f"U has {U.shape[1]} units per pattern but V has {V.shape[1]}")
    oracle = DualNormOracle(bound, cone_method, samples)
    # Yhat through Z = lift(U, V): the same sum (the prediction is bilinear in (u, v),
    # linear in u v^T), at n P p q instead of n P m (p + q) operations
    Z = bound.lift(U, V)
    yhat = samples.predict(Z)
    g = samples.grad(yhat)
    G = samples.adjoint(g)
    residual, kind = bm_residual(bound, U, V, G, samples)
    regularizer = bound.regularizer_bm(U, V)
    return _assemble(
        bound, oracle, objective=samples.value(yhat) + regularizer,
        regularizer=regularizer, Z=Z, g=g, G=G, residual=residual, samples=samples,
        kind=kind, tol=stationarity_tol, iters=refine_iters,
        point=f"BM factors U {list(U.shape)}, V {list(V.shape)}",
        objective_kind="BM objective (14): F + (beta/2) sum ||u||_C^2 + ||v||_R^2",
        lifted=False, violation=cone_violation(bound, U, V, samples), quadratic=quadratic,
        hints=tuple(np.asarray(h, dtype=np.float64).reshape(bound.P, bound.p, bound.q)
                    for h in hints),
        directions=tuple(directions), target=target,
        theorems=lambda st, r, e: check_theorems(bound, U, V, stationary=st, residual=r,
                                                 thm34_bound=e))


def certify_lifted(bound, Z, *, cone_method: str = "auto", stationarity_tol: float = 1e-3,
                   refine_iters: int = 1000) -> Certificate:
    """Certificate of a point Z [P, p, q] of the convex program (16) (e.g. from CVXPY).
    Its "stationarity" is the Euler identity -<G, Z> = beta sum_k ||Z_k||_D (A.7, (57)),
    which is all Theorem 3.4's proof uses (see core.py's docstring)."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.size != bound.P * bound.p * bound.q or not np.all(np.isfinite(Z)):
        raise DataError(f"Z must be a finite array of {bound.P} x {bound.p} x {bound.q} "
                        f"entries (P, p, q), got shape {list(Z.shape)}")
    Z = Z.reshape(bound.P, bound.p, bound.q)
    oracle = DualNormOracle(bound, cone_method)
    g = bound.loss.grad(bound.predict_lifted(Z), bound.Y)
    objective, how = objective_lifted(bound, Z)
    reg = objective - float(bound.loss.value(bound.predict_lifted(Z), bound.Y))
    G = bound.adjoint(g)
    inner = float(np.sum(G * Z))
    scale = abs(reg) + abs(inner)
    residual = abs(reg + inner) / scale if scale > 0 else 0.0
    return _assemble(
        bound, oracle, objective=objective, regularizer=reg, Z=Z, g=g, G=G, residual=residual,
        samples=Samples(bound),
        kind="Euler identity -<G, Z> = beta sum_k ||Z_k||_D (A.7, eq. (57)), relative",
        tol=stationarity_tol, iters=refine_iters, point=f"lifted Z {list(Z.shape)}",
        objective_kind=f"convex objective (16), ||Z_k||_D by {how}", lifted=True,
        violation=0.0, theorems=lambda st, r, e: ())
