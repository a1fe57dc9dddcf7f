"""Einsum specs contracted pairwise in numpy or torch, in the order numpy's greedy path
optimizer plans once per subscripts and shapes (torch.einsum alone contracts left to
right). A spec is (coef, ((name, indices), ...), out indices); batch axes (pattern k,
unit j) are extra leading index names added at call time (`with_batch`).
"""
from functools import lru_cache

import numpy as np

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def letters(operands, out) -> str:
    """Subscripts with letters for the index names in order of first appearance."""
    order = []
    for _, idx in operands:
        order += [i for i in idx if i not in order]
    order += [i for i in out if i not in order]
    if len(order) > len(LETTERS):
        raise ValueError(f"a tensor network with {len(order)} distinct indices (at most 52)")
    table = dict(zip(order, LETTERS))
    return ",".join("".join(table[i] for i in idx) for _, idx in operands) + "->" + \
        "".join(table[i] for i in out)


def with_batch(spec, batch, out_batch):
    """Prefix operand `name` with the indices batch[name] and the output with out_batch;
    batch indices absent from the output are summed."""
    coef, ops, out = spec
    return (coef, tuple((n, tuple(batch.get(n, ())) + tuple(i)) for n, i in ops),
            tuple(out_batch) + tuple(out))


@lru_cache(maxsize=1024)
def contraction_plan(subscripts, shapes, factor=None):
    """Pairwise steps (positions, subscripts) of numpy's greedy path; intermediates up to
    `factor` times the largest operand (None: numpy's default, the largest operand)."""
    if len(shapes) <= 2:
        return ((tuple(range(len(shapes))), subscripts),)
    dummies = [np.broadcast_to(np.zeros((), dtype=np.float32), s) for s in shapes]
    optimize = "greedy" if factor is None else \
        ("greedy", factor * max(int(np.prod(s, dtype=np.int64)) for s in shapes))
    _, steps = np.einsum_path(subscripts, *dummies, optimize=optimize, einsum_call=True)
    if factor is None and any(len(step[0]) > 2 for step in steps):
        # The cap left a step of 3+ operands, which torch.einsum contracts left to right
        # and np.einsum (unoptimized) as one nested loop: measured on the digits CNN's
        # adjoint X D P R, a [k, n, o, b, r] intermediate (2.4 GB, 17 s) where pairwise
        # steps without the cap make at most 5x the largest operand (2.4 s).
        _, steps = np.einsum_path(subscripts, *dummies, optimize=("greedy", 2 ** 62),
                                  einsum_call=True)
    # the step layout differs across numpy versions; the subscripts are its one string
    return tuple((tuple(step[0]), next(x for x in step[1:] if isinstance(x, str)))
                 for step in steps)


def contract(coef, subscripts, ops, einsum=np.einsum, factor=None):
    """coef * einsum(subscripts, *ops), replaying the planned pairwise steps."""
    ops = list(ops)
    shapes = tuple(tuple(o.shape) for o in ops)
    for positions, step in contraction_plan(subscripts, shapes, factor):
        picked = [ops[i] for i in positions]
        ops = [o for i, o in enumerate(ops) if i not in positions]
        ops.append(einsum(step, *picked))
    return ops[0] if coef == 1.0 else coef * ops[0]


def torch_einsum_on_numpy(subscripts, *ops):
    """np.einsum(subscripts, *ops) in float64, computed by torch.einsum on zero-copy views
    (other dtypes, read-only arrays and negative strides, which torch does not take, are
    copied first): one thread of torch contracted the n = 2000 self-attention
    certificate's predictions several times faster than numpy (docs/performance.md)."""
    import torch
    arrays = [np.asarray(o, dtype=np.float64) for o in ops]
    views = [torch.from_numpy(o if o.flags.writeable and min(o.strides, default=0) >= 0
                              else np.array(o)) for o in arrays]
    return torch.einsum(subscripts, *views).numpy()


def contract_terms(terms, arrays):
    """numpy: sum over terms (coef, operand names, letter subscripts) of coef * einsum."""
    total = None
    for coef, names, subscripts in terms:
        r = contract(coef, subscripts, [arrays[n] for n in names])
        total = r if total is None else total + r
    return total


@lru_cache(maxsize=4096)
def _planned(spec, batch, out_batch):
    """(coef, operand names, subscripts) of a spec with its batch layout (batch as sorted
    items): cached, as a block-by-block pass calls the same spec hundreds of times (the
    specs are tuples: spec.build_spec writes them so)."""
    coef, ops, out = with_batch(spec, dict(batch), out_batch)
    return coef, tuple(n for n, _ in ops), letters(ops, out)


def run_terms(specs, arrays, batch=None, out_batch=()):
    """torch: the sum over the terms of one equation, each with the same batch layout."""
    import torch
    total = None
    for spec in specs:
        coef, names, subscripts = _planned(spec, tuple(sorted((batch or {}).items())),
                                           tuple(out_batch))
        r = contract(coef, subscripts, [arrays[n] for n in names], torch.einsum)
        total = r if total is None else total + r
    return total
