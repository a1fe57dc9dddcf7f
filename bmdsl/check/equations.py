"""The two equations: expanded with sympy, indices unified on a networkx tensor network.

Each equation's right side is expanded (sympy) into a sum of monomials; each monomial is a
product of tensor occurrences, i.e. one einsum. Linearity is a degree count per monomial:
the first layer must have degree 1 in the first-layer weight and 0 in everything else
trainable; the output degree 1 in act(A) and 1 in the second-layer weight (docs/theory.md
sec. 1). Index sizes are unified on a bipartite graph (tensor occurrences - indices):
an index absent from the left side is summed.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..front import ast
from ..core import limits
from ..core.errors import NotConvexifiableError, SemanticError
from .monomials import monomials
from ..core.source import Span


@dataclass(frozen=True)
class Factor:
    """One tensor occurrence in a monomial: `X[n, d]`, `W1[d]` or `act(A)[n]`."""

    name: str
    indices: tuple[str, ...]
    role: str  # data, first_weight, second_weight, act
    span: Span


@dataclass(frozen=True)
class Term:
    coef: float
    factors: tuple[Factor, ...]

    def of_role(self, role: str) -> tuple[Factor, ...]:
        return tuple(f for f in self.factors if f.role == role)


@dataclass(frozen=True)
class CheckedEquation:
    side: str  # layer or output
    lhs: str
    indices: tuple[str, ...]  # free indices, in left-side order
    dims: tuple[str, ...]  # size names of the free indices
    terms: tuple[Term, ...]
    index_sizes: tuple[tuple[str, str], ...]  # every index -> size name
    span: Span

    def size_of(self, index: str) -> str:
        return dict(self.index_sizes)[index]


# The expansion (sympy) and its limits live in monomials.py; kept here under their old names.
MAX_FACTORS, MAX_TERMS = limits.MAX_FACTORS, limits.MAX_TERMS
expand = monomials


def index_network(term: Term, dims_of) -> nx.MultiGraph:
    """Bipartite tensor network of one monomial: tensor occurrences <-> indices."""
    g = nx.MultiGraph()
    for i, f in enumerate(term.factors):
        g.add_node(("tensor", i), factor=f)
        for axis, idx in enumerate(f.indices):
            g.add_edge(("tensor", i), ("index", idx), axis=axis, size=dims_of(f.name)[axis],
                       span=f.span)
    return g


def unify_indices(term: Term, dims_of, sizes: dict[str, str]) -> None:
    """Give every index one size (recorded in `sizes`, shared across the equation's terms)."""
    g = index_network(term, dims_of)
    for node in g.nodes:
        if node[0] != "index":
            continue
        for _, tnode, data in g.edges(node, data=True):
            size = data["size"]
            have = sizes.setdefault(node[1], size)
            if have != size:
                f = g.nodes[tnode]["factor"]
                raise SemanticError(
                    f"index '{node[1]}' has size '{size}' in {f.name} (axis {data['axis']}) but "
                    f"size '{have}' elsewhere in this equation", span=data["span"],
                    hint="an index ranges over one size; use a different index letter")


def check_equation(eq: ast.Equation, roles: dict[str, str], dims_of, *, weight: str,
                   act_name: str | None, act_dims: tuple[str, ...] | None) -> CheckedEquation:
    """Expand, classify occurrences, check linearity and indices of one equation."""
    if len(set(i.name for i in eq.lhs.indices)) != len(eq.lhs.indices):
        raise SemanticError(f"an index repeats on the left side of {eq.lhs.name}",
                            span=eq.lhs.span, hint="each index of the left side names one axis "
                            "of the result: Yhat[n, o], not Yhat[n, n]")
    terms_found = monomials(eq.rhs)
    if not terms_found:
        raise NotConvexifiableError(f"the right side of '{eq.lhs.name}' is identically zero",
                                    span=eq.rhs.span)
    terms = []
    for coef, occ in terms_found:
        factors = []
        for o in occ:
            role = _role(o, roles, eq, act_name, act_dims)
            ranks = len(act_dims) if role == "act" else len(dims_of(o.name))
            if len(o.indices) != ranks:
                shape = list(act_dims if role == "act" else dims_of(o.name))
                raise SemanticError(f"'{o.name}' has {_count(ranks, 'axis', 'axes')} "
                                    f"[{', '.join(shape)}] but is written with "
                                    f"{_count(len(o.indices), 'index', 'indices')}", span=o.span,
                                    hint="write one index per axis, e.g. X[n, i] for X[n, d]")
            names = [i.name for i in o.indices]
            if len(set(names)) != len(names):
                raise SemanticError(f"an index repeats within {o.name}[...]; diagonals are not "
                                    f"supported", span=o.span, hint="give each axis its own "
                                    "index letter")
            factors.append(Factor(o.name, tuple(names), role, o.span))
        terms.append(Term(coef, tuple(factors)))
    for term in terms:
        _check_degrees(eq, term, weight)
    sizes: dict[str, str] = {}
    act_dims_of = (lambda name: act_dims if name == act_name else dims_of(name))
    for term in terms:
        unify_indices(term, act_dims_of, sizes)
        present = {i for f in term.factors for i in f.indices}
        for idx in eq.lhs.indices:
            if idx.name not in present:
                raise SemanticError(f"index '{idx.name}' of the left side does not appear in "
                                    f"every term on the right", span=idx.span,
                                    hint="each term must produce every index of the left side")
    lhs = tuple(i.name for i in eq.lhs.indices)
    return CheckedEquation(eq.side, eq.lhs.name, lhs, tuple(sizes[i] for i in lhs), tuple(terms),
                           tuple(sorted(sizes.items())), eq.span)


def _count(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _role(o, roles, eq, act_name, act_dims) -> str:
    if isinstance(o, ast.Act):
        if eq.side == "layer":
            raise NotConvexifiableError("act(...) cannot appear in the first-layer equation",
                                        span=o.span, hint="the first layer is the pre-activation "
                                        "A(W1), linear in W1; act(A) belongs in the output")
        if o.name != act_name:
            raise SemanticError(f"act({o.name}): '{o.name}' is not the first layer's tensor",
                                span=o.span, hint=f"write act({act_name})[...]")
        return "act"
    if o.name == eq.lhs.name:
        raise SemanticError(f"'{o.name}' is defined by this equation and cannot appear on its "
                            f"right side", span=o.span)
    if o.name == act_name:
        raise NotConvexifiableError(f"'{o.name}' appears without act(...)", span=o.span,
                                    hint=f"the output is linear in the activated tensor: "
                                         f"write act({o.name})[...]")
    role = roles.get(o.name)
    if role is None:
        declared = ", ".join(sorted(n for n, r in roles.items() if r in _TENSOR_ROLES))
        raise SemanticError(f"'{o.name}' is not declared", span=o.span,
                            hint=f"declared tensors: {declared}")
    if role in _NOT_A_FACTOR:
        message, hint = _NOT_A_FACTOR[role]
        raise SemanticError(message.format(name=o.name), span=o.span, hint=hint)
    return _TENSOR_ROLES[role]


# declared role -> the role its occurrences play in an equation
_TENSOR_ROLES = {"input": "data", "patches": "data", "pool": "data",
                 "first_weight": "first_weight", "second_weight": "second_weight"}
# names that are declared but may not be a factor: (message, hint)
_NOT_A_FACTOR = {
    "target": ("the target '{name}' cannot appear in an equation",
               "the target is what the output is fitted to"),
    "size": ("'{name}' is a size, not a tensor", "sizes range indices: write X[n, i] for a "
             "tensor X declared with sizes [n, d]"),
    "units": ("'{name}' is the number of units, not a tensor",
              "the units are implicit: each equation describes one unit j = 1..m"),
    "output": ("the output '{name}' cannot appear on the right side of an equation",
               "the output is defined by the output equation only"),
}


def _check_degrees(eq: ast.Equation, term: Term, weight: str) -> None:
    first, second, act = (term.of_role(r) for r in ("first_weight", "second_weight", "act"))
    if eq.side == "layer":
        if second:
            raise NotConvexifiableError(
                f"the second-layer weight '{second[0].name}' appears in the first layer",
                span=second[0].span, hint=f"the first layer is linear in '{weight}' only; "
                "a weight belongs to one layer")
        if not first:
            raise NotConvexifiableError(
                f"a term of '{eq.lhs.name}' does not contain the first-layer weight '{weight}'",
                span=term.factors[0].span if term.factors else eq.rhs.span,
                hint="the first layer must be linear in the weight (no constant terms; for a "
                     "bias, add the statement `bias hidden`)")
        if len(first) > 1:
            raise NotConvexifiableError(
                f"the first layer is not linear in '{weight}': it appears {len(first)} times in "
                f"one term", span=first[1].span, hint="write A = (data) * W1 with W1 once per term")
        return
    if first:
        raise NotConvexifiableError(
            f"the first-layer weight '{first[0].name}' appears in the output equation",
            span=first[0].span, hint="a weight belongs to one layer; the output is linear in "
            "act(A) and the second-layer weight")
    if len(act) != 1:
        span = act[1].span if act else (term.factors[0].span if term.factors else eq.rhs.span)
        raise NotConvexifiableError(
            "the output is not linear in act(...): each term must contain it exactly once "
            f"(found {len(act)})", span=span, hint="accepted form: Yhat = act(A) * data * W2")
    if len(second) != 1:
        span = second[1].span if second else act[0].span
        raise NotConvexifiableError(
            f"the output is not linear in the second-layer weight '{weight}': each term must "
            f"contain it exactly once (found {len(second)})", span=span,
            hint="accepted form: Yhat = act(A) * data * W2")
