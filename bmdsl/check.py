"""AST -> checked `Model`: the semantic pass.

Order: splice the architecture, collect declarations (names, sizes, tensors), check the two
equations (linearity with sympy, indices on the tensor network), then the activation, loss
and regularizer against their registries. Every error carries the source it points into.
"""
from __future__ import annotations

from . import ast
from .activations import ACTIVATIONS
from .declarations import Declarations
from .equations import check_equation
from .errors import BmdslError, SemanticError
from .expand import expand
from .model import ActivationSpec, LossSpec, Model, RegularizerSpec
from .params import Param, bind, one_of, positive_float
from .source import Span

_FORM = ("a model needs: input, target, units, weights W1[...], W2[...], "
         "layer A[...] = ..., output Yhat[...] = ..., activation, loss, regularize")


def check(program: ast.Program) -> Model:
    """Check a parsed program; raise a `BmdslError` naming file, line and column."""
    current = [program.source]
    try:
        return _check(program, current)
    except BmdslError as exc:
        raise exc.with_source(current[0]) from None


def _check(program: ast.Program, current: list) -> Model:
    statements, architecture = expand(program)
    decl = Declarations()
    found: dict[type, tuple] = {}
    end = Span(program.span.end_line, 1, program.span.end_line, 2)

    for stmt, source in statements:  # explicit sizes first: inputs may use them before
        if isinstance(stmt, ast.SizeDecl):
            current[0] = source
            decl.size_decl(stmt)
    for stmt, source in statements:  # then the other declarations, in source order
        current[0] = source
        if type(stmt) in (ast.TargetDecl, ast.UnitsDecl, ast.WeightsDecl, ast.ActivationDecl,
                          ast.LossDecl, ast.RegularizeDecl):
            if type(stmt) in found:
                first = found[type(stmt)][0].span
                raise SemanticError(f"a second '{_keyword(stmt)}' statement (the first is at "
                                    f"line {first.line})", span=stmt.span,
                                    hint=f"a model has one '{_keyword(stmt)}' statement")
            found[type(stmt)] = (stmt, source)
        if isinstance(stmt, ast.InputDecl):
            for t in stmt.tensors:
                decl.tensor(t, "input", "input", binds_sizes=True)
        elif isinstance(stmt, ast.TargetDecl):
            decl.tensor(stmt.tensor, "target", "target", binds_sizes=True)
        elif isinstance(stmt, ast.UnitsDecl):
            decl.units_decl(stmt)
    # patches derive sizes from inputs, pools from patches, and weights may use any size
    for kind, handle in ((ast.PatchesDecl, decl.patches_decl), (ast.PoolDecl, decl.pool_decl),
                         (ast.WeightsDecl, decl.weights_decl)):
        for stmt, source in statements:
            current[0] = source
            if isinstance(stmt, kind):
                handle(stmt)

    current[0] = program.source
    for kind, what in ((ast.TargetDecl, "target"), (ast.UnitsDecl, "units"),
                       (ast.WeightsDecl, "weights"), (ast.ActivationDecl, "activation"),
                       (ast.LossDecl, "loss"), (ast.RegularizeDecl, "regularize")):
        if kind not in found:
            raise SemanticError(f"missing '{what}' statement", span=end, hint=_FORM)
    equations = {k: [(s, src) for s, src in statements if isinstance(s, ast.Equation) and s.kind == k]
                 for k in ("layer", "output")}
    for kind, eqs in equations.items():
        if not eqs:
            raise SemanticError(f"missing '{kind}' equation", span=end, hint=_FORM)
        if len(eqs) > 1:
            current[0] = eqs[1][1]
            raise SemanticError(f"a second '{kind}' equation (one is allowed)", span=eqs[1][0].span)

    weights = found[ast.WeightsDecl][0]
    roles = {n: t.role for n, t in decl.tensors.items()}
    dims_of = lambda name: decl.tensors[name].dims  # noqa: E731
    layer_stmt, current[0] = equations["layer"][0]
    decl.claim(layer_stmt.lhs.name, layer_stmt.lhs.span, "equation")
    layer = check_equation(layer_stmt, roles, dims_of, weight=weights.first.name,
                           act_name=None, act_dims=None)
    if not layer.terms or not any(t.of_role("first_weight") for t in layer.terms):
        raise SemanticError(f"'{weights.first.name}' does not appear in the first layer",
                            span=layer_stmt.span)
    output_stmt, current[0] = equations["output"][0]
    decl.claim(output_stmt.lhs.name, output_stmt.lhs.span, "equation")
    output = check_equation(output_stmt, roles, dims_of, weight=weights.second.name,
                            act_name=layer.lhs, act_dims=layer.dims)

    target_stmt, current[0] = found[ast.TargetDecl]
    target = decl.tensors[target_stmt.tensor.name]
    if target.dims != output.dims:
        raise SemanticError(f"the target {target.name}{list(target.dims)} and the output "
                            f"{output.lhs}{list(output.dims)} have different shapes",
                            span=target_stmt.span, hint="the output must have the target's sizes")
    _check_all_used(decl, layer, output, statements, current)

    act_stmt, current[0] = found[ast.ActivationDecl]
    activation = _activation(act_stmt, decl)
    loss_stmt, current[0] = found[ast.LossDecl]
    loss = _loss(loss_stmt)
    reg_stmt, current[0] = found[ast.RegularizeDecl]
    regularizer = _regularizer(reg_stmt)
    current[0] = program.source

    units = decl.units
    return Model(
        name=program.name, source=program.source, architecture=architecture,
        sizes=tuple(decl.sizes.values()),
        inputs=tuple(t for t in decl.tensors.values() if t.role == "input"),
        derived=tuple(t for t in decl.tensors.values() if t.role in ("patches", "pool")),
        target=target, units=units,
        first_weight=decl.tensors[weights.first.name],
        second_weight=decl.tensors[weights.second.name],
        patches=tuple(decl.patches), pools=tuple(decl.pools),
        layer=layer, output=output, activation=activation, loss=loss, regularizer=regularizer)


