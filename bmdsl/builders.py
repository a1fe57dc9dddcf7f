"""Fixed linear maps built from the declared layout: image patches and linear pooling.

`patches X[n, k, h] = im2col(I, kernel = 3, stride = 1, padding = 1)` turns images
I[n, channels, height, width] into patch matrices X_i in R^{K x h} (paper eq. (5), (22));
`pool P[a, k] = average(2x2)` / `global` builds the pooling matrix P_a in R^{a x K}
(eq. (22)-(24)). Each builder declares its parameters and its numpy construction; adding a
pooling is one entry in `POOLS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .limits import RANGES
from .params import Param, accepts, name_of, nonneg_int, positive_int, within


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Number of kernel positions along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def extract_patches(images: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """[n, ch, H, W] -> [n, K, ch*kernel*kernel]; K runs row-major over the output grid and
    each patch is flattened as (channel, row, column)."""
    n, ch, H, W = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = conv_out(H, kernel, stride, padding), conv_out(W, kernel, stride, padding)
    out = np.empty((n, oh * ow, ch * kernel * kernel), dtype=images.dtype)
    for r in range(oh):  # loops over the small output grid only; data axes stay vectorized
        for c in range(ow):
            block = padded[:, :, r * stride:r * stride + kernel, c * stride:c * stride + kernel]
            out[:, r * ow + c, :] = block.reshape(n, -1)
    return out


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


_WINDOW_WORDS = f"a window such as 2x2 (or 2 for one axis), each {RANGES['window'].words('side')}"


def _window(v) -> tuple[int, int]:
    from . import ast
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


def _average_matrix(grid, args) -> np.ndarray:
    """Non-overlapping average pooling; positions that do not fill a window are dropped."""
    rows, cols = grid
    wr, wc = args["window"]
    orows, ocols = rows // wr, cols // wc
    P = np.zeros((orows * ocols, rows * cols))
    for a_r in range(orows):
        for a_c in range(ocols):
            for r in range(a_r * wr, (a_r + 1) * wr):
                for c in range(a_c * wc, (a_c + 1) * wc):
                    P[a_r * ocols + a_c, r * cols + c] = 1.0 / (wr * wc)
    return P


POOLS: dict[str, Pool] = {
    p.name: p for p in (
        Pool("average", (Param("window", _WINDOW_WORDS, _window),),
             _average_grid, _average_matrix, "average over non-overlapping windows"),
        Pool("global", (), lambda grid, args: (1, 1),
             lambda grid, args: np.full((1, grid[0] * grid[1]), 1.0 / (grid[0] * grid[1])),
             "global average pooling (a = 1)"),
    )
}
