"""The data of one rank of `bmdsl train/run --nproc N` (or torchrun): only its rows are
read and bound, rank 0's too (docs/distributed.md).

* `read`: the rows [start, stop) of the training samples (distributed.shard of their
  count, read from the file headers) of every --data array with the sample axis, through
  bind/rowread.py (.npy and stored .npz members memory-mapped, compressed members
  streamed; a .csv is parsed whole); with --test-fraction the training samples are the
  rows the seeded split leaves (bind/split.py), rank 0 alone reads the test rows, as it
  alone reads --test-data.
* `bind`: the shard's bound with the patterns every rank shares: the gates of a pattern
  file; sampled gates (drawn alike on every rank from the seed), de-duplicated as one
  process would on all samples -- two gates give the same mask iff they do on every
  shard, so each rank sends a digest per gate of its rows of the masks; exact patterns
  enumerated by rank 0 on the arrangement matrix's rows of all ranks (exact enumeration
  is for small data) and broadcast as gates.
* `scores`: the metrics of all samples from sums all-reduced over the ranks.
* `gathered_masks`: the masks of all samples, for rank 0's saved patterns, one rank's
  rows at a time written into a memory-mapped .npy (rank 0 never holds them all).
"""
from __future__ import annotations

import hashlib
import math
import os

import numpy as np

from ..bind.datafile import DataFileError, data_limit, human
from ..core.errors import DataError


def _dd():
    from ..trainer import distributed as dd
    return dd


# -- reading ------------------------------------------------------------------------------
def _sources(items, model, target) -> dict:
    """NAME -> rowread.Source of the model's tensors in the --data files."""
    from ..bind import rowread
    from ..bind.datasets import load_data
    from .data_args import model_tensors, parse_items, target_columns
    entries, wanted = parse_items(items), set(model_tensors(model))
    cols = target_columns(target)
    if cols and not any(n is None and p.lower().endswith(".csv") for n, p in entries):
        raise DataError(f"--target {target} names CSV columns, but no --data FILE is a .csv",
                        hint="--target applies to a .csv given as --data FILE.csv; for .npz "
                             "and .npy files name the arrays (NAME=FILE)")
    limit, out = data_limit(), {}
    for name, path in entries:
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npy":
            found = {name: rowread.npy_source(path, limit)}
        elif ext == ".npz":
            found = rowread.npz_sources(path, limit, only={name} if name else wanted)
        else:      # text: parsed whole (no row index), then its rows taken
            arrays = load_data(path, name=name, tensors=model_tensors(model), max_bytes=limit,
                               target=None if name else cols)
            found = {k: _InMemory(path, a) for k, a in arrays.items()
                     if k in wanted and (name is None or k == name)}
        clash = sorted(set(found) & set(out))
        if clash:
            raise DataError(f"array(s) {', '.join(clash)} given twice (in {path})",
                            hint="give each tensor once: one file with all of them, or "
                                 "one NAME=FILE per tensor")
        out.update(found)
    return out


class _InMemory:
    def __init__(self, path, a):
        self.path, self.a, self.shape = path, a, a.shape

    def rows(self, axis, idx):
        if isinstance(idx, slice):
            idx = np.arange(idx.start, idx.stop)
        return np.array(self.a if axis is None else np.take(self.a, idx, axis=axis),
                        dtype=np.float64)


def _axes(model, sources) -> tuple[dict, int]:
    """NAME -> sample axis (None: no sample axis) and the number of samples n, every
    array with the axis checked to hold n (before any row is read)."""
    n_dim = model.target.dims[0]
    axes = {}
    for t in (*model.inputs, model.target):
        if t.name in sources:
            if t.dims.count(n_dim) > 1:
                raise DataError(f"'{t.name}' has the sample axis {n_dim} twice: its samples "
                                "interact and cannot be shared by processes",
                                hint="train it with one process")
            axes[t.name] = t.dims.index(n_dim) if n_dim in t.dims else None
    y = model.target.name
    if y not in sources:
        raise DataError(f"missing data for the target '{y}'")
    n = sources[y].shape[0]
    for name, axis in axes.items():
        shape = sources[name].shape
        if axis is not None and (len(shape) <= axis or shape[axis] != n):
            raise DataError(f"'{name}' has {shape[axis] if len(shape) > axis else 'no'} "
                            f"samples on its axis {axis} ({n_dim}), the target '{y}' {n}")
    return axes, n