def _keyword(stmt) -> str:
    return {ast.TargetDecl: "target", ast.UnitsDecl: "units", ast.WeightsDecl: "weights",
            ast.ActivationDecl: "activation", ast.LossDecl: "loss",
            ast.RegularizeDecl: "regularize"}[type(stmt)]


def _check_all_used(decl, layer, output, statements, current) -> None:
    """Every declared data tensor is used by an equation (or as images / gates)."""
    used = {f.name for eq in (layer, output) for t in eq.terms for f in t.factors}
    used |= {p.images for p in decl.patches}
    for stmt, source in statements:
        if isinstance(stmt, ast.ActivationDecl):
            used |= {a.value.name for a in stmt.call.args if isinstance(a.value, ast.Name)}
    for name, t in decl.tensors.items():
        if t.role in ("input", "patches", "pool") and name not in used:
            current[0] = next(src for s, src in statements
                              if name in _declares(s))
            raise SemanticError(f"'{name}' is declared but never used", span=t.span,
                                hint="use it in an equation, or remove the declaration")


def _declares(stmt) -> set:
    from .expand import declared_keys
    return declared_keys(stmt)


def _activation(stmt: ast.ActivationDecl, decl: Declarations) -> ActivationSpec:
    call = stmt.call
    act = ACTIVATIONS.get(call.name)
    if act is None:
        raise SemanticError(f"unknown activation '{call.name}'", span=call.span,
                            hint=f"accepted: {', '.join(ACTIVATIONS)}")
    args = bind(call.name, call.args, act.params, what="activation", span=call.span)
    gates = args.get("gates")
    if gates is not None:
        explicit = {a.name for a in call.args if a.name}
        if "patterns" in explicit or "seed" in explicit:
            raise SemanticError("give either gates = TENSOR or patterns/seed, not both",
                                span=call.span)
        t = decl.tensors.get(gates)
        if t is None or t.role != "input":
            raise SemanticError(f"gates '{gates}' is not an input tensor", span=call.span,
                                hint="declare it: input G[g, <first-layer weight sizes>]")
        w1 = next(x for x in decl.tensors.values() if x.role == "first_weight")
        if t.dims[1:] != w1.dims:
            raise SemanticError(f"gates '{gates}' must have shape [count, {', '.join(w1.dims)}] "
                                f"(one gate per pattern, shaped like {w1.name})", span=t.span)
        args["patterns"] = None
    return ActivationSpec(call.name, args.get("patterns"), args.get("seed", 0), gates, stmt.span)


def _loss(stmt: ast.LossDecl) -> LossSpec:
    from .losses import LOSSES
    call = stmt.call
    entry = LOSSES.get(call.name)
    if entry is None:
        raise SemanticError(f"unknown loss '{call.name}'", span=call.span,
                            hint=f"accepted: {', '.join(LOSSES)}")
    spec = tuple(Param(name, "a positive number", positive_float, default)
                 for name, default in entry.param_defaults)
    args = bind(call.name, call.args, spec, what="loss", span=call.span)
    return LossSpec(call.name, tuple(args.items()), stmt.span)


def _regularizer(stmt: ast.RegularizeDecl) -> RegularizerSpec:
    from .norms import NORMS
    norms = tuple(NORMS)
    spec = (Param("beta", "a positive number", positive_float),
            Param("C", f"one of {', '.join(norms)}", one_of(*norms), "l2"),
            Param("R", f"one of {', '.join(norms)}", one_of(*norms), "l2"))
    args = bind("regularize", stmt.args, spec, what="statement", span=stmt.span)
    return RegularizerSpec(args["beta"], args["C"], args["R"], stmt.span)
