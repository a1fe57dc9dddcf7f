"""AST -> checked `Model`: the semantic pass.

Order: splice the architecture, collect declarations (names, sizes, tensors), check the two
equations (linearity with sympy, indices on the tensor network), then the activation, loss
and regularizer against their registries. Every error carries the source it points into.
"""
from __future__ import annotations


from ..front import ast
from ..atoms.activations import ACTIVATIONS
from .declarations import Declarations
from .equations import check_equation
from ..core.errors import BmdslError, SemanticError
from .expand import SINGLETONS, declared_keys, expand
from ..core.limits import BATCH_RESERVE, EINSUM_LETTERS, MAX_EINSUM_INDICES
from .model import ActivationSpec, LossSpec, Model, RegularizerSpec
from ..front.params import Param, accepts, bind, one_of, positive_float, within
from ..core.source import Span

_FORM = ("a model needs: input, target, units, weights W1[...], W2[...], "
         "layer A[...] = ..., output Yhat[...] = ..., activation, loss, regularize")


def check(program: ast.Program) -> Model:
    """Check a parsed program; raise a `BmdslError` naming file, line and column."""
    current = [program.source]
    try:
        return _check(program, current)
    except BmdslError as exc:
        if current[0] is not program.source and exc.source is None:
            arch = program.of_type(ast.Architecture)[0]
            spliced = (f"this statement comes from 'architecture {arch.name}' (line "
                       f"{arch.span.line} of {program.source.path}); write your own to replace it")
            exc.hint = f"{exc.hint}; {spliced}" if exc.hint else spliced
        raise exc.with_source(current[0]) from None


def _check(program: ast.Program, current: list) -> Model:
    statements, architecture = expand(program)
    home = program.source.path
    decl = Declarations()
    found = _singletons(statements, current)
    current[0] = program.source  # a missing statement is reported at the model's header
    header = Span(program.span.line, program.span.column, program.span.line,
                  program.span.column + len("model"), home)
    for statement, what in SINGLETONS.items():
        if statement not in found:
            raise SemanticError(f"model '{program.name}' has no '{what}' statement",
                                span=header, hint=_FORM)
    equations = {k: [(s, src) for s, src in statements
                     if isinstance(s, ast.Equation) and s.side == k] for k in ("layer", "output")}
    for side, eqs in equations.items():
        if not eqs:
            raise SemanticError(f"model '{program.name}' has no '{side}' equation", span=header,
                                hint=_FORM)
        if len(eqs) > 1:
            current[0] = eqs[1][1]
            raise SemanticError(f"a second '{side}' equation (the first is at "
                                f"{eqs[0][0].span.where(eqs[1][0].span.file)})",
                                span=eqs[1][0].span, hint="a model has one layer and one output "
                                "equation")
    _declare(statements, decl, current)

    weights = found[ast.WeightsDecl][0]
    roles = {n: t.role for n, t in decl.tensors.items()}
    roles.update({n: "size" for n in decl.sizes})
    roles[decl.units.name] = "units"
    dims_of = lambda name: decl.tensors[name].dims  # noqa: E731
    (layer_stmt, layer_src), (output_stmt, output_src) = (equations["layer"][0],
                                                          equations["output"][0])
    for stmt, current[0] in ((layer_stmt, layer_src), (output_stmt, output_src)):
        decl.claim(stmt.lhs.name, stmt.lhs.span, "equation")
    roles[output_stmt.lhs.name] = "output"
    current[0] = layer_src
    layer = check_equation(layer_stmt, roles, dims_of, weight=weights.first.name,
                           act_name=None, act_dims=None)
    if not layer.terms or not any(t.of_role("first_weight") for t in layer.terms):
        raise SemanticError(f"'{weights.first.name}' does not appear in the first layer",
                            span=layer_stmt.span)
    current[0] = output_src
    output = check_equation(output_stmt, roles, dims_of, weight=weights.second.name,
                            act_name=layer.lhs, act_dims=layer.dims)

    target_stmt, current[0] = found[ast.TargetDecl]
    target = decl.tensors[target_stmt.tensor.name]
    if target.dims != output.dims:
        raise SemanticError(f"the target {target.name}[{', '.join(target.dims)}] and the "
                            f"output {output.lhs}[{', '.join(output.dims)}] have different sizes",
                            span=target_stmt.span, hint="the output must have the target's sizes")
    _check_all_used(decl, layer, output, statements, current)
    _check_einsum_indices(layer, output, (layer_stmt, layer_src), (output_stmt, output_src),
                          current)

    act_stmt, current[0] = found[ast.ActivationDecl]
    activation = _activation(act_stmt, decl)
    loss_stmt, current[0] = found[ast.LossDecl]
    loss = _loss(loss_stmt)
    reg_stmt, current[0] = found[ast.RegularizeDecl]
    regularizer = _regularizer(reg_stmt)
    bias = _bias(statements, layer, output, decl, weights, current)
    current[0] = program.source

    return Model(
        name=program.name, source=program.source, architecture=architecture,
        sizes=tuple(decl.sizes.values()),
        inputs=tuple(t for t in decl.tensors.values() if t.role == "input"),
        derived=tuple(t for t in decl.tensors.values() if t.role in ("patches", "pool")),
        target=target, units=decl.units,
        first_weight=decl.tensors[weights.first.name],
        second_weight=decl.tensors[weights.second.name],
        patches=tuple(decl.patches), pools=tuple(decl.pools),
        layer=layer, output=output, activation=activation, loss=loss, regularizer=regularizer,
        bias=bias)


