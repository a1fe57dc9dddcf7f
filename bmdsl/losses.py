"""Loss registry: F(Yhat) of the convex programs (16), (107) and its conjugate F* for the
Fenchel dual (112)-(113) that gives the always-valid bound (docs/theory.md sec. 6).

Conventions: F is a SUM over all entries (never a mean); Yhat and Y have the same shape;
the class axis is the last axis.  F*(V) = sup_Yhat <V, Yhat> - F(Yhat), +inf off its domain.
Adding a loss is one entry in ``LOSSES``; nothing else branches on the name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .kernel.search import golden_max

__all__ = ["Param", "Loss", "LossSpec", "LOSSES", "get_loss", "best_dual_scale"]

_TOL = 1e-8   # slack when testing membership of a conjugate's domain (rounding only)


@dataclass(frozen=True)
class Param:
    """One loss parameter: ``check(value)`` returns an error message or None; ``accepts``
    says in words what it takes (the language's errors quote it at the value's span)."""
    name: str
    default: Any
    check: Callable[[Any], Optional[str]]
    doc: str = ""
    accepts: str = "a positive number"


@dataclass(frozen=True)
class Loss:
    """A built loss.  ``scale_domain(g, y) -> (lo, hi)`` is the set of t with F*(t g) finite
    (a closed interval, as F* is convex); ``closed_form_scale`` optionally maximizes
    -F*(t g) over [lo, hi] exactly (see ``best_dual_scale``)."""
    name: str
    params: tuple
    latex: str
    value: Callable
    grad: Callable
    torch_value: Callable
    cvxpy: Callable
    conjugate: Callable
    target_check: Callable
    scale_domain: Callable
    closed_form_scale: Optional[Callable] = None
    link: Optional[Callable] = None   # scores -> probabilities (classification losses only)
    # what to report on held-out data (bmdsl.metrics.METRICS keys): a classification loss
    # declares an accuracy, a regression loss the mean squared error and R^2
    metrics: tuple = ("mse", "r2")
    # a free output offset (bmdsl/offset.py, `with_offset`): b*(Yhat, Y), its channel count
    # and the loss F it minimizes over the offset (the torch runtime wraps F's own form)
    offset: Optional[Callable] = None
    channels: Optional[int] = None
    base: Optional["Loss"] = None

    def param(self, name: str):
        return dict(self.params)[name]


@dataclass(frozen=True)
class LossSpec:
    name: str
    params: tuple
    factory: Callable[..., Loss]
    doc: str = ""
    # whole-number class labels [n] may stand for one-hot targets [n, c] (class axis last):
    # binding.validate converts them when the declared target has the extra axis
    accepts_class_labels: bool = False

    @property
    def param_defaults(self) -> tuple:
        return tuple((p.name, p.default) for p in self.params)

    def language_params(self) -> tuple:
        """The parameters as `bmdsl.params.Param` for binding `loss name(key = value)`: a
        number the registry's check refuses is a SemanticError at the value's span."""
        from .params import Param as LanguageParam, positive_float

        def converter(p):
            def convert(v):
                x = positive_float(v)
                if p.check(x):
                    raise ValueError
                return x
            return convert
        return tuple(LanguageParam(p.name, p.accepts, converter(p), p.default)
                     for p in self.params)

    def make(self, **kwargs) -> Loss:
        accepted = {p.name: p for p in self.params}
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(f"loss {self.name!r} has no parameter(s) {unknown}; accepted: "
                             f"{sorted(accepted) or 'none'}")
        values = {p.name: kwargs.get(p.name, p.default) for p in self.params}
        for p in self.params:
            msg = p.check(values[p.name])
            if msg:
                raise ValueError(f"loss {self.name!r}: parameter "
                                 f"{p.name}={values[p.name]!r}: {msg}")
        return self.factory(**values)


# ------------------------------------------------------------------ numerics
def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _xlogx(x: np.ndarray) -> np.ndarray:
    # 0 log 0 = 0 (the limit), which the conjugates of softmax/sigmoid need at the boundary.
    x = np.clip(x, 0.0, None)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def _logsumexp(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=-1, keepdims=True)   # shift by the max: no overflow
    return (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))[..., 0]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))                  # never exponentiate a positive number
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _torch_y(y, yh):
    import torch
    return torch.as_tensor(y, dtype=yh.dtype, device=yh.device)


def _interval(lo_terms, hi_terms):
    lo = max([-np.inf, *lo_terms])
    hi = min([np.inf, *hi_terms])
    return float(lo), float(hi)


def _finite(y) -> Optional[str]:
    return None if np.all(np.isfinite(_arr(y))) else "targets contain NaN or inf"


# ------------------------------------------------------------------ squared
def _squared() -> Loss:
    # F*(V) = <V, Y> + ||V||^2 / 2 (complete the square).  -F*(tg) = -t<g,y> - t^2||g||^2/2
    # is a concave parabola with vertex t* = -<g,y>/||g||^2; clipping to [lo, hi] is exact.
    def scale(g, y, lo, hi):
        gg = float(np.sum(g * g))
        return 0.0 if gg == 0 else float(np.clip(-np.sum(g * y) / gg, lo, hi))

    def cvx(e, y):
        import cvxpy as cp   # imported lazily: the torch path does not need cvxpy
        return 0.5 * cp.sum_squares(e - _arr(y))

    return Loss(
        "squared", (), r"\tfrac12\|\hat Y - Y\|_F^2",
        value=lambda yh, y: 0.5 * float(np.sum((_arr(yh) - _arr(y)) ** 2)),
        grad=lambda yh, y: _arr(yh) - _arr(y),
        torch_value=lambda yh, y: 0.5 * ((yh - _torch_y(y, yh)) ** 2).sum(),
        cvxpy=cvx,
        conjugate=lambda v, y: float(np.sum(_arr(v) * _arr(y)) + 0.5 * np.sum(_arr(v) ** 2)),
        target_check=_finite,
        scale_domain=lambda g, y: (-np.inf, np.inf),
        closed_form_scale=scale)


# ------------------------------------------------------------------ cross-entropy
def _ce_conjugate(v, y) -> float:
    # Row-wise f(z) = lse(z) - <y, z>  =>  f*(v) = lse*(v + y) = sum w log w, w = v + y in
    # the simplex; +inf elsewhere.
    w = _arr(v) + _arr(y)
    if np.any(w < -_TOL) or np.any(np.abs(w.sum(axis=-1) - 1.0) > _TOL * w.shape[-1]):
        return float("inf")
    return float(np.sum(_xlogx(w)))


def _ce_domain(g, y):
    # t g + y stays in the simplex iff the rows of g sum to 0 and y + t g >= 0 entrywise.
    g, y = _arr(g), _arr(y)
    if np.any(np.abs(g.sum(axis=-1)) > _TOL * g.shape[-1]):
        return 0.0, 0.0
    pos, neg = g > 0, g < 0
    return _interval(-y[pos] / g[pos], -y[neg] / g[neg])


def _ce_cvxpy(e, y):
    import cvxpy as cp
    y = _arr(y)
    c = y.shape[-1]
    e2 = cp.reshape(e, (-1, c), order="C") if len(e.shape) != 2 else e   # rows = samples
    return cp.sum(cp.log_sum_exp(e2, axis=1)) - cp.sum(cp.multiply(y.reshape(-1, c), e2))


def _ce_check(y) -> Optional[str]:
    y = _arr(y)
    if y.ndim == 0:
        return "cross_entropy targets need a class axis (last axis)"
    if np.any(y < -_TOL):
        return "cross_entropy targets must be non-negative (one-hot or probability rows)"
    if np.any(np.abs(y.sum(axis=-1) - 1.0) > 1e-8):
        return "cross_entropy target rows (last axis) must sum to 1"
    return _finite(y)


def _cross_entropy() -> Loss:
    def grad(yh, y):
        z = _arr(yh)
        return np.exp(z - _logsumexp(z)[..., None]) - _arr(y)   # softmax - y

    def torch_value(yh, y):
        import torch
        return torch.logsumexp(yh, dim=-1).sum() - (_torch_y(y, yh) * yh).sum()

    return Loss(
        "cross_entropy", (), r"\sum_i \mathrm{lse}(\hat y_i) - \langle y_i, \hat y_i\rangle",
        value=lambda yh, y: float(np.sum(_logsumexp(_arr(yh))) - np.sum(_arr(y) * _arr(yh))),
        grad=grad, torch_value=torch_value, cvxpy=_ce_cvxpy, conjugate=_ce_conjugate,
        target_check=_ce_check, scale_domain=_ce_domain,
        link=lambda z: np.exp(_arr(z) - _logsumexp(_arr(z))[..., None]),
        metrics=("accuracy",))


# ------------------------------------------------------------------ logistic
def _logistic() -> Loss:
    # f(z) = softplus(-y z), y = +-1.  With a = -y v: f*(v) = a log a + (1-a) log(1-a) on
    # a in [0, 1] (the conjugate of softplus), +inf elsewhere.
    def conjugate(v, y):
        a = -_arr(y) * _arr(v)
        if np.any(a < -_TOL) or np.any(a > 1 + _TOL):
            return float("inf")
        a = np.clip(a, 0.0, 1.0)
        return float(np.sum(_xlogx(a) + _xlogx(1.0 - a)))

    def domain(g, y):
        c = (-_arr(y) * _arr(g)).ravel()        # a(t) = t c must stay in [0, 1]
        pos, neg = c[c > 0], c[c < 0]
        return _interval(([0.0] if pos.size else []) + list(1.0 / neg),
                         ([0.0] if neg.size else []) + list(1.0 / pos))

    def cvx(e, y):
        import cvxpy as cp
        return cp.sum(cp.logistic(-cp.multiply(_arr(y), e)))

    def check(y):
        y = _arr(y)
        ok = np.all((y == 1.0) | (y == -1.0))
        return None if ok else "logistic targets must be -1 or +1"

    def torch_value(yh, y):
        import torch.nn.functional as tf
        return tf.softplus(-_torch_y(y, yh) * yh).sum()

    return Loss(
        "logistic", (), r"\sum_i \log(1 + e^{-y_i \hat y_i})",
        value=lambda yh, y: float(np.sum(np.logaddexp(0.0, -_arr(y) * _arr(yh)))),
        grad=lambda yh, y: -_arr(y) * _sigmoid(-_arr(y) * _arr(yh)),
        torch_value=torch_value, cvxpy=cvx, conjugate=conjugate, target_check=check,
        scale_domain=domain, link=_sigmoid, metrics=("sign_accuracy",))


# ------------------------------------------------------------------ huber
def _huber(delta: float) -> Loss:
    d = float(delta)

    def value(yh, y):
        r = np.abs(_arr(yh) - _arr(y))
        return float(np.sum(np.where(r <= d, 0.5 * r ** 2, d * (r - 0.5 * d))))

    def conjugate(v, y):
        # h is the Moreau envelope of d|.|, so h*(v) = v^2/2 on |v| <= d; shift by Y.
        v = _arr(v)
        if np.any(np.abs(v) > d * (1 + _TOL)):
            return float("inf")
        return float(np.sum(v * _arr(y)) + 0.5 * np.sum(v ** 2))

    def domain(g, y):
        m = float(np.max(np.abs(_arr(g)))) if np.size(g) else 0.0
        return (-d / m, d / m) if m > 0 else (-np.inf, np.inf)

    def cvx(e, y):
        import cvxpy as cp
        return 0.5 * cp.sum(cp.huber(e - _arr(y), d))   # cvxpy's huber is 2x ours

    def torch_value(yh, y):
        import torch.nn.functional as tf
        return tf.huber_loss(yh, _torch_y(y, yh), reduction="sum", delta=d)

    return Loss(
        "huber", (("delta", d),),
        r"\sum_i h_{\delta}(\hat y_i - y_i),\ h_\delta(r)=\begin{cases}r^2/2 & |r|\le\delta\\"
        r" \delta(|r|-\delta/2) & \text{else}\end{cases}",
        value=value, grad=lambda yh, y: np.clip(_arr(yh) - _arr(y), -d, d),
        torch_value=torch_value, cvxpy=cvx, conjugate=conjugate, target_check=_finite,
        scale_domain=domain)


def _positive(x) -> Optional[str]:
    try:
        ok = float(x) > 0 and np.isfinite(float(x)) and not isinstance(x, bool)
    except (TypeError, ValueError):
        return "must be a real number"
    return None if ok else "must be a finite number > 0"


# Huber's delta is in the units of the residual Yhat - Y. For data at a sane scale (the
# scale beta's range assumes), a delta below 1e-8 makes the loss delta times the l1 loss
# down to values that reach float64's subnormal range when squared (delta = 5e-324 made
# F exactly 0 and a "true gap" of -1), and above 1e8 every residual is quadratic: the loss
# is the squared one. Outside this range, rescale the data instead.
HUBER_DELTA = (1e-8, 1e8)


def _huber_delta(x) -> Optional[str]:
    low, high = HUBER_DELTA
    return _positive(x) or (None if low <= float(x) <= high else
                            f"must satisfy {low:g} <= delta <= {high:g} (rescale the data "
                            "for a threshold outside it)")


LOSSES: dict[str, LossSpec] = {
    "squared": LossSpec("squared", (), _squared, "0.5 ||Yhat - Y||^2",
                        accepts_class_labels=True),
    "cross_entropy": LossSpec("cross_entropy", (), _cross_entropy, "softmax cross-entropy",
                              accepts_class_labels=True),
    "logistic": LossSpec("logistic", (), _logistic, "log(1 + exp(-Y Yhat)), Y in {-1, +1}"),
    "huber": LossSpec("huber", (Param("delta", 1.0, _huber_delta, "quadratic zone half-width",
                                      f"a positive number, {HUBER_DELTA[0]:g} <= delta <= "
                                      f"{HUBER_DELTA[1]:g}"),),
                      _huber, "Huber with threshold delta"),
}


def get_loss(name: str, **params) -> Loss:
    """Build a registered loss; KeyError for an unknown name, ValueError for a bad parameter."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; accepted names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name].make(**params)


def best_dual_scale(loss: Loss, g, y, t_max: float) -> float:
    """argmax_{|t| <= t_max, F*(t g) < inf} -F*(t g): the best dual point on the ray of
    g = grad F(Yhat) (docs/theory.md sec. 6: v = t g, t_max = beta / max_k ||G_k||_D*).
    Never returns a point outside the conjugate's domain; t = 0 is always in it for valid Y."""
    g, y = _arr(g), _arr(y)
    lo, hi = loss.scale_domain(g, y)
    lo, hi = max(lo, -float(t_max)), min(hi, float(t_max))
    if not np.any(g) or hi <= lo:
        return 0.0 if lo <= 0.0 <= hi else float(lo)
    if loss.closed_form_scale is not None:
        return loss.closed_form_scale(g, y, lo, hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("the dual ray is unbounded: pass a finite t_max")
    phi = lambda t: -loss.conjugate(t * g, y)  # noqa: E731
    cands = [lo, hi, golden_max(phi, lo, hi, rtol=1e-14)] + ([0.0] if lo <= 0.0 <= hi else [])
    return float(max(cands, key=phi))