def _rows(sources, axes, idx) -> dict:
    """The rows idx of every array with the sample axis (the others whole), as float64,
    their size checked against the data limit first."""
    limit = data_limit()
    count = len(range(idx.start, idx.stop)) if isinstance(idx, slice) else len(idx)
    used = 0
    for name, axis in axes.items():
        shape = sources[name].shape
        used += 8 * math.prod(shape) * (1 if axis is None else count / max(shape[axis], 1))
    if used > limit:
        raise DataFileError(sources[next(iter(axes))].path,
                            f"rank {_dd().rank()}'s rows take {human(used)}, more than the "
                            f"data limit {human(limit)}", hint="raise it with "
                            "BMDSL_MAX_DATA_BYTES (e.g. 8G), or use more processes")
    return {name: sources[name].rows(axis, idx) for name, axis in axes.items()}


def read(args, model, items=None, default=None):
    """(this rank's training rows, test data (rank 0) or None, note, n of all training
    samples). `default`: in-memory data (bmdsl run's built-in data) in place of --data."""
    dd = _dd()
    if default is not None:
        sources = {k: _InMemory("built-in data", np.asarray(v)) for k, v in default.items()}
    else:
        sources = _sources(items if items is not None else args.data, model, args.target)
    axes, n = _axes(model, sources)
    fraction = getattr(args, "test_fraction", None)
    test, note = None, None
    if fraction is not None:
        from ..bind.split import split_indices
        test_idx, train_idx = split_indices(n, fraction, args.split_seed)
        n_train = len(train_idx)
        dd.check_shard(n_train)
        start, stop = dd.shard(n_train)
        part = _rows(sources, axes, train_idx[start:stop])
        if dd.is_writer():
            test = _rows(sources, axes, test_idx)
        note = (f"{len(test_idx)} of {n} samples held out (--test-fraction {fraction:g}, "
                f"seed {args.split_seed})")
        return part, test, note, n_train
    dd.check_shard(n)
    start, stop = dd.shard(n)
    part = _rows(sources, axes, slice(start, stop))
    if getattr(args, "test_data", None):
        note = f"test data {', '.join(args.test_data)}"
        if dd.is_writer():
            from .data_args import read_data
            test = read_data(args.test_data)
            for name, axis in axes.items():   # fixed tensors (no sample axis): the training ones
                if axis is None and name not in test:
                    test[name] = part[name]
    return part, test, note, n


# -- binding --------------------------------------------------------------------------------
def bind(derivation, part, n, given=None):
    """The bound of this rank's rows (`bound.shard` = (start, stop, n)) with the patterns
    all ranks share (module docstring); `given`: a PatternSet of a file."""
    from ..derive.patterns import Gates, sample_gates
    dd = _dd()
    start, stop = dd.shard(n)
    act = derivation.model.activation
    gates = None
    if derivation.activation.uses_patterns and not act.gates:
        if given is not None:
            gates = given.gates_only()
        elif act.patterns == "exact":
            gates = _exact_gates(derivation, part, n)
        else:
            drawn = Gates(sample_gates(_w1_shape(derivation, part), act.patterns, act.seed),
                          "sampled", int(act.seed), int(act.patterns))
            bound = derivation.bind(part, patterns=drawn)
            kept = _distinct(bound.masks)
            if len(kept) == drawn.gates.shape[0]:
                bound.shard = (start, stop, n)
                return bound
            gates = Gates(drawn.gates[kept], "sampled", int(act.seed), int(act.patterns))
    bound = derivation.bind(part, patterns=gates)
    bound.shard = (start, stop, n)
    return bound


def _w1_shape(derivation, part):
    """The first layer's weight shape (its sizes from the data: a bind without patterns
    of one sample would do the same work; the sizes are the binding's)."""
    from ..bind.binding import validate
    _, sizes = validate(derivation.model, part)
    return tuple(sizes[d] for d in derivation.model.first_weight.dims)