def _singletons(statements, current) -> dict[type, tuple]:
    """The once-per-model statements by type; a second one is an error."""
    found: dict[type, tuple] = {}
    for stmt, source in statements:
        if type(stmt) not in SINGLETONS:
            continue
        word = SINGLETONS[type(stmt)]
        if type(stmt) in found:
            current[0] = source
            first = found[type(stmt)][0].span
            raise SemanticError(f"a second '{word}' statement (the first is at "
                                f"{first.where(stmt.span.file)})", span=stmt.span,
                                hint=f"a model has one '{word}' statement")
        found[type(stmt)] = (stmt, source)
    return found


def _declare(statements, decl: Declarations, current) -> None:
    """Sizes first (a tensor may use a size declared below it), then inputs and target, then
    the patches and pools that derive sizes from them, then the tensors that use derived
    sizes (e.g. a user pooling matrix Q[a, k] over patch positions k), then the weights."""
    derived = set()
    for stmt, _ in statements:
        if isinstance(stmt, ast.PatchesDecl):
            derived |= {d.name for d in stmt.tensor.dims[1:]}
        elif isinstance(stmt, ast.PoolDecl):
            derived |= {d.name for d in stmt.tensor.dims[:1]}
    data = []  # (shape, role, source) of inputs and target, in source order
    for stmt, source in statements:
        current[0] = source
        if isinstance(stmt, ast.SizeDecl):
            decl.size_decl(stmt)
        elif isinstance(stmt, ast.InputDecl):
            data += [(t, "input", source) for t in stmt.tensors]
        elif isinstance(stmt, ast.TargetDecl):
            data.append((stmt.tensor, "target", source))
    later = [item for item in data if {d.name for d in item[0].dims} & derived]

    def declare(items) -> None:
        for shape, role, source in items:
            current[0] = source
            decl.tensor(shape, role, role, binds_sizes=True)

    declare(item for item in data if item not in later)
    for statement, handle in ((ast.UnitsDecl, decl.units_decl), (ast.PatchesDecl, decl.patches_decl),
                              (ast.PoolDecl, decl.pool_decl)):
        for stmt, source in statements:
            if isinstance(stmt, statement):
                current[0] = source
                handle(stmt)
    declare(later)
    for stmt, source in statements:
        if isinstance(stmt, ast.WeightsDecl):
            current[0] = source
            decl.weights_decl(stmt)


