"""The lifting of design.md section 2 as tensor networks (no data needed).

From the two checked equations:
  A(W1)      = sum_t  a_t einsum(layer data, W1)                         (pre-activation)
  Yhat(H,W2) = sum_s  b_s einsum(H, output data, W2)                     (second layer)
  L_k(Z)     = sum_{t,s} a_t b_s einsum(layer data, D_k, output data, Z) (lifted, Lemma 3.1)
where Z[w1 indices, w2 indices] replaces the product W1 * W2: the layer's left-side indices
are renamed to the indices act(A) carries in the output, its summed indices made fresh.
The adjoint L_k^*(R) is the same network with R[Yhat indices] in place of Z, contracted to
Z's indices; it gives G_k = L_k^*(grad F) of the certificate (eq. (20)).
Placeholders: W1, W2, H (activated tensor), Z, D (mask), R (output cotangent).
"""
from __future__ import annotations

from dataclasses import dataclass

from .contract import Einsum


@dataclass(frozen=True)
class Network:
    """All einsum specs of one model, over the model's index names."""

    layer: tuple[Einsum, ...]  # -> A[layer indices]
    output: tuple[Einsum, ...]  # H, W2 -> Yhat
    lifted: tuple[Einsum, ...]  # D, Z -> Yhat  (D omitted for linear)
    adjoint: tuple[Einsum, ...]  # D, R -> Z indices
    w1_indices: tuple[str, ...]  # Z's row indices (renamed W1 indices)
    w2_indices: tuple[str, ...]  # Z's column indices
    a_indices: tuple[str, ...]  # A's indices as the lifted network sees them
    y_indices: tuple[str, ...]


def _operand(f, placeholders):
    return (placeholders.get(f.role, f.name), f.indices)


def build_network(model, *, masked: bool) -> Network:
    layer_eq, out_eq = model.layer, model.output
    layer = tuple(Einsum(t.coef, tuple(_operand(f, {"first_weight": "W1"}) for f in t.factors),
                         layer_eq.indices) for t in layer_eq.terms)
    output = tuple(Einsum(t.coef, tuple(_operand(f, {"act": "H", "second_weight": "W2"})
                                        for f in t.factors), out_eq.indices)
                   for t in out_eq.terms)
    lifted, adjoint = [], []
    w1_idx = w2_idx = a_idx = None
    for s in out_eq.terms:
        act = s.of_role("act")[0]
        w2 = s.of_role("second_weight")[0]
        taken = {i for f in s.factors for i in f.indices}
        for t in layer_eq.terms:
            rename = dict(zip(layer_eq.indices, act.indices))
            for f in t.factors:
                for i in f.indices:
                    if i not in rename:
                        fresh = i
                        while fresh in taken or fresh in rename.values():
                            fresh += "'"
                        rename[i] = fresh
            w1 = t.of_role("first_weight")[0]
            z_rows = tuple(rename[i] for i in w1.indices)
            ops = [(f.name, tuple(rename[i] for i in f.indices)) for f in t.factors
                   if f.role != "first_weight"]
            if masked:
                ops.append(("D", act.indices))
            ops += [(f.name, f.indices) for f in s.factors if f.role == "data"]
            z = ("Z", z_rows + w2.indices)
            coef = t.coef * s.coef
            lifted.append(Einsum(coef, tuple(ops) + (z,), out_eq.indices))
            adjoint.append(Einsum(coef, tuple(ops) + (("R", out_eq.indices),), z[1]))
            # all terms must agree on Z's index layout: normalize to the first term's names
            if w1_idx is None:
                w1_idx, w2_idx, a_idx = z_rows, w2.indices, act.indices
            else:
                mapping = dict(zip(z_rows + w2.indices, w1_idx + w2_idx))
                mapping.update(dict(zip(act.indices, a_idx)))
                lifted[-1] = _normalize(lifted[-1], z_rows + w2.indices, w1_idx + w2_idx, taken)
                adjoint[-1] = _normalize(adjoint[-1], z_rows + w2.indices, w1_idx + w2_idx, taken)
    return Network(layer, output, tuple(lifted), tuple(adjoint), w1_idx, w2_idx, a_idx,
                   out_eq.indices)


def _normalize(spec: Einsum, have: tuple, want: tuple, taken: set) -> Einsum:
    """Rename Z's indices of a later term to the first term's (swap-safe via temporaries)."""
    if have == want:
        return spec
    tmp = {h: f"{h}#tmp" for h in have}
    spec = spec.rename(tmp)
    used = {i for _, idx in spec.operands for i in idx} | set(spec.out)
    clash = {w: f"{w}#other" for w in want if w in used}
    spec = spec.rename(clash)
    return spec.rename({f"{h}#tmp": w for h, w in zip(have, want)})
