"""A rank's shard of the data: what `launch.fit` sends to the processes, and the bound
each process makes of it (docs/distributed.md).

`recipe(bound)` holds the model, the input and target arrays as torch tensors (sent to
the processes of torch.multiprocessing through shared memory, not copied into each) and
the gates of the patterns, drawn once in the calling process. `rebind` in rank r copies
samples [start, stop) (distributed.shard) of every array that has the sample axis and
binds them: the masks of the shard are 1[A(h_k) >= 0] of the same gates on the shard's
samples, the rows of the whole data's masks. So a rank holds n/N samples, their masks
and what does not grow with n (the gates, the model), ReLU cones too: what acts on the
cones' per-sample rows reduces over the ranks (runtime/cones.py, certificates/conennls.py).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from . import distributed as dd
from ..core import memory


def sample_dim(model) -> str:
    """The sample axis' size name (the target's first axis, as trainer/spec.py)."""
    return model.target.dims[0]


def recipe(bound):
    """What rebuilds `bound`, or a shard of it, in another process (a BoundModel holds
    closures that do not pickle): the model, its input and target arrays, the patterns
    (gates only: the processes bind shards)."""
    model = bound.model
    data = {t.name: torch.from_numpy(np.ascontiguousarray(_given(bound, t.name)))
            for t in (*model.inputs, model.target)}
    patterns = bound.patterns
    if patterns is not None:
        patterns = patterns.gates_only()
    return model, data, patterns


def _given(bound, name):
    """The array as given to bind (binding appends the hidden bias's constant feature)."""
    a, bias = bound.arrays[name], bound.model.bias
    if bias.hidden is not None and bias.tensor == name:
        a = np.take(a, np.arange(a.shape[bias.axis] - 1), axis=bias.axis)
    return a


def rebind(recipe_):
    """This rank's bound: of its shard (`bound.shard` = (start, stop, n)); of all samples
    outside a process group."""
    model, data, patterns = recipe_
    if not dd.active():
        data = {k: np.asarray(v) for k, v in data.items()}
        return model.derive().bind(data, patterns=patterns)
    return bind_shard(model, data, patterns)


def bind_shard(model, data, gates):
    """The bound of this rank's samples [start, stop) of `data` (numpy arrays or torch
    tensors as given to bind), with the masks of `gates` (patterns.Gates, drawn for all
    samples) on them; the shard's copy is estimated against the memory budget first."""
    dim = sample_dim(model)
    axes = {t.name: (t.dims.index(dim) if dim in t.dims else None)
            for t in (*model.inputs, model.target)}
    n = np.shape(data[model.target.name])[axes[model.target.name]]
    dd.check_shard(n)
    start, stop = dd.shard(n)
    size = {k: int(np.prod(np.shape(data[k]))) for k in axes}
    nbytes = sum(8 * size[k] * (stop - start) // n if axes[k] is not None else 8 * size[k]
                 for k in axes)
    memory.require(memory.Estimate(
        f"rank {dd.rank()}'s shard of the data (samples {start}..{stop - 1} of {n})",
        nbytes, "more processes, or a smaller data set"))
    part = {}
    for k, axis in axes.items():
        a = data[k].numpy() if isinstance(data[k], torch.Tensor) else np.asarray(data[k])
        if axis is not None:
            index = [slice(None)] * a.ndim
            index[axis] = slice(start, stop)
            a = a[tuple(index)]
        part[k] = np.array(a)            # a copy: the whole array is let go
    bound = model.derive().bind(part, patterns=gates)
    bound.shard = (start, stop, n)
    return bound


def shard_view(bound, spec, start: int, stop: int):
    """The bound on samples [start, stop) only (numpy views of its arrays and masks): what
    the certificate's predictions and adjoints run on."""
    axes = dict(spec["sample_axes"])
    axes.update({key: axes[name] for name, key in bound.network.data_keys if name in axes})
    view = copy.copy(bound)
    view.arrays = {k: _rows(v, axes.get(k), start, stop) for k, v in bound.arrays.items()}
    view.Y = view.arrays[bound.model.target.name]
    if bound.masks is not None and spec["mask_axis"] is not None:
        view.masks = _rows(bound.masks, spec["mask_axis"] + 1, start, stop)
    return view


def _rows(a, axis, start, stop):
    if axis is None:
        return a
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def _resized(shape, axis, size):
    shape = list(shape)
    shape[axis] = size
    return tuple(shape)
