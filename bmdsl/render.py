"""The derivation as text and LaTeX, built from sympy expressions.

Tensor networks become sums of products of `sympy.Indexed` objects; summed indices become
`sympy.Sum`. `sympy.latex` renders LaTeX; a small `StrPrinter` subclass renders text in
index notation (`sum_{i} X[n, i]*Z_k[i, o]`).
"""
from __future__ import annotations

import sympy
from sympy.printing.str import StrPrinter

_RENAMES = {"H": "H", "W1": "w1", "W2": "w2", "Z": "Z_k", "D": "D_k", "R": "R"}


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name.replace("'", "p"))


def network_expr(spec, rename=None, sizes=None) -> sympy.Expr:
    """One einsum spec as sum_{summed indices} coef * prod Indexed."""
    rename = rename or _RENAMES
    factors = []
    for name, idx in spec.operands:
        base = sympy.IndexedBase(rename.get(name, name))
        factors.append(base[tuple(_sym(i) for i in idx)] if idx else sympy.Symbol(rename.get(name, name)))
    expr = sympy.Mul(sympy.nsimplify(spec.coef), *factors, evaluate=False) if spec.coef != 1 \
        else sympy.Mul(*factors, evaluate=False)
    present = []
    for _, idx in spec.operands:
        present.extend(i for i in idx if i not in present)
    summed = [i for i in present if i not in spec.out]
    if summed:
        limits = [(_sym(i), 1, (sizes or {}).get(i, sympy.Symbol(f"N_{i}"))) for i in summed]
        expr = sympy.Sum(expr, *limits)
    return expr


def sum_expr(specs, rename=None, sizes=None) -> sympy.Expr:
    terms = [network_expr(s, rename, sizes) for s in specs]
    return terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)


class IndexPrinter(StrPrinter):
    """Index notation: `X[n, i]`, `sum_{i,j} (...)`."""

    def _print_Sum(self, expr):
        idx = ",".join(self._print(lim[0]) for lim in expr.limits)
        return f"sum_{{{idx}}} {self.parenthesize(expr.function, 50)}"

    def _print_Indexed(self, expr):
        return f"{self._print(expr.base.label)}[{', '.join(self._print(i) for i in expr.indices)}]"

    def _print_Mul(self, expr):
        return " * ".join(self.parenthesize(a, 50) for a in expr.args)


def text(expr) -> str:
    return IndexPrinter().doprint(expr)


def latex(expr) -> str:
    return sympy.latex(expr)
