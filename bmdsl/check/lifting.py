"""The lifting (Sahiner et al. 2024, Lemma 3.1) as tensor networks (no data needed).

From the two checked equations:
  A(W1)      = sum_t  a_t einsum(layer data, W1)                         (pre-activation)
  Yhat(H,W2) = sum_s  b_s einsum(H, output data, W2)                     (second layer)
  L_k(Z)     = sum_{t,s} a_t b_s einsum(layer data, D_k, output data, Z) (lifted, Lemma 3.1)
where Z[w1 indices, w2 indices] replaces the product W1 * W2: the layer's left-side indices
are renamed to the indices act(A) carries in the output, its summed indices made fresh.
The adjoint L_k^*(R) is the same network with R[Yhat indices] in place of Z, contracted to
Z's indices; it gives G_k = L_k^*(grad F) of the certificate (eq. (20)).

Placeholders: W1, W2, H (activated tensor), Z, D (mask), R (output cotangent). A data tensor
whose name is one of them (a user may well call an input `Z` or `D`) enters the networks
under the key `name@data` (`Network.data_keys`), so it never collides with a placeholder.
Einsum operands are positional, so index *names* only matter for display: each lifted term
keeps its own names (its output indices are the model's), while the adjoint terms are
renamed to one common set of Z indices, so that `G_k[i, o] = term_1 + term_2 + ...` reads.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.contract import Einsum

PLACEHOLDERS = ("W1", "W2", "H", "Z", "D", "R")


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
    data_keys: tuple[tuple[str, str], ...] = ()  # (data name, operand key) when renamed


def data_key(name: str) -> str:
    """The operand key of a data tensor: its name, unless that is a placeholder."""
    return f"{name}@data" if name in PLACEHOLDERS else name


def _key(f, placeholders: dict) -> str:
    return placeholders[f.role] if f.role in placeholders else data_key(f.name)


def _fresh(name: str, used: set) -> str:
    while name in used:
        name += "'"
    return name


def build_network(model, *, masked: bool) -> Network:
    layer_eq, out_eq = model.layer, model.output
    layer = tuple(Einsum(t.coef, tuple((_key(f, {"first_weight": "W1"}), f.indices)
                                       for f in t.factors), layer_eq.indices)
                  for t in layer_eq.terms)
    output = tuple(Einsum(t.coef, tuple((_key(f, {"act": "H", "second_weight": "W2"}), f.indices)
                                        for f in t.factors), out_eq.indices)
                   for t in out_eq.terms)
    lifted, adjoint = [], []
    first = None  # (Z row indices, Z column indices, A indices) of the first term
    for s in out_eq.terms:
        act = s.of_role("act")[0]
        w2 = s.of_role("second_weight")[0]
        taken = {i for f in s.factors for i in f.indices}
        for t in layer_eq.terms:
            rename = dict(zip(layer_eq.indices, act.indices))
            for f in t.factors:
                for i in f.indices:
                    if i not in rename:
                        rename[i] = _fresh(i, taken | set(rename.values()))
            w1 = t.of_role("first_weight")[0]
            z_rows = tuple(rename[i] for i in w1.indices)
            ops = [(data_key(f.name), tuple(rename[i] for i in f.indices)) for f in t.factors
                   if f.role != "first_weight"]
            if masked:
                ops.append(("D", act.indices))
            ops += [(data_key(f.name), f.indices) for f in s.factors if f.role == "data"]
            z = z_rows + w2.indices
            coef = t.coef * s.coef
            lifted.append(Einsum(coef, tuple(ops) + (("Z", z),), out_eq.indices))
            spec = Einsum(coef, tuple(ops) + (("R", out_eq.indices),), z)
            if first is None:
                first = (z_rows, w2.indices, act.indices)
            adjoint.append(_rename_out(spec, first[0] + first[1]))
    data = tuple((f.name, data_key(f.name)) for eq in (layer_eq, out_eq) for t in eq.terms
                 for f in t.factors if f.role == "data" and data_key(f.name) != f.name)
    return Network(layer, output, tuple(lifted), tuple(adjoint), first[0], first[1], first[2],
                   out_eq.indices, tuple(dict.fromkeys(data)))


def _rename_out(spec: Einsum, want: tuple) -> Einsum:
    """Rename `spec`'s output indices to `want`; other indices that clash get primes.
    (Two steps via temporaries, so that swaps such as (i, o) -> (o, i) are safe.)"""
    have = spec.out
    if have == want:
        return spec
    tmp = {h: f"{h}#{n}" for n, h in enumerate(have)}
    spec = spec.rename(tmp)
    summed = {i for _, idx in spec.operands for i in idx} - set(tmp.values())
    clash = {}
    for i in sorted(summed & set(want)):
        clash[i] = _fresh(i, summed | set(want) | set(clash.values()))
    spec = spec.rename(clash)
    return spec.rename({tmp[h]: w for h, w in zip(have, want)})
