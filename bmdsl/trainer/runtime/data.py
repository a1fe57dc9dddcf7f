"""Data-side pieces without bmdsl: the patch tensors and pooling matrices a model declares
(the kernel's, bmdsl/kernel/layout.py) and the hidden bias's constant feature."""
import numpy as np
import torch

from ...kernel.layout import POOL_MATRICES, conv_out, extract_patches


def derived(spec, arrays):
    """Add the patch tensors and pooling matrices (numpy) the model declares."""
    if not spec["patches"]:      # (pools are built on the patches' grids)
        return append_feature(spec, arrays)
    arrays, sizes = dict(arrays), {}
    for p in spec["patches"]:
        images = np.asarray(arrays[p["images"]])     # [n, channels, height, width]
        arrays[p["tensor"]] = extract_patches(images, p["kernel"], p["stride"], p["padding"])
        H, W = images.shape[2:]
        sizes[p["grid"][0]] = conv_out(H, p["kernel"], p["stride"], p["padding"])
        sizes[p["grid"][1]] = conv_out(W, p["kernel"], p["stride"], p["padding"])
    for p in spec["pools"]:
        grid = (sizes[p["grid"][0]], sizes[p["grid"][1]])
        arrays[p["tensor"]] = POOL_MATRICES[p["builder"]](grid, dict(p["args"]))
    return append_feature(spec, arrays)


def has_hidden_bias(spec):
    return bool((spec.get("bias") or {}).get("hidden"))


def append_feature(spec, arrays):
    """The hidden bias's constant feature (bmdsl/atoms/bias.py) appended to its data tensor, on
    the axis W1 contracts: numpy arrays or torch tensors; `arrays` unchanged without one."""
    if not has_hidden_bias(spec):
        return arrays
    hidden = spec["bias"]["hidden"]
    a, axis = arrays[hidden["tensor"]], hidden["axis"]
    shape = list(a.shape)
    shape[axis] = 1
    if isinstance(a, torch.Tensor):
        one = torch.full(shape, hidden["value"], dtype=a.dtype, device=a.device)
        return dict(arrays, **{hidden["tensor"]: torch.cat([a, one], axis)})
    one = np.full(shape, hidden["value"])
    return dict(arrays, **{hidden["tensor"]: np.concatenate([np.asarray(a), one], axis)})
