"""Loss registry: F(Yhat) of the convex programs (16), (107) and its conjugate F* for the
Fenchel dual (112)-(113) that gives the always-valid bound (docs/theory.md sec. 6).

Conventions: F is a SUM over all entries (never a mean); Yhat and Y have the same shape;
the class axis is the last axis.  F*(V) = sup_Yhat <V, Yhat> - F(Yhat), +inf off its domain.
Every loss is declared once, as a class in `bmdsl.kernel.lossforms` (its numbers, its CVXPY and
torch forms, its capabilities); ``LOSSES`` is the registry built from those classes, and
code asks an entry (``loss.quadratic``, ``loss.twice_differentiable``...), never a name.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .dualray import best_dual_scale
from ..kernel.lossforms import LOSS_KERNELS

from ..kernel.search import golden_max

__all__ = ["LossParam", "Loss", "LossEntry", "LOSSES", "get_loss", "best_dual_scale"]


@dataclass(frozen=True)
class LossParam:
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
    # what to report on held-out data (bmdsl.workflow.metrics.METRICS keys): a classification loss
    # declares an accuracy, a regression loss the mean squared error and R^2
    metrics: tuple = ("mse", "r2")
    # a free output offset (bmdsl/atoms/offset.py, `with_offset`): b*(Yhat, Y), its channel count
    # and the loss F it minimizes over the offset (the torch runtime wraps F's own form)
    offset: Optional[Callable] = None
    channels: Optional[int] = None
    base: Optional["Loss"] = None
    # F = 1/2 ||Yhat - Y||_F^2 exactly (identity Hessian): the Gram path, ALS, the cone
    # interior point and the Gauss-Newton shortcut need it
    quadratic: bool = False
    # C^2 (Theorem 3.3's rank-deficient clause); False is the safe answer
    twice_differentiable: bool = False
    # (rows per entry, variables per entry, rows per sample, variables per sample) of the
    # CVXPY form's canonical program, for the program's memory estimate
    # (core/cvxfootprint.loss_program); None: not declared (a conservative default is used)
    cvxpy_size: Optional[tuple] = None
    # prox(v, y, t, x0=None) -> argmin_x t F(x; y) + 1/2 ||x - v||^2 on torch tensors, or None:
    # the lifted ADMM (runtime/proxadmm.py) needs it, a loss without one takes the FISTA
    prox: Optional[Callable] = None
    # terms(yh, y) -> the per-entry (or per-row) array whose sum is value(yh, y), or None
    # (losskernel.LossKernel.terms): the lifted warm starts sum it by blocks of samples
    terms: Optional[Callable] = None

    def param(self, name: str):
        return dict(self.params)[name]


@dataclass(frozen=True)
class LossEntry:
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
        """The parameters as `bmdsl.front.params.Param` for binding `loss name(key = value)`: a
        number the registry's check refuses is a SemanticError at the value's span."""
        from ..front.params import Param as LanguageParam, positive_float

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


def _cvxpy_form(k):
    def form(e, y):
        import cvxpy   # lazily: the torch path does not need cvxpy
        return k.cvxpy(cvxpy, e, y)
    return form


def _torch_form(k):
    def form(yh, y):
        import torch   # lazily: the CVXPY path does not need torch
        return k.torch(torch, yh, y)
    return form


def _torch_prox(k):
    def prox(v, y, t, x0=None):
        import torch
        return k.torch_prox(torch, v, y, t, x0)
    return prox


def _from_kernel(kernel) -> LossEntry:
    """The registry entry of a `losskernel.LossKernel` class."""
    def build(**values) -> Loss:
        k = kernel(**values)
        return Loss(k.name, tuple((p[0], float(values[p[0]])) for p in k.params), k.latex,
                    value=k.value, grad=k.grad, torch_value=_torch_form(k),
                    cvxpy=_cvxpy_form(k),
                    conjugate=k.conjugate, target_check=k.target_check,
                    scale_domain=k.scale_domain, closed_form_scale=k.closed_form_scale,
                    link=k.link, metrics=tuple(k.metrics), quadratic=k.quadratic,
                    twice_differentiable=k.twice_differentiable,
                    cvxpy_size=None if k.cvxpy_size is None else tuple(k.cvxpy_size),
                    prox=None if k.torch_prox is None else _torch_prox(k),
                    terms=k.terms)
    params = tuple(LossParam(name, default, check, doc, accepts)
                   for name, default, accepts, check, doc in kernel.params)
    return LossEntry(kernel.name, params, build, kernel.doc,
                    accepts_class_labels=kernel.class_labels)


class _Registry(MutableMapping):
    """name -> LossEntry: every class of `lossforms.LOSS_KERNELS` (read live, so a class
    registered there at any time is an entry), plus entries set here directly."""

    def __init__(self):
        self._set: dict[str, LossEntry] = {}

    def __getitem__(self, name: str) -> LossEntry:
        if name in self._set:
            return self._set[name]
        return _from_kernel(LOSS_KERNELS[name])

    def __setitem__(self, name: str, spec: LossEntry) -> None:
        self._set[name] = spec

    def __delitem__(self, name: str) -> None:
        del self._set[name]

    def __iter__(self):
        return iter(list(LOSS_KERNELS) + [n for n in self._set if n not in LOSS_KERNELS])

    def __len__(self) -> int:
        return len(set(LOSS_KERNELS) | set(self._set))


LOSSES: MutableMapping = _Registry()


def get_loss(name: str, **params) -> Loss:
    """Build a registered loss; KeyError for an unknown name, ValueError for a bad parameter."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; accepted names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name].make(**params)
