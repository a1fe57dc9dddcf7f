"""Regularization paths: the certified BM solution for a log grid of beta, warm-started.

    path = regularization_path(model, data, n_betas=8)        # or betas=[...]
    print(path.table()); path.to_dict()

beta_max is the smallest beta whose solution is Z = 0: by the optimality condition of the
convex program (Sahiner et al. 2024, eq. (16); the dual constraint of (112)), Z = 0 is
optimal exactly when ||L_k^*(grad F(0))||_D* <= beta for every pattern k, so
beta_max = max_k ||L_k^*(grad F(0))||_D*. Where that dual norm is NP-hard (ReLU cones with
q > 1, some norm pairs) the oracle returns an upper bound, and so is beta_max (Z = 0 is then
still optimal at beta_max, but may already be optimal a little below it).

The grid runs from beta_max down (geometric) and each point is certified (Theorem 3.4 /
the Fenchel gap of eq. (20)). `warm`: True starts each point's BM steps from the previous
point's factors; False from the trainer's usual start; "auto" (default) from the previous
factors except where a convex warm start (lifted ADMM, cone interior point) applies --
measured on the spiral (gated ReLU, squared, l2/l2, P = 10): the lifted ADMM from zero
certified each point to 1e-6 in 0.04-0.10 s, BM steps from the previous factors in
0.25-0.47 s. The first point below beta_max always takes the usual start: Z = 0 is a
saddle of the BM objective, no start at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import BmdslError


class PathError(BmdslError, ValueError):
    """A grid that cannot be run (a ValueError too, as Python callers expect)."""


def beta_max(bound) -> tuple[float, bool]:
    """(beta_max, exact): max_k ||L_k^*(grad F(0))||_D* and whether every dual norm was
    exact (False: an upper bound)."""
    from ..certificates.dualnorms import DualNormOracle
    g = bound.loss.grad(np.zeros_like(bound.Y), bound.Y)
    norms = DualNormOracle(bound)(bound.adjoint(g))
    return norms.max, norms.exact


def beta_grid(b_max: float, n_betas: int = 8, ratio: float = 1e-3) -> np.ndarray:
    """n_betas values from b_max down to ratio * b_max, evenly spaced in log beta."""
    if not (isinstance(n_betas, (int, np.integer)) and n_betas >= 1):
        raise PathError(f"n_betas must be a whole number >= 1, not {n_betas!r}")
    if not 0 < ratio < 1:
        raise PathError(f"ratio must lie in (0, 1), not {ratio!r}")
    return np.geomspace(b_max, b_max * ratio, n_betas) if n_betas > 1 else np.array([b_max])


@dataclass
class PathPoint:
    beta: float
    objective: float
    loss: float
    active_units: int             # units j with ||u_j|| ||v_j|| above 1e-8 of the largest
    gap_bound: float              # certified relative gap (p - p*)/p* <= gap_bound
    steps: int                    # BM steps (plus the warm start's iterations, if one ran)
    seconds: float
    stopped: str
    warm: bool                    # started from the previous point's factors
    metrics: dict = field(default_factory=dict)
    U: np.ndarray = field(default=None, repr=False)
    V: np.ndarray = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("U", "V")}


@dataclass
class RegularizationPath:
    model: str
    beta_max: float
    beta_max_exact: bool
    points: list

    def table(self) -> str:
        extra = sorted({k for p in self.points for k in p.metrics})
        head = ["beta", "objective", "active units", "gap bound", "steps", "seconds", *extra]
        rows = [[f"{p.beta:.4g}", f"{p.objective:.6g}", str(p.active_units),
                 f"{p.gap_bound:.2e}", str(p.steps), f"{p.seconds:.2f}",
                 *(f"{p.metrics.get(k, float('nan')):.4f}" for k in extra)] for p in self.points]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
        kind = "" if self.beta_max_exact else " (an upper bound: some dual norms are bounds)"
        return "\n".join([f"beta_max = {self.beta_max:.6g}{kind}", fmt(head),
                          *map(fmt, rows)])

    def to_dict(self) -> dict:
        return {"model": self.model, "beta_max": self.beta_max,
                "beta_max_exact": self.beta_max_exact,
                "points": [p.to_dict() for p in self.points]}


def _active(U, V) -> int:
    size = (np.linalg.norm(U.reshape(U.shape[0] * U.shape[1], -1), axis=1) *
            np.linalg.norm(V.reshape(V.shape[0] * V.shape[1], -1), axis=1))
    return int(np.sum(size > 1e-8 * size.max())) if size.size and size.max() > 0 else 0


def _zero_point(bound, b, m, metrics) -> PathPoint:
    from ..certificates import certify
    U = np.zeros((bound.P, m) + tuple(bound.w1_shape))
    V = np.zeros((bound.P, m) + tuple(bound.w2_shape))
    cert = certify(bound, U, V, refine_iters=0)
    loss = float(bound.loss.value(np.zeros_like(bound.Y), bound.Y))
    return PathPoint(b, loss, loss, 0, float(cert.gap_bound), 0, 0.0, "beta >= beta_max",
                     False, metrics(U, V, bound), U, V)


def regularization_path(model, data, *, betas=None, n_betas: int = 8, ratio: float = 1e-3,
                        warm="auto", max_steps=None, cert_tol: float = 1e-6,
                        certificate_every: int = 10, time_limit=None, device=None,
                        method: str = "auto", seed: int = 0, metrics=None,
                        callback=None) -> RegularizationPath:
    """The path for `model` (a checked Model) on `data` (arrays by tensor name).

    `betas` (any order; run from the largest down) or `n_betas` points from beta_max down
    to `ratio` beta_max. Each point trains until its certified gap is <= `cert_tol`
    (checked every `certificate_every` steps), `max_steps` or `time_limit` seconds.
    `metrics(U, V, bound) -> dict` adds columns (e.g. a test metric); `callback(point)` is
    called after each point (progress)."""
    import torch

    from ..trainer import Trainer
    metrics = metrics or (lambda U, V, bound: {})
    bound = model.derive().bind(data)
    b_max, exact = beta_max(bound)
    grid = beta_grid(b_max, n_betas, ratio) if betas is None else \
        np.sort(np.asarray(betas, dtype=float))[::-1]
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise PathError("betas must be positive finite numbers")
    m = model.units.value or bound.m
    points, prev = [], None
    for b in grid:
        b_bound = model.with_beta(float(b)).derive().bind(data, patterns=bound.patterns)
        if b >= b_max:
            point = _zero_point(b_bound, float(b), m, metrics)
        else:
            trainer = Trainer(b_bound, device=device, method=method, seed=seed,
                              progress=False, certificate_every=certificate_every)
            start = prev is not None and _active(prev.U, prev.V) > 0 and (
                warm is True or (warm == "auto" and trainer.warm is None))
            if start:
                trainer.warm = None          # BM steps from the previous point instead
                trainer.U.data.copy_(torch.as_tensor(prev.U, dtype=trainer.dtype))
                trainer.V.data.copy_(torch.as_tensor(prev.V, dtype=trainer.dtype))
            r = trainer.fit(max_steps, cert_tol=cert_tol, time_limit=time_limit)
            iters = r.steps + (r.warm_start or {}).get("iterations", 0)
            point = PathPoint(float(b), r.objective, r.loss, _active(r.U, r.V),
                              float(r.certificate.gap_bound), iters, r.seconds, r.stopped,
                              start, metrics(r.U, r.V, b_bound), r.U, r.V)
        points.append(point)
        prev = point
        if callback is not None:
            callback(point)
    return RegularizationPath(model.name, b_max, exact, points)
