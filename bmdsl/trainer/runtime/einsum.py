"""Einsum specs executed in torch: a spec is (coef, ((name, indices), ...), out indices).

Batch axes (pattern k, unit j, basis vector a) are extra leading index names added at
call time (`with_batch`), as bmdsl.contract does. torch.einsum contracts left to right
unless opt_einsum is installed, so the pairwise order is planned here once per subscripts
and shapes by numpy's greedy optimizer and replayed in torch.
"""
from functools import lru_cache

import numpy as np

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def with_batch(spec, batch, out_batch):
    """Prefix operand `name` with the indices batch[name] and the output with out_batch;
    batch indices absent from the output are summed."""
    coef, ops, out = spec
    return (coef, tuple((n, tuple(batch.get(n, ())) + tuple(i)) for n, i in ops),
            tuple(out_batch) + tuple(out))


def subscripts(spec) -> str:
    """Letters for the indices in order of first appearance: 'ab,b->a'."""
    _, ops, out = spec
    order = []
    for _, idx in ops:
        order += [i for i in idx if i not in order]
    order += [i for i in out if i not in order]
    if len(order) > len(LETTERS):
        raise ValueError(f"an einsum with {len(order)} distinct indices (at most 52)")
    table = dict(zip(order, LETTERS))
    return ",".join("".join(table[i] for i in idx) for _, idx in ops) + "->" + \
        "".join(table[i] for i in out)


@lru_cache(maxsize=1024)
def plan(subs: str, shapes: tuple) -> tuple:
    """Pairwise steps (positions, subscripts) of numpy's greedy contraction path."""
    inputs, out = subs.split("->")
    terms = inputs.split(",")
    if len(terms) <= 2:
        return ((tuple(range(len(terms))), subs),)
    dummies = [np.broadcast_to(np.zeros((), dtype=np.float32), s) for s in shapes]
    path = np.einsum_path(subs, *dummies, optimize="greedy")[0][1:]
    steps = []
    for positions in path:
        picked = [terms[i] for i in positions]
        rest = [t for i, t in enumerate(terms) if i not in positions]
        keep = set("".join(rest)) | set(out)
        seen = "".join(dict.fromkeys("".join(picked)))
        result = out if not rest else "".join(c for c in seen if c in keep)
        steps.append((tuple(positions), ",".join(picked) + "->" + result))
        terms = rest + [result]
    return tuple(steps)


def run(spec, arrays):
    """coef * einsum(spec) with operands looked up by name in `arrays` (torch tensors)."""
    import torch
    subs = subscripts(spec)
    ops = [arrays[name] for name, _ in spec[1]]
    for positions, step in plan(subs, tuple(tuple(o.shape) for o in ops)):
        picked = [ops[i] for i in positions]
        ops = [o for i, o in enumerate(ops) if i not in positions]
        ops.append(torch.einsum(step, *picked))
    return ops[0] if spec[0] == 1.0 else spec[0] * ops[0]


def run_terms(specs, arrays, batch=None, out_batch=()):
    """The sum over terms of one equation, each with the same batch layout."""
    total = None
    for spec in specs:
        r = run(with_batch(spec, batch or {}, out_batch), arrays)
        total = r if total is None else total + r
    return total
