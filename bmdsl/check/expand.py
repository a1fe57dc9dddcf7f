"""`architecture NAME`: splice a built-in architecture into a model.

Built-ins are ordinary `.bm` files in bmdsl/architectures/, written in the language itself.
Rule: the architecture's statements come first; a statement of the user's file that declares
a name the architecture also declares (a tensor, size, units, an equation's left side), or
that a model has only once (target, units, weights, the layer or output equation,
activation, loss, regularize), replaces the architecture's statement. So `architecture mlp`
followed by `units m = 8` changes the width and nothing else.
"""
from __future__ import annotations

from importlib import resources

from ..front import ast
from ..core.errors import SemanticError
from ..core.source import Source


def builtin_names() -> list[str]:
    files = resources.files("bmdsl.architectures")
    return sorted(p.name[:-3] for p in files.iterdir() if p.name.endswith(".bm"))


def builtin_text(name: str) -> str:
    return resources.files("bmdsl.architectures").joinpath(f"{name}.bm").read_text()


# Statements a model has exactly once. The user's replaces the architecture's whatever names
# it uses, so `units k = 3` after `architecture mlp` is the width, not a second units count.
SINGLETONS = {ast.TargetDecl: "target", ast.UnitsDecl: "units", ast.WeightsDecl: "weights",
              ast.ActivationDecl: "activation", ast.LossDecl: "loss",
              ast.RegularizeDecl: "regularize"}


def declared_keys(stmt) -> set[str]:
    """The names a statement declares, plus its kind for a once-per-model statement (what a
    user statement may replace). Kinds contain a space, so no name can collide with them."""
    keys: set[str] = set()
    if isinstance(stmt, ast.SizeDecl):
        keys = {i.name for i in stmt.items}
    elif isinstance(stmt, ast.InputDecl):
        keys = {t.name for t in stmt.tensors}
    elif isinstance(stmt, (ast.TargetDecl, ast.PatchesDecl, ast.PoolDecl)):
        keys = {stmt.tensor.name}
    elif isinstance(stmt, ast.UnitsDecl):
        keys = {stmt.name}
    elif isinstance(stmt, ast.WeightsDecl):
        keys = {stmt.first.name, stmt.second.name}
    elif isinstance(stmt, ast.Equation):
        keys = {stmt.lhs.name, f"{stmt.side} equation"}
    if type(stmt) in SINGLETONS:
        keys.add(f"{SINGLETONS[type(stmt)]} statement")
    return keys


def expand(program: ast.Program) -> tuple[list[tuple[object, Source]], str | None]:
    """Statements paired with the source they came from, and the architecture used."""
    from ..front.syntax import parse_program

    own = [(s, program.source) for s in program.statements if not isinstance(s, ast.Architecture)]
    archs = program.of_type(ast.Architecture)
    if not archs:
        return own, None
    if len(archs) > 1:
        raise SemanticError("only one architecture statement is allowed", span=archs[1].span,
                            source=program.source)
    arch = archs[0]
    if arch.name not in builtin_names():
        raise SemanticError(f"unknown architecture '{arch.name}'", span=arch.span,
                            source=program.source,
                            hint=f"accepted: {', '.join(builtin_names())}")
    base = parse_program(builtin_text(arch.name), f"<architecture {arch.name}>")
    mine = set().union(*(declared_keys(s) for s, _ in own)) if own else set()
    kept = [(s, base.source) for s in base.statements if not (declared_keys(s) & mine)]
    return kept + own, arch.name
