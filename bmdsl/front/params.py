"""Binding `name(arg, key = value)` calls against a declared parameter list.

Activations, losses, pooling and patch builders all declare their parameters as a tuple of
`Param`; one function binds a call against it, so every registry reports bad arguments the
same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from . import ast
from ..core.errors import SemanticError
from ..core.limits import RANGES

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Param:
    """One parameter: its name, what it accepts (in words, for errors), a converter that
    returns the value or raises ValueError, and an optional default."""

    name: str
    accepts: str
    convert: Callable[[ast.Value], Any]
    default: Any = _NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


def _whole(v: ast.Value) -> int:
    """A whole number written without a decimal point (`3`, `1e2`), else ValueError."""
    if isinstance(v, ast.Number) and math.isfinite(v.value) and v.value == int(v.value) \
            and "." not in v.text:
        return int(v.value)
    raise ValueError


def positive_int(v: ast.Value) -> int:
    if _whole(v) > 0:
        return _whole(v)
    raise ValueError


def nonneg_int(v: ast.Value) -> int:
    if _whole(v) >= 0:
        return _whole(v)
    raise ValueError


def positive_float(v: ast.Value) -> float:
    if isinstance(v, ast.Number) and math.isfinite(v.value) and v.value > 0:
        return float(v.value)
    raise ValueError


def within(convert: Callable[[ast.Value], Any], name: str) -> Callable[[ast.Value], Any]:
    """`convert`, then the accepted range of parameter `name` (`limits.RANGES`)."""
    accepted = RANGES[name]

    def check(v: ast.Value) -> Any:
        x = convert(v)
        if x not in accepted:
            raise ValueError
        return x
    return check


def accepts(what: str, name: str) -> str:
    """'a positive whole number, 1 <= kernel <= 10000': a Param's `accepts` with its range."""
    return f"{what}, {RANGES[name].words(name)}"


def name_of(v: ast.Value) -> str:
    if isinstance(v, ast.Name):
        return v.name
    raise ValueError


def one_of(*choices: str) -> Callable[[ast.Value], str]:
    def convert(v: ast.Value) -> str:
        if isinstance(v, ast.Name) and v.name in choices:
            return v.name
        raise ValueError
    return convert


def either(*converters: Callable[[ast.Value], Any]) -> Callable[[ast.Value], Any]:
    def convert(v: ast.Value) -> Any:
        for c in converters:
            try:
                return c(v)
            except ValueError:
                pass
        raise ValueError
    return convert


def bind(call_name: str, args: tuple[ast.Arg, ...], params: tuple[Param, ...], *,
         what: str, span) -> dict[str, Any]:
    """Match positional then keyword arguments to `params`; fill defaults; explain errors."""
    by_name = {p.name: p for p in params}
    accepted = ", ".join(f"{p.name} ({p.accepts})" for p in params) or "no arguments"
    bound: dict[str, Any] = {}
    seen_keyword = False
    for i, arg in enumerate(args):
        if arg.name is None:
            if seen_keyword:
                raise SemanticError(f"positional argument after a keyword argument in {what} "
                                    f"'{call_name}'", span=arg.span,
                                    hint=f"write positional arguments first; accepted: {accepted}")
            if i >= len(params):
                raise SemanticError(f"{what} '{call_name}' takes {len(params)} argument(s), got "
                                    f"more", span=arg.span, hint=f"accepted: {accepted}")
            param = params[i]
        else:
            seen_keyword = True
            if arg.name not in by_name:
                raise SemanticError(f"{what} '{call_name}' has no parameter '{arg.name}'",
                                    span=arg.span, hint=f"accepted: {accepted}")
            param = by_name[arg.name]
        if param.name in bound:
            raise SemanticError(f"parameter '{param.name}' of {what} '{call_name}' is given twice",
                                span=arg.span)
        try:
            bound[param.name] = param.convert(arg.value)
        except ValueError:
            raise SemanticError(f"parameter '{param.name}' of {what} '{call_name}' must be "
                                f"{param.accepts}", span=arg.value.span) from None
    for p in params:
        if p.name not in bound:
            if p.required:
                raise SemanticError(f"{what} '{call_name}' needs parameter '{p.name}' "
                                    f"({p.accepts})", span=span, hint=f"accepted: {accepted}")
            bound[p.name] = p.default
    return bound
