"""Fixed linear maps built from the declared layout: image patches and linear pooling.

`patches X[n, k, h] = im2col(I, kernel = 3, stride = 1, padding = 1)` turns images
I[n, channels, height, width] into patch matrices X_i in R^{K x h} (paper eq. (5), (22));
`pool P[a, k] = average(2x2)` / `global` / `adaptive(2x2)` builds the pooling matrix P_a
in R^{a x K} (eq. (22)-(24)). Each builder declares its parameters; the numpy constructions are the
kernel's (bmdsl/kernel/layout.py), shared with the emitted modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..kernel.layout import POOL_MATRICES, conv_out, extract_patches  # noqa: F401 (re-exported)
from ..core.limits import RANGES
from ..front.params import Param, accepts, name_of, nonneg_int, positive_int, within

PATCH_PARAMS = (
    Param("images", "the name of an input tensor [n, channels, height, width]", name_of),
    Param("kernel", accepts("a positive whole number", "kernel"), within(positive_int, "kernel")),
    Param("stride", accepts("a positive whole number", "stride"),
          within(positive_int, "stride"), 1),
    Param("padding", accepts("a whole number >= 0", "padding"), within(nonneg_int, "padding"), 0),
)


@dataclass(frozen=True)
class Pool:
    """A linear pooling over a grid of positions: `matrix(grid, window) -> P [a, K]`."""

    name: str
    params: tuple[Param, ...]
    pooled_grid: Callable[[tuple[int, int], dict], tuple[int, int]]
    matrix: Callable[[tuple[int, int], dict], np.ndarray]
    description: str
    symbolic: Callable  # (rows, cols, args) -> a as a sympy formula (for the checker)


_WINDOW_WORDS = f"a window such as 2x2 (or 2 for one axis), each {RANGES['window'].words('side')}"


def _window(v) -> tuple[int, int]:
    from ..front import ast
    if isinstance(v, ast.Window):
        window = (v.rows, v.cols)
    elif isinstance(v, ast.Number) and v.value == int(v.value):
        window = (int(v.value), 1)
    else:
        raise ValueError
    if not all(side in RANGES["window"] for side in window):
        raise ValueError
    return window


def _average_grid(grid, args):
    (rows, cols), (wr, wc) = grid, args["window"]
    return rows // wr, cols // wc


def _average_size(rows, cols, args):
    import sympy
    wr, wc = args["window"]
    return sympy.floor(rows / wr) * sympy.floor(cols / wc)


def _fixed_size(cells):
    def size(rows, cols, args):
        import sympy
        R, C = cells(args)
        return sympy.Integer(R * C)
    return size


_CELLS_WORDS = f"a grid of cells such as 2x2, each {RANGES['window'].words('side')}"


POOLS: dict[str, Pool] = {
    p.name: p for p in (
        Pool("average", (Param("window", _WINDOW_WORDS, _window),),
             _average_grid, POOL_MATRICES["average"], "average over non-overlapping windows",
             _average_size),
        Pool("global", (), lambda grid, args: (1, 1), POOL_MATRICES["global"],
             "global average pooling (a = 1)", _fixed_size(lambda args: (1, 1))),
        Pool("adaptive", (Param("cells", _CELLS_WORDS, _window),),
             lambda grid, args: args["cells"], POOL_MATRICES["adaptive"],
             "average over a fixed R x C grid of cells, whatever the input grid (a = R C)",
             _fixed_size(lambda args: args["cells"])),
    )
}
