"""Biases: `bias hidden, output` (or either alone), checked against the two equations.

Neither bias needs a new derivation, because each is an old idea in the convex-network
literature (Pilanci & Ergen 2020, sec. 2: "a bias term can be absorbed by appending a column
of ones to the data"):

* **hidden** (the first layer's bias, one per unit): the layer's data tensor gets a constant
  feature s on the axis W1 contracts, so W1[d] becomes [d + 1] and A(w) = X w + s w_last.
  The bias b = s w_last is *penalized* with W1 under C (Sahiner et al. 2024, eq. (14)); the
  gates h_k get the same extra coordinate, so every pattern has an offset too. `hidden(scale
  = s)` chooses s: the penalty on b is (b / s)^2 inside ||u||_C^2, so a large s all but frees
  it (default s = 1, the usual augmentation).
* **output** (one per output channel, the last axis of the output): *not penalized*. The
  loss becomes F_b(Yhat) = min_b F(Yhat + 1 b^T), a convex function of Yhat (a partial
  minimum of a jointly convex function), and its conjugate is F* restricted to dual points
  V with 1^T V = 0 (bmdsl/atoms/offset.py): the programs, the BM factorization and the certificate
  keep their form with F_b for F.

Each kind is one entry of `BIASES`; `check(stmt, ...)` returns the model's `BiasSpec`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..front import ast
from ..core.errors import SemanticError
from ..front.params import Param, accepts, bind, positive_float, within


@dataclass(frozen=True)
class BiasSpec:
    """The model's biases. `hidden` is the constant feature s (None: no first-layer bias),
    appended to data tensor `tensor` on `axis` (whose size `size` grows by one when data is
    bound); `output` says whether the output has a free (unpenalized) offset."""
    hidden: float | None = None
    tensor: str | None = None
    axis: int | None = None
    size: str | None = None
    output: bool = False
    span: object = None

    @property
    def any(self) -> bool:
        return self.hidden is not None or self.output

    def literal(self) -> dict:
        """Plain literals for the emitted modules' SPEC: the hidden bias's constant feature
        (tensor, axis, size, value) or None, and whether the output has a free offset."""
        hidden = None if self.hidden is None else {
            "tensor": self.tensor, "axis": int(self.axis), "size": self.size,
            "value": float(self.hidden)}
        return {"hidden": hidden, "output": bool(self.output)}

    def describe(self) -> str:
        parts = []
        if self.hidden is not None:
            parts.append(f"hidden (constant feature {self.hidden:g} appended to {self.tensor} "
                         f"along {self.size}; penalized with the first-layer weight)")
        if self.output:
            parts.append("output (one per output channel; not penalized)")
        return "; ".join(parts) or "none"


NO_BIAS = BiasSpec()


@dataclass(frozen=True)
class BiasKind:
    params: tuple
    doc: str


BIASES = {
    "hidden": BiasKind((Param("scale", accepts("a positive number", "scale"),
                              within(positive_float, "scale"), 1.0),),
                       "first layer, one per unit; penalized with W1 under C"),
    "output": BiasKind((), "output, one per output channel (last axis); not penalized"),
}


def check(stmt: ast.BiasDecl, layer, output, tensors: dict, weight) -> BiasSpec:
    """The `BiasSpec` of a `bias` statement; `tensors` maps names to declared tensors (with
    roles and dims), `weight` is the first-layer weight's declaration."""
    seen: dict[str, ast.Call] = {}
    args = {}
    for call in stmt.calls:
        if call.name not in BIASES:
            raise SemanticError(f"unknown bias '{call.name}'", span=call.span,
                                hint="accepted: " + "; ".join(f"{k} ({v.doc})"
                                                              for k, v in BIASES.items()))
        if call.name in seen:
            raise SemanticError(f"'{call.name}' is named twice", span=call.span)
        seen[call.name] = call
        args[call.name] = bind(call.name, call.args, BIASES[call.name].params, what="bias",
                               span=call.span)
    spec = BiasSpec(output="output" in seen, span=stmt.span)
    if "hidden" in seen:
        tensor, axis, size = _feature(seen["hidden"].span, layer, output, tensors, weight)
        spec = BiasSpec(args["hidden"]["scale"], tensor, axis, size, spec.output, stmt.span)
    return spec


def declared(model, hidden=False, output=False) -> BiasSpec:
    """The `BiasSpec` of `bias hidden, output` for a checked model, as if declared: hidden
    False (none), True (s = 1) or the scale s; output True or False (`Model.with_bias`)."""
    from ..core.limits import RANGES
    if hidden is False or hidden is None:
        return BiasSpec(output=bool(output), span=model.bias.span)
    scale = 1.0 if hidden is True else hidden
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or \
            not float(scale) in RANGES["scale"]:
        raise SemanticError(f"the hidden bias's scale must be a number with "
                            f"{RANGES['scale'].words('scale')}, not {hidden!r}")
    tensors = {t.name: t for t in (*model.inputs, *model.derived, model.target,
                                   model.first_weight, model.second_weight)}
    tensor, axis, size = _feature(model.bias.span, model.layer, model.output, tensors,
                                  model.first_weight)
    return BiasSpec(float(scale), tensor, axis, size, bool(output), model.bias.span)


def _feature(span, layer, output, tensors, weight) -> tuple[str, int, str]:
    """Where the constant feature goes: the one data tensor W1's single index meets in the
    single term of the layer equation, whose size on that axis no other tensor uses."""
    def refuse(why):
        return SemanticError(f"a first-layer bias needs {why}", span=span,
                             hint="it is a constant feature appended to the data W1 multiplies "
                                  "(A = X w + b): MLP and CNN layers have this form; otherwise "
                                  "append the constant to your data yourself")
    if len(weight.dims) != 1:
        raise refuse(f"a first-layer weight with one axis; {weight.name} has "
                     f"{len(weight.dims)} [{', '.join(weight.dims)}]")
    if len(layer.terms) != 1:
        raise refuse(f"a layer equation with one term; it has {len(layer.terms)}")
    term = layer.terms[0]
    index = term.of_role("first_weight")[0].indices[0]
    data = [f for f in term.of_role("data") if index in f.indices]
    if len(data) != 1:
        raise refuse(f"exactly one data tensor multiplied by {weight.name} in the layer; "
                     f"found {len(data)}")
    name, axis = data[0].name, data[0].indices.index(index)
    size = tensors[name].dims[axis]
    others = sorted(t.name for t in tensors.values()
                    if size in t.dims and t.name not in (name, weight.name))
    if others:
        raise refuse(f"its feature size '{size}' to belong to {name} and {weight.name} only; "
                     f"{', '.join(others)} also use it")
    if any(f.name == name for t in output.terms for f in t.factors):
        raise refuse(f"the data tensor {name} not to appear in the output equation")
    return name, axis, size


def append_feature(bias: BiasSpec, arrays: dict, sizes: dict) -> None:
    """The hidden bias's constant feature appended to its data tensor in `arrays` (numpy), and
    its size grown by one: what binding does after patches are built."""
    import numpy as np
    if bias.hidden is None:
        return
    a = arrays[bias.tensor]
    shape = list(a.shape)
    shape[bias.axis] = 1
    arrays[bias.tensor] = np.concatenate([a, np.full(shape, bias.hidden)], axis=bias.axis)
    sizes[bias.size] = a.shape[bias.axis] + 1
