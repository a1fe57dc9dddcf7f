"""An equation's right side as a sum of monomials: coefficient x tensor occurrences.

Two passes over the expression, both iterative: a 512-term sum or a chain of 500 unary
minuses is a tree that deep, past Python's recursion limit.

1. `_fold` bounds the expression (MAX_EXPRESSION_NODES nodes; an expansion of at most
   MAX_FACTORS tensors per term and MAX_TERMS terms) and evaluates every number-only
   subexpression in float64, rejecting at its span a value that overflows to inf or
   underflows below the normal float64 range (`0.5^10000` would make the layer 0).
2. `_to_sympy` gives each tensor occurrence a fresh symbol and builds whole sums and
   products in one sympy call each (a left-deep chain built pairwise costs O(n^2)), with
   number-only subexpressions entering as their folded value; `sympy.expand` multiplies out.
"""
from __future__ import annotations

import math
import sys

import sympy

from ..front import ast
from ..core.errors import SemanticError
from ..core.limits import MAX_EXPRESSION_NODES, MAX_FACTORS, MAX_TERMS

TINY, HUGE = sys.float_info.min, sys.float_info.max
_RANGE_HINT = ("a coefficient must lie within 2.2e-308 and 1.8e308 in magnitude (float64); "
               "a layer multiplied by 0 is identically 0")
_CHAIN = {"+": "+", "-": "+", "*": "*"}  # operators that chain n-ary: sums and products


def _children(e) -> tuple:
    if isinstance(e, ast.BinOp):
        return e.left, e.right
    if isinstance(e, ast.Neg):
        return (e.operand,)
    if isinstance(e, ast.Pow):
        return (e.base,)
    return ()


def postorder(root) -> list:
    """The nodes of an expression, children before parents, without recursion."""
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(_children(node))
        if len(out) > MAX_EXPRESSION_NODES:
            raise SemanticError(f"this expression has more than {MAX_EXPRESSION_NODES} numbers, "
                                f"tensors and operators", span=root.span,
                                hint="an equation is a short sum of products of tensors")
    out.reverse()
    return out


def _log10(x: float) -> float:
    return math.log10(abs(x)) if x else -math.inf


def _checked(value: float, log10: float, node, what: str) -> float:
    """`value` (float64) of `what`, whose exact magnitude is 10^log10; reject inf/underflow."""
    if not math.isfinite(value):
        raise SemanticError(f"{what} is about 10^{log10:.0f} in magnitude: too large for a "
                            f"float (float64 overflows past 1.8e308)", span=node.span,
                            hint=_RANGE_HINT)
    if log10 != -math.inf and (value == 0 or abs(value) < TINY):
        raise SemanticError(f"{what} is about 10^{log10:.0f} in magnitude: too small for a "
                            f"float (float64 makes a magnitude below 2.2e-308 zero or "
                            f"imprecise)",
                            span=node.span, hint=_RANGE_HINT)
    return value


def _fold(root) -> tuple[list, dict]:
    """(nodes in post-order, id -> (factors, terms, value or None for non-numbers))."""
    nodes, info = postorder(root), {}
    for e in nodes:
        if isinstance(e, (ast.Number, ast.Const)):
            v = float(e.value)
            r = (0, 1, _checked(v, _log10(v), e, f"the number {getattr(e, 'text', v)}"))
        elif isinstance(e, (ast.Ref, ast.Act)):
            r = (1, 1, None)
        elif isinstance(e, ast.Neg):
            deg, terms, v = info[id(e.operand)]
            r = (deg, terms, None if v is None else -v)
        elif isinstance(e, ast.Pow):
            (deg, terms, v), k = info[id(e.base)], e.exponent
            r = (deg * k, 1 if k == 0 or terms == 1 else terms ** min(k, 64), _power(v, k, e))
        else:
            (ld, lt, lv), (rd, rt, rv) = info[id(e.left)], info[id(e.right)]
            if lv is not None and rv is not None:
                r = (0, 1, _combine(e, lv, rv))
            elif e.op == "*":
                r = (ld + rd, lt * rt, None)
            else:
                r = (max(ld, rd), lt + rt, None)
        if r[0] > MAX_FACTORS or r[1] > MAX_TERMS:
            raise SemanticError(f"this expression expands to more than {MAX_FACTORS} tensors "
                                f"in a term or {MAX_TERMS} terms", span=e.span,
                                hint="an equation is a short sum of products of tensors; the "
                                     "first layer is linear in W1, the output linear in act(A) "
                                     "and W2")
        info[id(e)] = r
    return nodes, info