def _check_einsum_indices(layer, output, layer_at, output_at, current) -> None:
    """Every einsum the backends will run names its indices with letters (52 in numpy and
    torch, some kept for batch axes): a model that needs more is rejected here, not in
    `solve` (limits.MAX_EINSUM_INDICES)."""
    from types import SimpleNamespace

    from .lifting import build_network
    net = build_network(SimpleNamespace(layer=layer, output=output), masked=True)
    for specs, (stmt, source), what in (
            (net.layer, layer_at, "the layer equation"),
            (net.output, output_at, "the output equation"),
            (net.lifted + net.adjoint, output_at, "the lifted network (the layer substituted "
                                                  "into the output, Lemma 3.1)")):
        for spec in specs:
            names = {i for _, idx in spec.operands for i in idx} | set(spec.out)
            if len(names) > MAX_EINSUM_INDICES:
                current[0] = source
                raise SemanticError(
                    f"{what} needs {len(names)} distinct indices in one tensor contraction; at "
                    f"most {MAX_EINSUM_INDICES} are supported", span=stmt.span,
                    hint=f"einsum names indices with {EINSUM_LETTERS} letters and the backends "
                         f"keep {BATCH_RESERVE} for batch axes; use fewer axes or indices")


def _check_all_used(decl, layer, output, statements, current) -> None:
    """Every declared data tensor is used by an equation (or as images / gates), and every
    size declared by `size` by some tensor."""
    used = {f.name for eq in (layer, output) for t in eq.terms for f in t.factors}
    used |= {p.images for p in decl.patches}
    for stmt, source in statements:
        if isinstance(stmt, ast.ActivationDecl):
            used |= {a.value.name for a in stmt.call.args if isinstance(a.value, ast.Name)}
    for name, t in decl.tensors.items():
        if t.role in ("input", "patches", "pool") and name not in used:
            current[0] = next(src for s, src in statements if name in declared_keys(s))
            raise SemanticError(f"'{name}' is declared but never used", span=t.span,
                                hint="use it in an equation, or remove the declaration")
    dims = {d for t in decl.tensors.values() for d in t.dims}
    for stmt, source in statements:
        for item in (stmt.items if isinstance(stmt, ast.SizeDecl) else ()):
            if item.name not in dims:
                current[0] = source
                raise SemanticError(f"size '{item.name}' is declared but no tensor uses it",
                                    span=item.span, hint="use it in a tensor's shape, or remove "
                                    "the declaration")


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
        if not t.dims or t.dims[1:] != w1.dims:
            raise SemanticError(f"gates '{gates}' must have shape [count, {', '.join(w1.dims)}] "
                                f"(one gate per pattern, shaped like {w1.name})", span=t.span)
        args["patterns"] = None
    return ActivationSpec(call.name, args.get("patterns"), args.get("seed", 0), gates, stmt.span)


def _loss(stmt: ast.LossDecl) -> LossSpec:
    from ..atoms.losses import LOSSES
    call = stmt.call
    entry = LOSSES.get(call.name)
    if entry is None:
        raise SemanticError(f"unknown loss '{call.name}'", span=call.span,
                            hint=f"accepted: {', '.join(LOSSES)}")
    spec = entry.language_params()     # the loss registry's own ranges (losses.py)
    args = bind(call.name, call.args, spec, what="loss", span=call.span)
    return LossSpec(call.name, tuple(args.items()), stmt.span)


def _bias(statements, layer, output, decl, weights, current):
    """The `bias` statement (at most one; none: no biases), checked by bmdsl/atoms/bias.py."""
    from ..atoms import bias
    found = [(s, src) for s, src in statements if isinstance(s, ast.BiasDecl)]
    if not found:
        return bias.NO_BIAS
    if len(found) > 1:
        current[0] = found[1][1]
        raise SemanticError(f"a second 'bias' statement (the first is at "
                            f"{found[0][0].span.where(found[1][0].span.file)})",
                            span=found[1][0].span, hint="name both in one: bias hidden, output")
    stmt, current[0] = found[0]
    return bias.check(stmt, layer, output, decl.tensors, decl.tensors[weights.first.name])


def _regularizer(stmt: ast.RegularizeDecl) -> RegularizerSpec:
    from ..atoms.norms import NORMS
    norms = tuple(NORMS)
    spec = (Param("beta", accepts("a positive number", "beta"), within(positive_float, "beta")),
            Param("C", f"one of {', '.join(norms)}", one_of(*norms), "l2"),
            Param("R", f"one of {', '.join(norms)}", one_of(*norms), "l2"))
    args = bind("regularize", stmt.args, spec, what="statement", span=stmt.span)
    return RegularizerSpec(args["beta"], args["C"], args["R"], stmt.span)
