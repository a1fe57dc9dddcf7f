"""`bmdsl check`: the model's summary in plain text.

Each line says what the checker understood and where it comes from: a size and where it is
bound (by data, a `size` statement, or derived by patches / pooling), the weights with p and
q (the sides of the lifted Z, docs/theory.md sec. 2), the two equations with their summed indices
made explicit, the activation and where its patterns come from, loss, regularizer and whether
the convex program is exactly tractable, and the least memory it can take against the budget
(memory.py; a model that cannot fit whatever the data is refused). A statement spliced in
from a built-in architecture says so ("line 4 of architecture mlp") rather than giving a
line number into another file.
"""
from __future__ import annotations

from .tractability import convex_status


def _shape(t) -> str:
    return f"{t.name}[{', '.join(t.dims)}]" if t.dims else t.name


def _factor(f) -> str:
    name = f"act({f.name})" if f.role == "act" else f.name
    return f"{name}[{', '.join(f.indices)}]" if f.indices else name


def equation_text(eq) -> str:
    """`A[n] = sum_i X[n, i] * W1[i]`: the checked equation, expanded, with each term's
    summed indices (on the right, absent from the left) written out."""
    parts = []
    for k, term in enumerate(eq.terms):
        summed = list(dict.fromkeys(i for f in term.factors for i in f.indices
                                    if i not in eq.indices))
        coef = abs(term.coef)
        body = " * ".join(([] if coef == 1 else [f"{coef:g}"]) +
                          [_factor(f) for f in term.factors])
        body = (f"sum_{{{', '.join(summed)}}} " if summed else "") + (body or f"{coef:g}")
        sign = "-" if term.coef < 0 else "+"
        parts.append((f"-{body}" if sign == "-" else body) if k == 0 else f"{sign} {body}")
    lhs = f"{eq.lhs}[{', '.join(eq.indices)}]" if eq.indices else eq.lhs
    return f"{lhs} = {' '.join(parts)}"


def _value(v) -> str:
    """A pooling argument as written: the window (2, 2) is 2x2."""
    if isinstance(v, tuple) and len(v) == 2:
        return f"{v[0]}x{v[1]}"
    return str(v)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, each as wide as its widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def memory_line(model) -> str:
    """The least memory binding and training can take (footprint.model_least: n = 1, sizes
    from data at 1) against the budget; MemoryBudgetError when no data can make it fit."""
    from ..core.footprint import model_least, require_model
    from ..core.memory import human, resolve
    require_model(model)
    least = model_least(model)
    limit, origin = resolve()
    total = {stage: sum(e.nbytes for e in est) for stage, est in least.items()}
    return (f"at least {human(total['bind'])} to bind and {human(total['trainer'])} to train "
            f"(n = 1 sample, sizes from data at 1); budget {human(limit)} ({origin})")


def summarize(model) -> str:
    home = model.source.path
    where = lambda span: f"({span.where(home)})"  # noqa: E731

    sizes = []
    for s in model.sizes:
        if s.name.endswith(("_rows", "_cols")) and s.formula is not None:
            continue  # patch-grid internals; shown through the sizes that use them
        value = f"= {model.symbolic(s.name)}" if (s.value or s.formula is not None) else ""
        sizes.append(("  " + s.name, value, s.origin, where(s.span)))

    rows = [("units:", f"{model.units.name} = {model.units.value}", where(model.units.span))]
    for label, t, letter in (("first layer:", model.first_weight, "p"),
                             ("second layer:", model.second_weight, "q")):
        rows.append((label, f"{_shape(t)}  ({letter} = {model.numel(t.dims)})", where(t.span)))
    rows += [("input:", _shape(t), where(t.span)) for t in model.inputs]
    rows.append(("target:", _shape(model.target), where(model.target.span)))
    for p in model.patches:
        rows.append(("patches:", f"{p.tensor} = im2col({p.images}, kernel = {p.kernel}, "
                     f"stride = {p.stride}, padding = {p.padding})",
                     where(model.tensor(p.tensor).span)))
    for p in model.pools:
        args = ", ".join(_value(v) for _, v in p.args)
        call = f"{p.builder}({args})" if args else p.builder
        rows.append(("pool:", f"{p.tensor} = {call} over the positions {p.positions}",
                     where(model.tensor(p.tensor).span)))
    rows.append(("layer:", equation_text(model.layer), where(model.layer.span)))
    rows.append(("output:", equation_text(model.output), where(model.output.span)))
    act, r = model.activation, model.regularizer
    rows.append(("activation:", f"{act.name}; patterns: {act.pattern_source}", where(act.span)))
    rows.append(("loss:", str(model.loss), where(model.loss.span)))
    rows.append(("regularizer:", f"beta = {r.beta:g}, C = {r.C}, R = {r.R}", where(r.span)))
    if model.bias.any:
        rows.append(("bias:", model.bias.describe(), where(model.bias.span)))
    rows.append(("convex:", convex_status(model), ""))

    head = f"model {model.name}" + (f"  (architecture {model.architecture})"
                                    if model.architecture else "")
    # outside the table: its long text would push the table's "(line N)" column aside
    memory = f"{'memory:':<{max(len(r[0]) for r in rows)}}  {memory_line(model)}"
    return "\n".join([head, "sizes:", *_table(sizes), *_table(rows), memory])
