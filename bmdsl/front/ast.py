"""The syntax tree: frozen dataclasses, each with the span it was parsed from.

This is what `bmdsl.parse(text, check=False)` returns. Nothing here is validated beyond
the grammar; `bmdsl.check` turns it into a `Model`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..core.source import Source, Span


# ---- values and calls -------------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    value: float
    text: str
    span: Span


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class Window:
    """A pooling window such as `2x2`."""

    rows: int
    cols: int
    span: Span


Value = Union[Number, Name, Window]


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for a positional argument
    value: Value
    span: Span


@dataclass(frozen=True)
class Call:
    """`name(arg, key = value, ...)`; bare `name` has no arguments."""

    name: str
    args: tuple[Arg, ...]
    span: Span


# ---- expressions (index notation) -------------------------------------------------------

@dataclass(frozen=True)
class Index:
    name: str
    span: Span


@dataclass(frozen=True)
class Ref:
    """A tensor with indices, `X[n, d]`; a scalar tensor has no indices."""

    name: str
    indices: tuple[Index, ...]
    span: Span


@dataclass(frozen=True)
class Act:
    """`act(A)[n, k]`: the activation applied to the first layer's tensor."""

    name: str
    indices: tuple[Index, ...]
    span: Span


@dataclass(frozen=True)
class Const:
    value: float
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # '+', '-', '*'
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Pow:
    base: "Expr"
    exponent: int
    span: Span


Expr = Union[Ref, Act, Const, BinOp, Neg, Pow]


# ---- declarations -----------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """A declared tensor: its name and the size names of its axes."""

    name: str
    dims: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Architecture:
    name: str
    span: Span


@dataclass(frozen=True)
class SizeItem:
    name: str
    value: int | None
    span: Span


@dataclass(frozen=True)
class SizeDecl:
    items: tuple[SizeItem, ...]
    span: Span


@dataclass(frozen=True)
class InputDecl:
    tensors: tuple[Shape, ...]
    span: Span


@dataclass(frozen=True)
class TargetDecl:
    tensor: Shape
    span: Span


@dataclass(frozen=True)
class UnitsDecl:
    name: str
    value: int
    span: Span


@dataclass(frozen=True)
class WeightsDecl:
    first: Shape
    second: Shape
    span: Span


@dataclass(frozen=True)
class PatchesDecl:
    tensor: Shape
    call: Call
    span: Span


@dataclass(frozen=True)
class PoolDecl:
    tensor: Shape
    call: Call
    span: Span


@dataclass(frozen=True)
class Equation:
    side: str  # 'layer' or 'output': which of the two equations
    lhs: Ref
    rhs: Expr
    span: Span


@dataclass(frozen=True)
class ActivationDecl:
    call: Call
    span: Span


@dataclass(frozen=True)
class LossDecl:
    call: Call
    span: Span


@dataclass(frozen=True)
class RegularizeDecl:
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class BiasDecl:
    """`bias hidden, output`: which biases the network has (bmdsl/atoms/bias.py)."""
    calls: tuple[Call, ...]
    span: Span


Statement = Union[Architecture, SizeDecl, InputDecl, TargetDecl, UnitsDecl, WeightsDecl,
                  PatchesDecl, PoolDecl, Equation, ActivationDecl, LossDecl, RegularizeDecl,
                  BiasDecl]


@dataclass(frozen=True)
class Program:
    """A parsed `.bm` file: the model's name and its statements in source order."""

    name: str
    statements: tuple[Statement, ...]
    span: Span
    source: Source

    def of_type(self, cls) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, cls))
