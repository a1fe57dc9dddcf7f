"""Data-side pieces without bmdsl: image patches in torch, pooling matrices, and the
masks D_k from gates (sampled with the same generator calls and de-duplication as
bmdsl.patterns.sample_patterns, so a stand-alone run sees the same patterns).
"""
import numpy as np
import torch
import torch.nn.functional as tf


def patches(images, kernel, stride, padding):
    """[n, ch, H, W] -> [n, K, ch*kernel*kernel]: K row-major over the output grid, each
    patch flattened as (channel, row, column), as bmdsl.builders.extract_patches."""
    cols = tf.unfold(images, kernel_size=kernel, stride=stride, padding=padding)
    return cols.transpose(1, 2)


def average_pool(grid, window):
    """Non-overlapping window averages over a row-major grid; partial windows dropped."""
    (rows, cols), (wr, wc) = grid, window
    orows, ocols = rows // wr, cols // wc
    P = np.zeros((orows * ocols, rows * cols))
    for a_r in range(orows):
        for a_c in range(ocols):
            for r in range(a_r * wr, (a_r + 1) * wr):
                for c in range(a_c * wc, (a_c + 1) * wc):
                    P[a_r * ocols + a_c, r * cols + c] = 1.0 / (wr * wc)
    return P


POOLS = {"average": lambda grid, args: average_pool(grid, args["window"]),
         "global": lambda grid, args: np.full((1, grid[0] * grid[1]), 1.0 / (grid[0] * grid[1]))}


def derived(spec, arrays):
    """Add the patch tensors (torch) and pooling matrices (numpy) the model declares."""
    arrays = dict(arrays)
    sizes = {}
    for p in spec["patches"]:
        images = torch.as_tensor(np.asarray(arrays[p["images"]]))
        arrays[p["tensor"]] = patches(images, p["kernel"], p["stride"], p["padding"]).numpy()
        H, W = images.shape[2:]
        sizes[p["grid"][0]] = (H + 2 * p["padding"] - p["kernel"]) // p["stride"] + 1
        sizes[p["grid"][1]] = (W + 2 * p["padding"] - p["kernel"]) // p["stride"] + 1
    for p in spec["pools"]:
        grid = (sizes[p["grid"][0]], sizes[p["grid"][1]])
        arrays[p["tensor"]] = POOLS[p["kind"]](grid, dict(p["args"]))
    return append_feature(spec, arrays)


def append_feature(spec, arrays):
    """The hidden bias's constant feature (bmdsl/bias.py) appended to its data tensor, on
    the axis W1 contracts: numpy arrays or torch tensors; `arrays` unchanged without one."""
    hidden = (spec.get("bias") or {}).get("hidden")
    if not hidden:
        return arrays
    a, axis = arrays[hidden["tensor"]], hidden["axis"]
    shape = list(a.shape)
    shape[axis] = 1
    if isinstance(a, torch.Tensor):
        one = torch.full(shape, hidden["value"], dtype=a.dtype, device=a.device)
        return dict(arrays, **{hidden["tensor"]: torch.cat([a, one], axis)})
    one = np.full(shape, hidden["value"])
    return dict(arrays, **{hidden["tensor"]: np.concatenate([np.asarray(a), one], axis)})


def unique_masks(masks, gates):
    """Drop repeated masks, keeping first occurrences in order (bmdsl.patterns)."""
    packed = np.packbits(masks.reshape(masks.shape[0], -1) > 0.5, axis=1)
    first = {}
    for i, row in enumerate(packed):
        first.setdefault(row.tobytes(), i)
    kept = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    return masks[kept], gates[kept]


def sample_gates(spec, w1_shape):
    """N(0, 1) gates from numpy.random.default_rng(seed), one standard_normal call."""
    count = spec["patterns"]
    return np.random.default_rng(spec["seed"]).standard_normal((int(count),) + tuple(w1_shape))
