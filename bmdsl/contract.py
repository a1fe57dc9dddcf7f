"""Executing tensor networks: one einsum spec, run by numpy or torch.

An `Einsum` is a coefficient, operands (a tensor name and its index names) and the output
indices. Operands are looked up by name in a dict of arrays, so the same spec runs on numpy
arrays (CVXPY operators, certificates) and on torch tensors on any device (the trainer).
Batch axes (pattern k, unit j) are extra leading index names given at call time.
Contraction order: numpy's path optimizer plans it from the shapes once per spec and shapes
(docs/theory.md sec. 3); the plan is then replayed pairwise in either library.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Einsum:
    coef: float
    operands: tuple[tuple[str, tuple[str, ...]], ...]
    out: tuple[str, ...]

    def rename(self, mapping: dict[str, str]) -> "Einsum":
        r = lambda idx: tuple(mapping.get(i, i) for i in idx)  # noqa: E731
        return Einsum(self.coef, tuple((n, r(i)) for n, i in self.operands), r(self.out))

    def with_batch(self, batch: dict[str, tuple[str, ...]], out_batch: tuple[str, ...]) -> "Einsum":
        """Prefix operand `name` with batch indices `batch[name]`, and the output with
        `out_batch`; batch indices absent from the output are summed."""
        ops = tuple((n, batch.get(n, ()) + i) for n, i in self.operands)
        return Einsum(self.coef, ops, out_batch + self.out)

    def __call__(self, arrays: dict, backend: str = "numpy"):
        return contract(self, arrays, backend)


def _letters(spec: Einsum) -> str:
    names = []
    for _, idx in spec.operands:
        names.extend(i for i in idx if i not in names)
    names.extend(i for i in spec.out if i not in names)
    if len(names) > 52:
        raise ValueError("a tensor network with more than 52 distinct indices")
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    table = dict(zip(names, alphabet))
    ins = ",".join("".join(table[i] for i in idx) for _, idx in spec.operands)
    return ins + "->" + "".join(table[i] for i in spec.out)


INTERMEDIATE_FACTOR = 16


@lru_cache(maxsize=512)
def _plan(subscripts: str, shapes: tuple[tuple[int, ...], ...]) -> tuple:
    """Pairwise contraction path for these shapes (numpy's greedy optimizer)."""
    if len(shapes) <= 2:
        return ((tuple(range(len(shapes))), subscripts),)
    dummies = [np.broadcast_to(np.zeros((), dtype=np.float32), s) for s in shapes]
    # numpy's default caps intermediates at the largest operand, which left the CNN adjoint
    # (masks x patches x pooling x residual) one 4-operand loop, 20x slower at n = 300
    # (measured); intermediates up to INTERMEDIATE_FACTOR times it are allowed
    limit = INTERMEDIATE_FACTOR * max(math.prod(s) for s in shapes)
    _, steps = np.einsum_path(subscripts, *dummies, optimize=("greedy", limit),
                              einsum_call=True)
    # the step layout differs across numpy versions; the subscripts are its one string
    return tuple((tuple(step[0]), next(x for x in step[1:] if isinstance(x, str))) for step in steps)


def contract(spec: Einsum, arrays: dict, backend: str = "numpy"):
    """Evaluate `spec` with operands from `arrays` in numpy or torch."""
    ops = [arrays[name] for name, _ in spec.operands]
    subscripts = _letters(spec)
    if backend == "torch":
        import torch
        einsum = torch.einsum
    else:
        einsum = np.einsum
    plan = _plan(subscripts, tuple(tuple(o.shape) for o in ops))
    for positions, step in plan:
        picked = [ops[i] for i in positions]
        for i in sorted(positions, reverse=True):
            del ops[i]
        ops.append(einsum(step, *picked))
    result = ops[0]
    return result if spec.coef == 1.0 else spec.coef * result
