"""Binding data to a derivation: validated arrays, sizes, masks and the numeric maps.

`Derivation.bind(data)` returns a `Bound` problem: the single numeric object both backends
and the certificates lower from. Data is checked against the declared sizes (one clear
`DataError` per mismatch, NaN/inf or empty input); patches and pooling matrices are built
from the declared layout; masks D_k come from sampled gates, user gates, exact enumeration,
or a saved `PatternSet`.
"""
from __future__ import annotations

import numpy as np

from .builders import POOLS, conv_out, extract_patches
from .errors import DataError


def validate(model, data: dict) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Arrays for every input and the target (float64) and every size's value."""
    arrays, sizes = {}, {s.name: s.value for s in model.sizes if s.value is not None}
    origin = {}
    needed = [t for t in (*model.inputs, model.target)]
    missing = [t.name for t in needed if t.name not in data]
    if missing:
        raise DataError(f"missing data for {', '.join(missing)}; the model needs "
                        f"{', '.join(t.name + str(list(t.dims)) for t in needed)}",
                        hint=f"given: {', '.join(sorted(data)) or 'nothing'}", source=model.source)
    for t in needed:
        where = dict(span=t.span, source=model.source)  # errors point at the declaration
        try:
            a = np.asarray(data[t.name], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"data for '{t.name}' is not numeric", **where) from None
        if a.size == 0:
            raise DataError(f"'{t.name}' is empty (shape {list(a.shape)})", **where)
        if t.dims and a.ndim == len(t.dims) - 1 and t.role == "target" and t.dims[-1] in sizes \
                and sizes[t.dims[-1]] == 1:
            a = a[..., None]
        if a.ndim != len(t.dims):
            raise DataError(f"'{t.name}' has {a.ndim} axes {list(a.shape)} but the model "
                            f"declares {t.name}[{', '.join(t.dims)}]", **where)
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"'{t.name}' contains {int(bad.sum())} NaN or infinite value(s), "
                            f"the first at index {list(first)}", **where)
        for axis, (dim, n) in enumerate(zip(t.dims, a.shape)):
            if dim in sizes and sizes[dim] != n:
                how = origin.get(dim) or f"'size {dim} = {sizes[dim]}'"
                raise DataError(f"'{t.name}' axis {axis} ({dim}) has length {n}, but {dim} = "
                                f"{sizes[dim]} from {how}", **where)
            sizes.setdefault(dim, n)
            origin.setdefault(dim, f"'{t.name}' axis {axis}")
        arrays[t.name] = a
    _derived(model, arrays, sizes)
    for t in needed:  # inputs may use sizes the patches or pooling derive (e.g. a user P[a, k])
        for axis, (dim, n) in enumerate(zip(t.dims, arrays[t.name].shape)):
            if sizes[dim] != n:
                raise DataError(f"'{t.name}' axis {axis} ({dim}) has length {n}, but {dim} = "
                                f"{sizes[dim]} is derived from the layout", span=t.span,
                                source=model.source)
    for s in model.sizes:
        if sizes.get(s.name, 0) <= 0:
            raise DataError(f"size '{s.name}' is {sizes.get(s.name)} for this data; it must be "
                            f"positive ({s.origin})")
    return arrays, sizes


def _derived(model, arrays: dict, sizes: dict) -> None:
    """Patches and pooling matrices, and the sizes they define."""
    for p in model.patches:
        images = arrays[p.images]
        _, ch, H, W = images.shape
        rows, cols = (conv_out(H, p.kernel, p.stride, p.padding),
                      conv_out(W, p.kernel, p.stride, p.padding))
        if rows <= 0 or cols <= 0:
            raise DataError(f"images '{p.images}' of size {H}x{W} are smaller than the kernel "
                            f"{p.kernel} (with padding {p.padding})")
        arrays[p.tensor] = extract_patches(images, p.kernel, p.stride, p.padding)
        sizes[p.grid[0]], sizes[p.grid[1]] = rows, cols
        t = model.tensor(p.tensor).dims
        sizes[t[1]], sizes[t[2]] = rows * cols, ch * p.kernel * p.kernel
    for p in model.pools:
        grid = (sizes[p.grid[0]], sizes[p.grid[1]])
        args = dict(p.args)
        P = POOLS[p.kind].matrix(grid, args)
        if P.shape[0] == 0:
            raise DataError(f"pooling '{p.tensor}' leaves no cells on a {grid[0]}x{grid[1]} grid")
        arrays[p.tensor] = P
        sizes[model.tensor(p.tensor).dims[0]] = P.shape[0]
