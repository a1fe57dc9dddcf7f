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

import numpy as np

from ..kernel.einsum import contract as kernel_contract, letters, torch_einsum_on_numpy


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


INTERMEDIATE_FACTOR = 16


def contract(spec: Einsum, arrays: dict, backend: str = "numpy"):
    """Evaluate `spec` with operands from `arrays` in numpy or torch ("numpy_by_torch":
    numpy arrays contracted by torch.einsum, kernel/einsum.torch_einsum_on_numpy)."""
    if backend == "torch":
        import torch
        einsum = torch.einsum
    elif backend == "numpy_by_torch":    # numpy in and out, torch's faster einsum inside
        einsum = torch_einsum_on_numpy
    else:
        einsum = np.einsum
    # numpy's default caps intermediates at the largest operand, which left the CNN adjoint
    # (masks x patches x pooling x residual) one 4-operand loop, 20x slower at n = 300
    # (measured); intermediates up to INTERMEDIATE_FACTOR times it are allowed
    return kernel_contract(spec.coef, letters(spec.operands, spec.out),
                           [arrays[name] for name, _ in spec.operands], einsum,
                           INTERMEDIATE_FACTOR)
