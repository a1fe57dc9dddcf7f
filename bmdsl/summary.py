"""`bmdsl check`: the model's summary in plain text."""
from __future__ import annotations

from .tractability import convex_status


def _shape(model, t) -> str:
    dims = ", ".join(t.dims)
    return f"{t.name}[{dims}]" if dims else t.name


def summarize(model) -> str:
    out = [f"model {model.name}" + (f"  (architecture {model.architecture})"
                                    if model.architecture else "")]
    out.append("sizes:")
    for s in model.sizes:
        if s.name.endswith(("_rows", "_cols")) and s.formula is not None:
            continue  # patch-grid internals; shown through the sizes that use them
        value = model.symbolic(s.name)
        shown = f" = {value}" if (s.value is not None or s.formula is not None) else ""
        out.append(f"  {s.name:<8}{shown:<22} {s.origin} (line {s.span.line})")
    out.append(f"units:        {model.units.name} = {model.units.value}")
    for role, t in (("first layer", model.first_weight), ("second layer", model.second_weight)):
        size = model.numel(t.dims)
        letter = "p" if role == "first layer" else "q"
        out.append(f"{role + ':':<14}{_shape(model, t)}  ({letter} = {size})")
    out.append(f"inputs:       {', '.join(_shape(model, t) for t in model.inputs)}")
    out.append(f"target:       {_shape(model, model.target)}")
    for p in model.patches:
        out.append(f"patches:      {p.tensor} from {p.images} (kernel {p.kernel}, stride {p.stride}, "
                   f"padding {p.padding})")
    for p in model.pools:
        args = ", ".join(f"{k} = {v}" for k, v in p.args)
        out.append(f"pool:         {p.tensor} = {p.kind}({args}) over {p.positions}")
    out.append(f"layer:        {model.layer.lhs}[{', '.join(model.layer.indices)}]")
    out.append(f"output:       {model.output.lhs}[{', '.join(model.output.indices)}]")
    out.append(f"activation:   {model.activation.name}; patterns: {model.activation.pattern_source}")
    out.append(f"loss:         {model.loss}")
    r = model.regularizer
    out.append(f"regularizer:  beta = {r.beta:g}, C = {r.C}, R = {r.R}")
    out.append(f"convex:       {convex_status(model)}")
    return "\n".join(out)