def _power(v: float | None, k: int, node) -> float | None:
    if v is None:
        return None
    if v == 0:
        return 1.0 if k == 0 else 0.0
    log10 = k * _log10(v)
    if log10 > math.log10(HUGE) + 1 or log10 < math.log10(TINY) - 1:
        value = math.inf if log10 > 0 else 0.0  # far out of range: do not compute it
    else:
        try:
            value = math.pow(abs(v), k)
        except OverflowError:  # math.pow raises where float multiplication gives inf
            value = math.inf
    value = -value if v < 0 and k % 2 else value
    return _checked(value, log10, node, "this power")


def _combine(e: ast.BinOp, a: float, b: float) -> float:
    if e.op == "*":
        return _checked(a * b, _log10(a) + _log10(b), e, "this product")
    value = a + b if e.op == "+" else a - b
    if value == 0:  # 1 - 1: a true zero, not an underflow
        return 0.0
    return _checked(value, _log10(value) if math.isfinite(value) else math.log10(HUGE) + 1,
                    e, "this sum")


def _number(v: float) -> sympy.Expr:
    return sympy.Integer(int(v)) if v.is_integer() and abs(v) < 2 ** 53 else sympy.Float(v)


def _to_sympy(nodes: list, info: dict, table: dict) -> sympy.Expr:
    """The expression in sympy, one fresh symbol per tensor occurrence (kept in `table`)."""
    inner = set()  # chain nodes whose parent continues the chain: built by the chain's top
    for e in nodes:
        if isinstance(e, ast.BinOp) and info[id(e)][2] is None:
            for c in (e.left, e.right):  # a number-only child is a leaf: its folded value
                if isinstance(c, ast.BinOp) and _CHAIN[c.op] == _CHAIN[e.op] and \
                        info[id(c)][2] is None:
                    inner.add(id(c))
    out = {}
    for e in nodes:
        if id(e) in inner:
            continue
        v = info[id(e)][2]
        if v is not None:
            out[id(e)] = _number(v)
        elif isinstance(e, (ast.Ref, ast.Act)):
            sym = sympy.Symbol(f"{e.name}@{len(table)}", commutative=True)
            table[sym] = e
            out[id(e)] = sym
        elif isinstance(e, ast.Neg):
            out[id(e)] = -out[id(e.operand)]
        elif isinstance(e, ast.Pow):
            out[id(e)] = out[id(e.base)] ** e.exponent
        else:
            operands = _chain_operands(e, inner)
            if _CHAIN[e.op] == "+":
                out[id(e)] = sympy.Add(*(s * out[id(c)] for s, c in operands))
            else:
                out[id(e)] = sympy.Mul(*(out[id(c)] for _, c in operands))
    return out[id(nodes[-1])]


def _chain_operands(top: ast.BinOp, inner: set) -> list:
    """The operands of the sum or product chain under `top`, with signs, in source order."""
    operands, stack = [], [(1, top)]
    while stack:
        sign, e = stack.pop()
        if e is top or id(e) in inner:
            right = -sign if e.op == "-" else sign
            stack += [(right, e.right), (sign, e.left)]
        else:
            operands.append((sign, e))
    return operands


def monomials(expr) -> list[tuple[float, list]]:
    """Sum of monomials: [(coefficient, [occurrences in source order]), ...]."""
    table: dict = {}
    nodes, info = _fold(expr)
    poly = sympy.expand(_to_sympy(nodes, info, table))
    result = []
    for mono in sympy.Add.make_args(poly):
        if mono == 0:
            continue
        coef, rest = mono.as_coeff_Mul()  # as_coeff_mul would leave Float factors behind
        occ = []
        for f in sympy.Mul.make_args(rest):
            if f.is_number:  # a constant term's `rest` is 1; keep every number in the coef
                coef *= f
                continue
            base, exp = f.as_base_exp()
            if base not in table:
                raise SemanticError("only numbers and tensors may appear in an equation",
                                    span=expr.span)
            occ.extend([table[base]] * int(exp))
        occ.sort(key=lambda o: (o.span.line, o.span.column))
        result.append((_coefficient(coef, expr), occ))
    return result


def _coefficient(coef: sympy.Expr, expr) -> float:
    """A monomial's coefficient in float64; products of numbers from different places of the
    equation meet only here, so the range is checked again (at the whole right side)."""
    try:
        value = float(coef)
    except (OverflowError, TypeError):
        value = math.inf
    if math.isfinite(value) and abs(value) >= TINY:
        return value
    exact = sympy.Abs(coef)
    log10 = float(sympy.log(exact, 10).evalf()) if exact.is_positive else -math.inf
    return _checked(value, log10, expr, f"the coefficient {sympy.Float(coef, 3)} of a term "
                                         f"of this equation")
