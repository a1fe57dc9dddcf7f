"""The checked model: what the derivation and the backends consume.

Frozen dataclasses with spans. `Model.summary()` is what `bmdsl check` prints.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from functools import reduce

import sympy

from ..atoms.bias import NO_BIAS, BiasSpec
from .declarations import PatchesInfo, PoolInfo, SizeInfo, TensorInfo, UnitsInfo
from .equations import CheckedEquation
from ..core.limits import RANGES
from ..core.source import Source, Span
from ..core.stages import later


def _whole(x) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    patterns: int | str | None  # sampled count, 'exact', or None (linear, or gates given)
    seed: int
    gates: str | None  # input tensor holding the gates
    span: Span

    @property
    def pattern_source(self) -> str:
        from ..atoms.activations import get_activation
        if not get_activation(self.name).uses_patterns:
            return f"none ({self.name})"
        if self.gates:
            return f"gates given as data: input '{self.gates}'"
        if self.patterns == "exact":
            return "exact enumeration of the hyperplane arrangement"
        return f"{self.patterns} sampled (seed {self.seed})"


@dataclass(frozen=True)
class LossSpec:
    name: str
    params: tuple[tuple[str, float], ...]
    span: Span

    def __str__(self) -> str:
        args = ", ".join(f"{k} = {v:g}" for k, v in self.params)
        return f"{self.name}({args})" if args else self.name


@dataclass(frozen=True)
class RegularizerSpec:
    beta: float
    C: str
    R: str
    span: Span


@dataclass(frozen=True)
class Model:
    name: str
    source: Source
    architecture: str | None
    sizes: tuple[SizeInfo, ...]
    inputs: tuple[TensorInfo, ...]
    derived: tuple[TensorInfo, ...]  # patches and pooling tensors, built from inputs
    target: TensorInfo
    units: UnitsInfo
    first_weight: TensorInfo
    second_weight: TensorInfo
    patches: tuple[PatchesInfo, ...]
    pools: tuple[PoolInfo, ...]
    layer: CheckedEquation
    output: CheckedEquation
    activation: ActivationSpec
    loss: LossSpec
    regularizer: RegularizerSpec
    bias: BiasSpec = NO_BIAS

    # -- sizes ------------------------------------------------------------------------------
    def size(self, name: str) -> SizeInfo:
        return next(s for s in self.sizes if s.name == name)

    def symbolic(self, name: str) -> sympy.Expr:
        """A size as a sympy expression: a value, a formula in other sizes, or a symbol."""
        info = self.size(name)
        if info.value is not None:
            return sympy.Integer(info.value)
        if info.formula is not None:
            return info.formula.subs({s.symbol: self.symbolic(s.name) for s in self.sizes
                                      if s.symbol in info.formula.free_symbols})
        return info.symbol

    def numel(self, dims: tuple[str, ...]) -> sympy.Expr:
        return reduce(lambda a, b: a * b, (self.symbolic(d) for d in dims), sympy.Integer(1))

    @property
    def p(self) -> sympy.Expr:
        """Flattened first-layer weight size (rows of Z)."""
        return self.numel(self.first_weight.dims)

    @property
    def q(self) -> sympy.Expr:
        """Flattened second-layer weight size (columns of Z)."""
        return self.numel(self.second_weight.dims)

    def tensor(self, name: str) -> TensorInfo:
        for t in (*self.inputs, *self.derived, self.target, self.first_weight, self.second_weight):
            if t.name == name:
                return t
        raise KeyError(name)

    def derive(self):
        """The symbolic derivation (docs/theory.md): programs, cones, certificate, theorems."""
        return later("derive")(self)

    # -- variants ---------------------------------------------------------------------------
    def with_activation(self, name: str, patterns=None, seed: int | None = None) -> "Model":
        """The same model with another activation (what `--activation` does)."""
        from ..atoms.activations import ACTIVATIONS
        from ..core.errors import SemanticError
        if name not in ACTIVATIONS:
            raise SemanticError(f"unknown activation '{name}'",
                                hint=f"accepted: {', '.join(ACTIVATIONS)}")
        if patterns is not None and patterns != "exact" and not (
                _whole(patterns) and patterns in RANGES["patterns"]):
            raise SemanticError(f"patterns must be a positive whole number "
                                f"({RANGES['patterns'].words('patterns')}) or 'exact', not "
                                f"{patterns!r}")
        if seed is not None and not (_whole(seed) and seed in RANGES["seed"]):
            raise SemanticError(f"seed must be a whole number >= 0 "
                                f"({RANGES['seed'].words('seed')}), not {seed!r}")
        patterns = int(patterns) if _whole(patterns) else patterns
        seed = None if seed is None else int(seed)
        from ..atoms.activations import get_activation
        if not get_activation(name).uses_patterns:      # the units rule: no patterns
            spec = ActivationSpec(name, None, 0, None, self.activation.span)
        else:
            keep = self.activation.patterns if get_activation(
                self.activation.name).uses_patterns else 64
            spec = ActivationSpec(name, patterns or keep or 64,
                                  self.activation.seed if seed is None else seed,
                                  None if patterns else self.activation.gates, self.activation.span)
            if spec.gates:
                spec = replace(spec, patterns=None)
        return replace(self, activation=spec)

    def with_units(self, m: int) -> "Model":
        if not (_whole(m) and m in RANGES["units"]):
            from ..core.errors import SemanticError
            raise SemanticError(f"the number of units must be a positive whole number "
                                f"({RANGES['units'].words('m')}), not {m!r}")
        return replace(self, units=replace(self.units, value=int(m)))

    def with_beta(self, beta: float) -> "Model":
        """The same model with another regularization strength (a regularization path)."""
        import math
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or \
                not math.isfinite(beta) or beta not in RANGES["beta"]:
            from ..core.errors import SemanticError
            raise SemanticError(f"beta must be a positive finite number "
                                f"({RANGES['beta'].words('beta')}), not {beta!r}")
        return replace(self, regularizer=replace(self.regularizer, beta=float(beta)))

    def with_loss(self, name: str, **params) -> "Model":
        """The same model with another registered loss (e.g. cross_entropy for a classifier)."""
        from ..core.errors import SemanticError
        from ..atoms.losses import get_loss
        try:
            get_loss(name, **params)
        except (KeyError, ValueError) as exc:
            raise SemanticError(str(exc).strip("'\"")) from None
        spec = LossSpec(name, tuple(sorted(params.items())), self.loss.span)
        return replace(self, loss=spec)

    def with_bias(self, hidden=False, output=False) -> "Model":
        """The same model with these biases, as `bias hidden, output` declares them (bias.py):
        hidden False, True (constant feature 1) or the feature's scale s; output a bool."""
        from ..atoms.bias import declared
        return replace(self, bias=declared(self, hidden, output))

    # -- text -------------------------------------------------------------------------------
    def summary(self) -> str:
        """What `bmdsl check` prints: sizes, statements, tractability, memory."""
        return later("summary")(self)
