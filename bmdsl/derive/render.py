"""The derivation as text and LaTeX, built from sympy expressions.

A tensor network (an `Einsum`) becomes a sympy expression: a product of `sympy.Indexed`
objects times its coefficient, inside a `sympy.Sum` over its summed indices (their ranges are
the model's size symbols, so the expression is the symbolic object, not just a string).
Operands are shown under display names (`Names`: e.g. the placeholder Z as `Z_k`, H as
`act(A_j)`); two small printers render index notation, `sum_{i} X[n, i] * W1_j[i]` as text
and `\\sum_{i} X[n,i]\\,W_{1,j}[i]` as LaTeX (ranges omitted for readability).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter


# display name -> (text, LaTeX); keys are operand keys (see lifting.PLACEHOLDERS)
Names = dict[str, tuple[str, str]]



def latex_name(name: str) -> str:
    """A tensor name in LaTeX: W1 -> W_{1}, Yhat -> \\hat{Y}, X -> X."""
    if name == "Yhat":
        return r"\hat{Y}"
    m = re.fullmatch(r"([A-Za-z]+?)_?(\d+)", name)
    if m:
        return f"{m.group(1)}_{{{m.group(2)}}}"
    return name if len(name) == 1 else rf"\mathrm{{{name}}}"


def unit_latex(name: str, sub: str) -> str:
    """A per-unit tensor in LaTeX: (W1, j) -> W_{1j}, (A, j) -> A_{j}."""
    m = re.fullmatch(r"([A-Za-z]+?)_?(\d+)", name)
    if m:
        return f"{m.group(1)}_{{{m.group(2)}{sub}}}"
    return f"{latex_name(name)}_{{{sub}}}"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "^": r"\^{}", "{": r"\{", "}": r"\}",
                "#": r"\#", "%": r"\%", "&": r"\&", "$": r"\$", "~": r"\~{}"}


def tex_text(s: str) -> str:
    """Plain text made safe inside LaTeX's \\text{...}."""
    return "".join(_TEX_ESCAPES.get(c, c) for c in s)


def network_expr(spec, index_sizes: dict | None = None) -> sympy.Expr:
    """One einsum spec as sum_{summed indices} coef * prod Indexed (labels = operand keys)."""
    sizes = index_sizes or {}
    factors = [sympy.IndexedBase(name)[tuple(sympy.Symbol(i) for i in idx)] if idx
               else sympy.Symbol(name) for name, idx in spec.operands]
    coef = sympy.nsimplify(spec.coef)
    expr = sympy.Mul(*([coef] if coef != 1 else []), *factors, evaluate=False)
    present = []
    for _, idx in spec.operands:
        present.extend(i for i in idx if i not in present)
    summed = [i for i in present if i not in spec.out]
    if summed:
        limits = [(sympy.Symbol(i), 1, sizes.get(i, sympy.Symbol(f"N_{i}"))) for i in summed]
        expr = sympy.Sum(expr, *limits)
    return expr


def sum_expr(specs, index_sizes: dict | None = None) -> sympy.Expr:
    terms = [network_expr(s, index_sizes) for s in specs]
    return terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)


class IndexPrinter(StrPrinter):
    """Index notation: `X[n, i]`, `sum_{i,j} X[n, i] * Z_k[i, j]`."""

    def __init__(self, names: Names | None = None):
        super().__init__()
        self.names = names or {}

    def _name(self, label) -> str:
        return self.names.get(str(label), (str(label), None))[0]

    def _print_Symbol(self, expr):
        return self._name(expr.name) if expr.name in self.names else expr.name

    def _print_Sum(self, expr):
        idx = ",".join(lim[0].name for lim in expr.limits)
        body = self._print(expr.function)
        return f"sum_{{{idx}}} " + (f"({body})" if isinstance(expr.function, sympy.Add) else body)

    def _print_Indexed(self, expr):
        return f"{self._name(expr.base.label)}[{', '.join(i.name for i in expr.indices)}]"

    def _print_Mul(self, expr):
        return " * ".join(self.parenthesize(a, 50) for a in expr.args)

    def _print_Add(self, expr, order=None):
        return " + ".join(self._print(a) for a in expr.args)

    def _print_Pow(self, expr, rational=False):
        return f"{self.parenthesize(expr.base, 60)}^{self.parenthesize(expr.exp, 60)}"


class IndexLatexPrinter(LatexPrinter):
    """Index notation in LaTeX: `X[n,i]`, `\\sum_{i,j} X[n,i]\\, Z_k[i,j]`."""

    def __init__(self, names: Names | None = None):
        super().__init__()
        self.names = names or {}

    def _name(self, label) -> str:
        return self.names.get(str(label), (None, latex_name(str(label))))[1]

    def _print_Symbol(self, expr, style="plain"):
        return self._name(expr.name) if expr.name in self.names else super()._print_Symbol(expr)

    def _print_Sum(self, expr):
        idx = ",".join(lim[0].name for lim in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sympy.Add):
            body = rf"\left({body}\right)"
        return rf"\sum_{{{idx}}} {body}"

    def _print_Indexed(self, expr):
        return f"{self._name(expr.base.label)}[{','.join(i.name for i in expr.indices)}]"

    def _print_Mul(self, expr):
        return r"\, ".join(self.parenthesize(a, 50) for a in expr.args)

    def _print_Add(self, expr, order=None):
        return " + ".join(self._print(a) for a in expr.args)


def text(expr, names: Names | None = None) -> str:
    return IndexPrinter(names).doprint(expr)


def latex(expr, names: Names | None = None) -> str:
    return IndexLatexPrinter(names).doprint(expr)


def size_latex(expr) -> str:
    """A size formula in LaTeX (`c d + d^{2}`)."""
    return sympy.latex(sympy.sympify(expr))


# -- layout of the derivation's sections -------------------------------------------------
@dataclass(frozen=True)
class Section:
    title: str
    reference: str  # the paper's equation numbers, "" when none
    lines: tuple[tuple[str, str], ...]  # (text, LaTeX); either may be "" (omitted there)


def sections_text(header: str, sections) -> str:
    out = [header]
    for n, s in enumerate(sections, 1):
        out.append(f"\n{n}. {s.title}" + (f"  [{s.reference}]" if s.reference else ""))
        out.extend(f"   {t}" for t, _ in s.lines if t)
    return "\n".join(out)


def sections_latex(sections, environment: str = "align*", math: str = "") -> str:
    """`\\begin{align*}...` (a document), or `$$\\begin{aligned}...$$` (Jupyter/MathJax)."""
    out = [math + rf"\begin{{{environment}}}"]
    for s in sections:
        ref = rf" \quad \text{{[{tex_text(s.reference)}]}}" if s.reference else ""
        out.append(rf"&\textbf{{{tex_text(s.title)}}}{ref} \\")
        out.extend(rf"&\quad {tex} \\" for _, tex in s.lines if tex)
    out.append(rf"\end{{{environment}}}" + math)
    return "\n".join(out)


# -- Jupyter: bound models and training results as Markdown tables ------------------------
def _cell(value) -> str:
    """A table cell: floats to 6 significant digits, '|' escaped (it would split the row)."""
    if isinstance(value, float):
        value = f"{value:.6g}"
    return str(value).replace("|", r"\|").replace("\n", " ")


def markdown_table(title: str, rows) -> str:
    """`**title**` over a two-column Markdown table of (what, value) rows; rows whose value
    is None are left out (e.g. no cone violation without ReLU). Used by `_repr_markdown_`."""
    out = [f"**{_cell(title)}**", "", "| | |", "|---|---|"]
    out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows if v is not None]
    return "\n".join(out)
