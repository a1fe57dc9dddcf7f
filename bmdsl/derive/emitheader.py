"""The model-specific opening of an emitted module: the derivation spelled for this model.

`model_section(derivation)` gives comment lines a reader can check against `bmdsl derive`:
the data and weights, the maps A(W1), the output and the adjoint L_k^*(R) as sums over
named indices (Sahiner et al. 2024, eq. (14)), the activation and its cones, the loss and
the regularizer (eq. (16)). Every name from the model file goes through `literals.name`
(the identifier rule; lifting's primes become a trailing `_`); every number through
float/int; the rest is bmdsl's own registry text.
"""
from __future__ import annotations

from .dnorm import NormPair
from ..core.literals import name as _name


def _index(i: str) -> str:
    return _name(i.replace("'", "_"))


def _tensor(n: str, idx) -> str:
    return f"{_name(n)}[{', '.join(map(_index, idx))}]" if idx else _name(n)


def equation(lhs: str, terms) -> str:
    """`lhs[out] = c * sum_{contracted} T1[..] T2[..]` for the einsum terms of one map."""
    parts = []
    for t in terms:
        inner = {i for _, idx in t.operands for i in idx} - set(t.out)
        order = [i for _, idx in t.operands for i in idx]
        summed = sorted(inner, key=order.index)
        coef = "" if float(t.coef) == 1.0 else f"{float(t.coef)!r} * "
        total = f"sum_{{{', '.join(map(_index, summed))}}} " if summed else ""
        parts.append(coef + total + " ".join(_tensor(n, i) for n, i in t.operands))
    return f"{_tensor(lhs, terms[0].out)} = " + " + ".join(parts)


def model_section(derivation) -> list[str]:
    """Comment lines (without '# ') describing this model's derivation."""
    model, net, act = derivation.model, derivation.network, derivation.activation
    reg, loss = model.regularizer, model.loss
    params = ", ".join(f"{_name(k)} = {float(v)!r}" for k, v in loss.params)
    pattern = model.activation.patterns
    masks = ("" if not act.uses_patterns else
             f"; masks from the gates {_name(model.activation.gates)}" if model.activation.gates
             else "; masks of all patterns (pass those of `bmdsl solve`)" if pattern == "exact"
             else f"; masks of {int(pattern)} sampled gates (seed {int(model.activation.seed)}),"
                  " repeats dropped")
    from ..atoms.losses import LOSSES
    lines = [
        f"model {_name(model.name)}: as derived by bmdsl (compare `bmdsl derive`)",
        "data        " + ", ".join(_tensor(t.name, t.dims)
                                   for t in [*model.inputs, model.target]),
        f"weights     {_tensor('W1', model.first_weight.dims)} (u_kj), "
        f"{_tensor('W2', model.second_weight.dims)} (v_kj), "
        f"{int(model.units.value)} units per pattern",
        "layer       " + equation("A", net.layer),
        "output      " + equation("Yhat", net.output) + "   (H = act(A), summed over k, j)",
        "adjoint     " + equation("G", net.adjoint) + "   (L_k^*(R))",
        f"activation  {act.description}{masks}",
        f"cones       {'(2 D_k - 1) * A(u_kj) >= 0 for every unit' if act.cone else 'none'}",
        f"loss        {_name(loss.name)}{f'({params})' if params else ''}: "
        f"{LOSSES[loss.name].doc}, summed over entries",
        f"regularizer (beta / 2) sum_kj (||u_kj||_{_name(reg.C)}^2 + ||v_kj||_{_name(reg.R)}^2),"
        f" beta = {float(reg.beta)!r}",
        f"convex form min_Z F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||_D, D-norm of "
        f"({_name(reg.C)}, {_name(reg.R)}): {NormPair(reg.C, reg.R).rule.note}",
    ]
    return lines
