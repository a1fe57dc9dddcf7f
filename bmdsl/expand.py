"""`architecture NAME`: splice a built-in architecture into a model.

Built-ins are ordinary `.bm` files in bmdsl/architectures/, written in the language itself.
Rule: the architecture's statements come first; a statement of the user's file that declares
a name the architecture also declares (a tensor, size, units, an equation's left side, or the
activation / loss / regularize statement) replaces the architecture's statement. So
`architecture mlp` followed by `units m = 8` changes the width and nothing else.
"""
from __future__ import annotations

from importlib import resources

from . import ast
from .errors import SemanticError
from .source import Source


def builtin_names() -> list[str]:
    files = resources.files("bmdsl.architectures")
    return sorted(p.name[:-3] for p in files.iterdir() if p.name.endswith(".bm"))


def builtin_text(name: str) -> str:
    return resources.files("bmdsl.architectures").joinpath(f"{name}.bm").read_text()


def declared_keys(stmt) -> set[str]:
    """The names a statement declares (what a user statement may replace)."""
    if isinstance(stmt, ast.SizeDecl):
        return {i.name for i in stmt.items}
    if isinstance(stmt, ast.InputDecl):
        return {t.name for t in stmt.tensors}
    if isinstance(stmt, (ast.TargetDecl, ast.PatchesDecl, ast.PoolDecl)):
        return {stmt.tensor.name}
    if isinstance(stmt, ast.UnitsDecl):
        return {stmt.name}
    if isinstance(stmt, ast.WeightsDecl):
        return {stmt.first.name, stmt.second.name}
    if isinstance(stmt, ast.Equation):
        return {stmt.lhs.name}
    return {type(stmt).__name__}  # singleton statements: activation, loss, regularize


def expand(program: ast.Program) -> tuple[list[tuple[object, Source]], str | None]:
    """Statements paired with the source they came from, and the architecture used."""
    from .syntax import parse_program

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