def _distinct(masks) -> np.ndarray:
    """The gates (rows of masks [P, ...], this rank's samples) whose mask on all samples
    differs from every earlier gate's, as kernel.masks.unique_masks on all samples."""
    dd = _dd()
    packed = np.packbits(np.asarray(masks).reshape(masks.shape[0], -1) > 0.5, axis=1)
    mine = [hashlib.sha256(row.tobytes()).digest() for row in packed]
    every = [None] * dd.world()
    dd.all_gather_object(every, mine)
    first = {}
    for i, key in enumerate(zip(*every)):
        first.setdefault(key, i)
    return np.fromiter(first.values(), dtype=np.int64, count=len(first))


def _exact_gates(derivation, part, n):
    """Exact patterns: rank 0 enumerates the cells of the arrangement matrix's rows of all
    ranks (gathered: exact enumeration is for small data) and broadcasts the gates."""
    from ..derive.arrangement import enumerate_patterns
    from ..derive.patterns import Gates
    dd = _dd()
    one = Gates(np.zeros((1,) + _w1_shape(derivation, part)), "exact")
    bound = derivation.bind(part, patterns=one)
    rows = [None] * dd.world()
    dd.all_gather_object(rows, bound.layer_matrix())
    gates = None
    if dd.is_writer():
        axis = derivation.model.layer.dims.index(derivation.model.target.dims[0])
        shape = list(bound.a_shape)
        shape[axis] = n
        other = math.prod(bound.a_shape) // bound.a_shape[axis]     # entries per sample

        def own(r):
            local = list(bound.a_shape)
            local[axis] = r.shape[0] // other
            return r.reshape(tuple(local) + (-1,))
        M = np.concatenate([own(r) for r in rows], axis=axis)
        found = enumerate_patterns(M.reshape(-1, M.shape[-1]), tuple(shape),
                                   p_shape=bound.w1_shape)
        gates = found.gates_only()
    return dd.broadcast_object(gates)


# -- metrics ---------------------------------------------------------------------------------
def scores(net, data) -> dict:
    """bmdsl.workflow.metrics.scores of all ranks' samples: each rank predicts its own rows,
    and the sums behind every metric are all-reduced."""
    from ..workflow.metrics import sharded_scores
    from ..workflow.prediction import network_loss, predict_network
    import torch
    dd = _dd()

    def total(x):
        out = dd.allreduce_sum(torch.as_tensor(np.asarray(x, dtype=np.float64)))
        return out.numpy()
    target = net.spec["target"]
    return sharded_scores(network_loss(net), predict_network(net, data), data[target], total,
                          f"the target '{target}'")


# -- the saved masks --------------------------------------------------------------------------
def gathered_masks(bound, path) -> None:
    """Write the masks of all samples [P, *a] (every rank's rows, in rank order) to the .npy
    file `path` on rank 0, one rank's rows at a time; the other ranks send theirs."""
    dd = _dd()
    import torch
    masks = np.array(bound.masks, dtype=np.float64)      # writable, contiguous
    axis = bound.model.layer.dims.index(bound.model.target.dims[0]) + 1
    sizes = [None] * dd.world()
    dd.all_gather_object(sizes, masks.shape)
    out = None
    if dd.is_writer():
        from numpy.lib import format as npy
        shape = list(masks.shape)
        shape[axis] = sum(s[axis] for s in sizes)
        out = npy.open_memmap(path, mode="w+", dtype=np.float64, shape=tuple(shape))
    at = 0
    for r, shape in enumerate(sizes):
        numel = math.prod(shape)
        mine = torch.from_numpy(masks.reshape(-1)) if r == dd.rank() else None
        rows = dd.broadcast(mine, r, numel).numpy().reshape(shape)
        if out is not None:
            index = [slice(None)] * len(shape)
            index[axis] = slice(at, at + shape[axis])
            out[tuple(index)] = rows
        at += shape[axis]
    if out is not None:
        out.flush()
        del out
