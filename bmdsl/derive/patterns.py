"""Activation patterns: the masks D_k of gated ReLU and ReLU (docs/theory.md sec. 2).

The first layer's pre-activation A(w) is linear in the (flattened) weight w in R^p, so
flattened A(w) = M w with M the (N x p) arrangement matrix.  A pattern is the 0/1 mask
D = 1[A(w) >= 0] (paper eq. (3): {D_j} = {diag(1[Xu >= 0])}).  Gated ReLU takes masks
from sampled gates h_k; ReLU needs the set of all patterns, which we either sample (the
paper's experiments use P = 100..256 sampled arrangements) or enumerate exactly.

Conventions (shared by every function here):
* masks are float64 0/1 arrays of shape [P, *A_shape]; gates are [P, *p_shape];
* a zero pre-activation counts as active, 1[0 >= 0] = 1, exactly as in eq. (3);
* the all-zero mask is kept (see `unique_masks`): it makes L_k == 0, so its Z_k is 0 at
  the optimum and costs only variables, while keeping it makes pattern counts equal the
  number of arrangement cells and sampled sets comparable with exact ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.errors import BmdslError
from ..kernel.masks import sample_gates as kernel_gates, unique_masks  # noqa: F401

# Relative tolerance for "zero row", "same hyperplane", "rank" and "line lies on a
# hyperplane" decisions.  Rows are normalised first, so it is an angle (radians): data
# that are parallel only to 1e-9 are treated as parallel (their sliver cells are below
# what float64 pre-activations resolve anyway).
TOL = 1e-9


class PatternCountError(BmdslError, ValueError):
    """Exact enumeration would exceed the cap (the arrangement bound, docs/theory.md sec. 2)."""

    kind = "too many patterns"


def arrangement_bound(n_hyperplanes: int, rank: int) -> int:
    """Upper bound on the number of cells: 2 * sum_{k<r} C(N-1, k).

    Cover/Zaslavsky count for N hyperplanes in general position through 0 in R^r; any
    central arrangement of N distinct hyperplanes of rank r has at most this many cells
    (paper after eq. (3), P <= 2r(e(n-1)/r)^r; the sum is often quoted without its factor 2).
    No hyperplane (or rank 0): a single cell, the whole space.
    """
    if n_hyperplanes <= 0 or rank <= 0:
        return 1
    return 2 * sum(math.comb(n_hyperplanes - 1, k) for k in range(rank))


@dataclass(frozen=True, eq=False)
class PatternSet:
    """Masks [P, *A_shape] and, for each, a gate weight [P, *p_shape] that produces it.

    `source` is "sampled" or "exact"; `seed` the generator seed (None when exact);
    `requested` the number of gates drawn (sampled) or the cell count (exact).
    """

    masks: np.ndarray
    gates: np.ndarray
    source: str
    seed: int | None = None
    requested: int | None = None

    def __post_init__(self):
        # Read-only views (no copy: masks can be large), so the set cannot be edited
        # through this object and a saved solution cannot drift from its patterns.
        for name in ("masks", "gates"):
            view = np.asarray(getattr(self, name), dtype=np.float64).view()
            view.setflags(write=False)
            object.__setattr__(self, name, view)
        if self.masks.shape[0] != self.gates.shape[0]:
            raise ValueError(f"{self.masks.shape[0]} masks but {self.gates.shape[0]} gates")

    @property
    def count(self) -> int:
        return int(self.masks.shape[0])

    def without_zero(self) -> "PatternSet":
        """The same set minus the all-zero mask (it contributes nothing to the model)."""
        keep = self.masks.reshape(self.count, -1).any(axis=1)
        return PatternSet(self.masks[keep], self.gates[keep], self.source, self.seed,
                          self.requested)

    def gates_only(self) -> "Gates":
        """The gates without the masks: what another process needs to make the masks
        of its own samples (a shard), drawn once here."""
        return Gates(self.gates, self.source, self.seed, self.requested)

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        """Arrays for np.savez; loadable with allow_pickle=False (seed None stored as -1)."""
        return {"masks": self.masks, "gates": self.gates, "source": np.array(self.source),
                "seed": np.array(-1 if self.seed is None else int(self.seed)),
                "requested": np.array(-1 if self.requested is None else int(self.requested))}

    @classmethod
    def from_npz_dict(cls, d) -> "PatternSet":
        seed = int(d["seed"])
        requested = int(d["requested"]) if "requested" in d else -1
        return cls(np.asarray(d["masks"]), np.asarray(d["gates"]), str(d["source"]),
                   None if seed < 0 else seed, None if requested < 0 else requested)


@dataclass(frozen=True, eq=False)
class Gates:
    """A PatternSet's gates [P, *p_shape] without its masks. `on(layer)` makes the masks
    1[A(h_k) >= 0] of other samples -- a shard of the samples the set was made for -- which
    are exactly the rows of the set's masks for those samples: every mask of a PatternSet
    is masks_from_gates of its gate (sampled, exact and user gates alike)."""

    gates: np.ndarray
    source: str
    seed: int | None = None
    requested: int | None = None

    def on(self, layer) -> PatternSet:
        return PatternSet(masks_from_gates(layer, self.gates), self.gates, self.source,
                          self.seed, self.requested)


def sample_gates(p_shape, count: int, seed: int) -> np.ndarray:
    """`count` i.i.d. N(0, 1) gates of shape p_shape from numpy.random.default_rng(seed).

    The same (p_shape, count, seed) always gives the same gates, and a larger count
    extends a smaller one (the draws are made in one standard_normal call, row-major).
    """
    p_shape = (int(p_shape),) if np.isscalar(p_shape) else tuple(int(s) for s in p_shape)
    return kernel_gates(p_shape, count, seed)


def masks_from_gates(layer: Callable, gates) -> np.ndarray:
    """Masks 1[A(h_k) >= 0] for a batch of gates; `layer` maps [P, *p_shape] -> [P, *A_shape]."""
    gates = np.asarray(gates, dtype=np.float64)
    pre = layer(gates)
    pre = np.asarray(pre.detach().cpu() if hasattr(pre, "detach") else pre)  # torch layers
    if pre.shape[:1] != gates.shape[:1]:
        raise ValueError(f"layer returned shape {pre.shape} for {gates.shape[0]} gates")
    return (pre >= 0).astype(np.float64)


def sample_patterns(layer: Callable, p_shape, count: int, seed: int, *,
                    unique: bool = True) -> PatternSet:
    """Masks of `count` Gaussian gates (sample_gates), de-duplicated unless unique=False."""
    masks = masks_from_gates(layer, gates := sample_gates(p_shape, count, seed))
    if unique:
        masks, kept = unique_masks(masks)
        gates = gates[kept]
    return PatternSet(masks, gates, "sampled", int(seed), int(count))
