"""Vector-norm registry for the regularizer norms C and R (docs/theory.md sec. 1).

The BM regularizer (beta/2) sum_j (||w1_j||_C^2 + ||w2_j||_R^2) of paper eq. (14) and the
D-norm of eq. (15) are parametrised by two vector norms.  This module is the *one* table
that knows how to evaluate each of them in numpy, torch and cvxpy, which norm is its dual,
and how to attain the dual norm on the unit ball (needed for the maximizers of eq. (15)'s
dual ||G||_D* = max_{u in B_C, v in B_R} u^T G v).

Adding a norm is one entry in ``NORMS``; nothing else branches on the name. bmdsl-free
(kernel rule): the norm pairs (pairforms.py) and the emitted CVXPY module use it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["VectorNorm", "NORMS", "get_norm"]


@dataclass(frozen=True)
class VectorNorm:
    """One vector norm scale * ||.||_p (p in {1, 2, inf}; scale 1 for l1, l2, linf).

    ``numpy(x, axis)``, ``torch(x, dim)`` and ``cvxpy(expr, axis)`` compute the norm along
    an axis; ``axis=None`` means the norm of the flattened array (never a matrix/operator
    norm: ``cp.norm(X, 2)`` would be the spectral norm, which is not what C or R mean).
    ``ball_argmax(g)`` returns x with ||x|| <= 1 and <g, x> = ||g||_dual, the attainer of
    the dual norm (Hoelder equality case); it is how the D-norm maximizers are built.
    """

    name: str
    p: float
    dual: str
    latex: str
    numpy: Callable[..., Any]
    torch: Callable[..., Any]
    cvxpy: Callable[..., Any]
    ball_argmax: Callable[[np.ndarray], np.ndarray]
    # ||x||^2 is twice differentiable everywhere (only l2): the BM regularizer is smooth
    smooth_square: bool = False
    # the unit ball's extreme points are the signed basis vectors +-e_j (only l1): atoms
    # u e_j^T make the ReLU cone norm exact (pairforms.relu_exact)
    basis_extremes: bool = False
    # the subscript of ||.|| in the derivation's LaTeX; default from p (l2 -> 2, linf -> \infty)
    subscript: str = ""
    # the norm is scale * ||x||_p: with p, its declared numeric form (`runtime_form`)
    scale: float = 1.0

    @property
    def runtime_form(self) -> dict:
        """scale * ||x||_p as plain literals, what the torch runtime computes (the trainer's
        SPEC carries it: trainer/runtime/forms.py); p = inf is spelled "inf" since emitted
        literals are finite numbers."""
        return {"order": "inf" if np.isinf(self.p) else float(self.p),
                "scale": float(self.scale)}

    @property
    def tex_subscript(self) -> str:
        return self.subscript or (r"\infty" if self.p == float("inf") else f"{self.p:g}")

    @property
    def dual_norm(self) -> "VectorNorm":
        return NORMS[self.dual]


# ---------------------------------------------------------------- numpy evaluations
def _np_norm(p: float) -> Callable[..., Any]:
    def f(x, axis=None):
        x = np.asarray(x, dtype=float)
        if axis is None:
            x = x.ravel()
            axis = 0
        # np.linalg.norm with axis=int is always the vector norm, as wanted.
        return np.linalg.norm(x, ord=p, axis=axis)

    return f


def _torch_norm(p: float) -> Callable[..., Any]:
    def f(x, dim=None):
        import torch  # local: keep `import bmdsl.atoms.norms` light for the CVXPY-only path

        if dim is None:
            x = x.reshape(-1)
            dim = 0
        # torch.linalg.vector_norm is the differentiable vector norm for every p.
        return torch.linalg.vector_norm(x, ord=p, dim=dim)

    return f


def _cvxpy_norm(p: float) -> Callable[..., Any]:
    def f(expr, axis=None):
        import cvxpy as cp

        # cp.pnorm is entrywise for axis=None (cp.norm would give an operator norm).
        return cp.pnorm(expr, "inf" if np.isinf(p) else int(p), axis=axis)

    return f


# ---------------------------------------------------------------- ball attainers
def _argmax_l1_ball(g: np.ndarray) -> np.ndarray:
    # max_{||x||_1<=1} <g,x> = ||g||_inf, attained at a signed basis vector.
    g = np.asarray(g, dtype=float)
    x = np.zeros_like(g)
    k = int(np.argmax(np.abs(g)))
    x[k] = 1.0 if g[k] >= 0 else -1.0
    return x


def _argmax_l2_ball(g: np.ndarray) -> np.ndarray:
    # max_{||x||_2<=1} <g,x> = ||g||_2 at g/||g|| (Cauchy-Schwarz); any point if g = 0.
    g = np.asarray(g, dtype=float)
    n = np.linalg.norm(g)
    if n == 0.0:
        x = np.zeros_like(g)
        x[0] = 1.0
        return x
    return g / n


def _argmax_linf_ball(g: np.ndarray) -> np.ndarray:
    # max_{||x||_inf<=1} <g,x> = ||g||_1 at sign(g); sign(0) := +1 keeps x a vertex.
    g = np.asarray(g, dtype=float)
    return np.where(g >= 0, 1.0, -1.0)


# one top-level name per entry: an emitted module pastes only the norms its model uses
L1 = VectorNorm("l1", 1.0, "linf", r"\|\cdot\|_1", _np_norm(1), _torch_norm(1), _cvxpy_norm(1),
                _argmax_l1_ball, basis_extremes=True)
L2 = VectorNorm("l2", 2.0, "l2", r"\|\cdot\|_2", _np_norm(2), _torch_norm(2), _cvxpy_norm(2),
                _argmax_l2_ball, smooth_square=True)
LINF = VectorNorm("linf", float("inf"), "l1", r"\|\cdot\|_\infty", _np_norm(np.inf),
                  _torch_norm(float("inf")), _cvxpy_norm(np.inf), _argmax_linf_ball)
NORMS: dict[str, VectorNorm] = {"l1": L1, "l2": L2, "linf": LINF}


def get_norm(name: str | VectorNorm) -> VectorNorm:
    """Look a norm up by name (``"l1"``, ``"l2"``, ``"linf"``); a VectorNorm passes through."""
    if isinstance(name, VectorNorm):
        return name
    try:
        return NORMS[name]
    except (KeyError, TypeError):
        raise KeyError(
            f"unknown vector norm {name!r}; accepted names: {', '.join(sorted(NORMS))}"
        ) from None
