"""The plain-literal description of a model that the torch runtime executes.

`build_spec(derivation)` turns the derivation's einsum specs (lifting.py) and the model's
declarations into a dict of str/int/float/tuples only: what `runtime/` needs, and what
`emit_torch` writes into a stand-alone module. Index names are renamed i0, i1, ... per
spec (lifting may add primes); tensor names must be identifiers (checked here, since the
emitted source repeats them). `shapes(bound)` gives the numeric shapes for given data.
"""
from __future__ import annotations

from ..atoms.norms import get_norm
from ..derive.dnorm import NormPair
from ..core.errors import SemanticError
from ..core.literals import IDENTIFIER
from .runtime.freeoutputs import free_outputs

PLACEHOLDERS = ("W1", "W2", "H", "Z", "D", "R")


def identifier(name: str) -> str:
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise SemanticError(f"the torch backend cannot use the name {name!r}: names must "
                            f"match {IDENTIFIER.pattern}")
    return name


def _renamed(spec) -> tuple:
    """(coef, ((name, (i0, i1, ..)), ...), out) with indices renamed by first appearance."""
    table = {}
    for _, idx in spec.operands:
        for i in idx:
            table.setdefault(i, f"i{len(table)}")
    for i in spec.out:
        table.setdefault(i, f"i{len(table)}")
    ops = tuple((identifier(n), tuple(table[i] for i in idx)) for n, idx in spec.operands)
    return (float(spec.coef), ops, tuple(table[i] for i in spec.out))


def build_spec(derivation) -> dict:
    model, net = derivation.model, derivation.network
    act = model.activation
    n = model.target.dims[0]
    data = [*model.inputs, *model.derived, model.target]
    for t in data:
        if identifier(t.name) in PLACEHOLDERS:
            raise SemanticError(f"the tensor name '{t.name}' is reserved by the torch backend "
                                f"({', '.join(PLACEHOLDERS)}); rename it")
    gates = act.gates if derivation.activation.uses_patterns else None
    output = tuple(_renamed(s) for s in net.output)
    return {
        "model": identifier(model.name),
        "inputs": tuple((t.name, tuple(t.dims)) for t in model.inputs if t.name != gates),
        "target": model.target.name,
        "target_dims": tuple(model.target.dims),
        "sizes": tuple((s.name, s.value + (s.name == model.bias.size))
                       for s in model.sizes if s.value is not None),
        "patches": tuple({"tensor": p.tensor, "images": identifier(p.images),
                          "kernel": int(p.kernel), "stride": int(p.stride),
                          "padding": int(p.padding), "grid": tuple(p.grid),
                          "dims": tuple(model.tensor(p.tensor).dims)} for p in model.patches),
        "pools": tuple({"tensor": p.tensor, "builder": identifier(p.builder), "grid": tuple(p.grid),
                        "args": tuple((k, tuple(_window(v))) for k, v in p.args),
                        "dims": tuple(model.tensor(p.tensor).dims)} for p in model.pools),
        "output_name": identifier(model.output.lhs),
        "dims": {"w1": tuple(model.first_weight.dims), "w2": tuple(model.second_weight.dims),
                 "a": tuple(model.layer.dims), "y": tuple(model.output.dims)},
        "layer": tuple(_renamed(s) for s in net.layer),
        "output": output,
        # the output indices that reach Yhat untouched (runtime/freeoutputs.py), a fact of
        # the specs that the emitted module reads as a literal
        "free_outputs": free_outputs({"output": output}),
        "adjoint": tuple(_renamed(s) for s in net.adjoint),
        "sample_axes": {t.name: t.dims.index(n) for t in data if n in t.dims},
        "mask_axis": model.layer.dims.index(n) if n in model.layer.dims else None,
        "activation": derivation.activation.name,
        "masked": bool(derivation.activation.uses_patterns),
        "cone": bool(derivation.activation.cone),
        "patterns": act.patterns, "seed": int(act.seed or 0), "gates": gates,
        "loss": model.loss.name,
        "loss_params": tuple((k, float(v)) for k, v in model.loss.params),
        "bias": model.bias.literal(),
        "beta": float(model.regularizer.beta), "C": model.regularizer.C,
        "R": model.regularizer.R, "units": int(model.units.value),
        # what the runtime computes for C and R: each norm entry's declared numeric form
        "norms": {"C": get_norm(model.regularizer.C).runtime_form,
                  "R": get_norm(model.regularizer.R).runtime_form},
        # the D-norm's prox (runtime/dprox.py) from the pair's registry entry, or None
        "prox": NormPair(model.regularizer.C, model.regularizer.R).rule.prox,
        # (beta/2)(||u||_C^2 + ||v||_R^2) twice differentiable: Newton's steps apply
        "smooth_regularizer": NormPair(model.regularizer.C,
                                       model.regularizer.R).smooth_regularizer,
    }


def _window(v):
    """A checked pooling argument (a window such as (2, 2)) as a tuple of ints."""
    return tuple(int(x) for x in (v if isinstance(v, (tuple, list)) else (v,)))


def shapes(bound) -> dict:
    return {"w1": bound.w1_shape, "w2": bound.w2_shape, "a": bound.a_shape,
            "y": bound.y_shape}
