"""Binding data to a derivation: validated arrays, sizes, masks and the numeric maps.

`Derivation.bind(data)` returns a `BoundModel` problem: the single numeric object both backends
and the certificates lower from. Data is checked against the declared sizes (one clear
`DataError` per mismatch, NaN/inf or empty input); patches and pooling matrices are built
from the declared layout; masks D_k come from sampled gates, user gates, exact enumeration,
or a saved `PatternSet`.
"""
from __future__ import annotations

import numpy as np

from ..atoms.bias import append_feature
from ..atoms.builders import POOLS, conv_out, extract_patches
from ..core.errors import DataError


def validate(model, data: dict) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Arrays for every input and the target (float64) and every size's value."""
    arrays, sizes = {}, {s.name: s.value for s in model.sizes if s.value is not None}
    origin = {}
    needed = [t for t in (*model.inputs, model.target)]
    missing = [t.name for t in needed if t.name not in data]
    if missing:
        raise DataError(f"missing data for {', '.join(missing)}; the model needs "
                        f"{', '.join(f'{t.name}[' + ', '.join(t.dims) + ']' for t in needed)}",
                        hint=f"given: {', '.join(sorted(data)) or 'nothing'}", source=model.source)
    files = getattr(data, "files", {})     # the file each array was read from (FileArrays)
    for t in needed:
        try:
            where = dict(span=t.span, source=model.source)  # errors point at the declaration
            try:
                a = np.asarray(data[t.name])
            except (TypeError, ValueError):     # e.g. ragged nested lists
                a = np.empty(0, dtype=object)
            if a.dtype.kind not in "biuf":      # strings, objects, complex: never cast silently
                raise DataError(f"data for '{t.name}' is not numeric (dtype {a.dtype})", **where,
                                hint="accepted: an array of bool, integer or float numbers")
            a = a.astype(np.float64)
            if a.size == 0:
                raise DataError(f"'{t.name}' is empty (shape {list(a.shape)})", **where)
            if t.role == "target":
                a = _as_declared(model, t, a, sizes, where)
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
        except DataError as exc:       # the data file too, not only the declaration
            if t.name in files:
                exc.message += f" (read from {files[t.name]})"
            raise
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
    append_feature(model.bias, arrays, sizes)  # the hidden bias (bias.py): W1 sees d + 1
    return arrays, sizes


def _as_declared(model, t, a: np.ndarray, sizes: dict, where: dict) -> np.ndarray:
    """A target one axis short of its declaration: a unit class axis added, or class labels."""
    if not t.dims or a.ndim != len(t.dims) - 1:
        return a
    if sizes.get(t.dims[-1]) == 1:
        return a[..., None]
    return class_labels(model, t, a, sizes, where)


def declared_target(model, data: dict, sizes: dict | None = None) -> dict:
    """`data` with its target shaped as the model declares it (class labels -> one-hot rows,
    as `bind` does), e.g. for metrics on the data a network was trained on; `sizes` are the
    bound sizes (so test labels get the training data's class count)."""
    t = model.target
    if t.name not in data:
        return data
    known = {s.name: s.value for s in model.sizes if s.value is not None}
    known.update(sizes or {})
    a = np.asarray(data[t.name], dtype=np.float64)
    return {**data, t.name: _as_declared(model, t, a, known, dict(span=t.span,
                                                                   source=model.source))}


def class_labels(model, t, labels: np.ndarray, sizes: dict, where: dict) -> np.ndarray:
    """Whole-number class labels [*] for a target declared [*, c] -> one-hot rows [*, c], when
    the model's loss registry entry accepts class labels (`LossEntry.accepts_class_labels`).
    c is the declared size, else the largest label + 1."""
    from .datafile import data_limit, human
    from ..atoms.losses import LOSSES
    declared = f"{t.name}[{', '.join(t.dims)}]"
    shape = f"'{t.name}' has {labels.ndim} axes {list(labels.shape)} but the model declares " \
            f"{declared}"
    spec = LOSSES.get(model.loss.name)
    if spec is None or not spec.accepts_class_labels:
        takers = ", ".join(n for n, s in LOSSES.items() if s.accepts_class_labels)
        raise DataError(shape, hint=f"loss {model.loss.name} takes targets shaped {declared} as "
                        f"they are; class labels (0..c-1) become one-hot rows only for the "
                        f"losses {takers}", **where)
    if not (np.all(labels == np.round(labels)) and labels.min() >= 0):
        raise DataError(shape + "; its values are not class labels (whole numbers >= 0)",
                        hint=f"give one-hot rows {declared}, or class labels 0..c-1 of shape "
                             f"[{', '.join(t.dims[:-1])}] (a CSV with ordinary headers: the "
                             "target is its last column unless --target names others)", **where)
    dim, top = t.dims[-1], int(labels.max())
    classes = sizes.get(dim, top + 1)
    if top >= classes:
        raise DataError(f"'{t.name}' holds class label {top}, but {dim} = {classes} classes "
                        f"(labels 0..{classes - 1})", **where)
    nbytes, limit = labels.size * classes * 8, data_limit()
    if nbytes > limit:
        raise DataError(f"one-hot rows for {classes} classes would take {human(nbytes)}, more "
                        f"than the data limit {human(limit)}",
                        hint="check the labels (0..c-1), or raise BMDSL_MAX_DATA_BYTES", **where)
    onehot = np.zeros((*labels.shape, classes))
    np.put_along_axis(onehot, labels.astype(np.intp)[..., None], 1.0, axis=-1)
    return onehot


def _derived(model, arrays: dict, sizes: dict) -> None:
    """Patches and pooling matrices, and the sizes they define (each estimated against
    the memory budget before it is built, memory.py)."""
    from ..core import footprint
    from ..core.memory import require
    for p in model.patches:
        images = arrays[p.images]
        _, ch, H, W = images.shape
        rows, cols = (conv_out(H, p.kernel, p.stride, p.padding),
                      conv_out(W, p.kernel, p.stride, p.padding))
        if rows <= 0 or cols <= 0:
            raise DataError(f"images '{p.images}' of size {H}x{W} are smaller than the kernel "
                            f"{p.kernel} (with padding {p.padding})")
        require(footprint.patches(images.shape, p.kernel, p.stride, p.padding, p.tensor))
        arrays[p.tensor] = extract_patches(images, p.kernel, p.stride, p.padding)
        sizes[p.grid[0]], sizes[p.grid[1]] = rows, cols
        t = model.tensor(p.tensor).dims
        sizes[t[1]], sizes[t[2]] = rows * cols, ch * p.kernel * p.kernel
    for p in model.pools:
        grid = (sizes[p.grid[0]], sizes[p.grid[1]])
        args = dict(p.args)
        cells = POOLS[p.builder].pooled_grid(grid, args)
        require(footprint.pooling(cells[0] * cells[1], grid[0] * grid[1], p.tensor))
        P = POOLS[p.builder].matrix(grid, args)
        if P.shape[0] == 0:
            raise DataError(f"pooling '{p.tensor}' leaves no cells on a {grid[0]}x{grid[1]} grid")
        arrays[p.tensor] = P
        sizes[model.tensor(p.tensor).dims[0]] = P.shape[0]
