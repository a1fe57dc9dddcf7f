"""Predictions without bmdsl: the network of trained factors applied to new inputs.

    python <model>_torch.py predict WEIGHTS DATA.npz [--output PRED.npz]

WEIGHTS is an .npz of U [P, m, *w1], V [P, m, *w2] (and the training gates [P, *w1] for
gated ReLU), as this module's training or `bmdsl train` writes it, or a network saved with
`net.save()`. The network is network.py's NetworkModule; pooling maps are rebuilt for the
images' grid. `predict(SPEC, WEIGHTS, DATA)` is the same as a function. Bad files and
data raise ValueError with what is wrong and what is accepted; the command line prints
it and exits 1.
"""
import numpy as np
import torch

from ...kernel.npz import numeric, read_npz
from .data import derived
from .network import NetworkModule, uses_gates
from .offset import has_output_bias


def fixed_maps(spec, data):
    """Pooling matrices for the grid of the images in `data` (they depend on its size)."""
    if not spec["pools"]:
        return {}
    images = sorted({p["images"] for p in spec["patches"]})
    missing = [n for n in images if n not in data]
    if missing:
        raise ValueError(f"the data lacks {missing}; the network takes "
                         f"{[n for n, _ in spec['inputs']]}")
    try:
        arrays = derived(spec, {n: np.asarray(data[n], dtype=np.float64) for n in images})
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ValueError(f"cannot cut {images} into patches ({exc}); images are "
                         f"[n, channels, height, width]") from None
    return {p["tensor"]: arrays[p["tensor"]] for p in spec["pools"]}


def factors_network(spec, weights, data):
    """NetworkModule of the factors in `weights` (dict), pools from `data`'s images."""
    trained = str(weights.get("activation", spec["activation"]))
    if trained != spec["activation"]:
        raise ValueError(f"the weights were trained with {trained} units, this model has "
                         f"{spec['activation']} units")
    U, V = (torch.as_tensor(numeric(weights, k, ("P", "m", *spec["dims"][w]), what="the weights"))
            for k, w in (("U", "w1"), ("V", "w2")))      # present, their axes, finite numbers
    if U.shape[:2] != V.shape[:2]:
        raise ValueError(f"U has {tuple(U.shape[:2])} (patterns, units), V {tuple(V.shape[:2])}")
    P, gates, bias = U.shape[0], None, None
    if uses_gates(spec):           # (NetworkModule groups the units by pattern, m each)
        if "gates" not in weights or tuple(np.shape(weights["gates"])) != (P,) + U.shape[2:]:
            raise ValueError(f"gated ReLU units need the training gates [P, *w1] = "
                             f"{(P,) + tuple(U.shape[2:])} in the weights file")
        gates = np.asarray(weights["gates"], dtype=np.float64)
    if has_output_bias(spec):
        if "b2" not in weights:
            raise ValueError("this model has an output bias: the weights file needs its b2")
        bias = torch.as_tensor(np.asarray(weights["b2"], dtype=np.float64)).reshape(-1)
        if not bool(torch.isfinite(bias).all()):
            raise ValueError("the weights' output bias b2 contains NaN or inf")
    elif "b2" in weights:
        raise ValueError("the weights hold an output bias b2, this model has none")
    return NetworkModule(spec, U.flatten(0, 1), V.flatten(0, 1), gates, None,
                         fixed_maps(spec, data), bias=bias).pruned()


def predict(spec, weights, data):
    """Predictions [n, ...] (numpy) for the inputs in `data` (dict or .npz path); the
    network names an input the data lacks."""
    data = read_npz(data, "data") if isinstance(data, str) else dict(data)
    if isinstance(weights, str) and not weights.lower().endswith(".npz"):
        net = NetworkModule.load(weights)
    else:
        net = factors_network(spec, read_npz(weights, "weights") if isinstance(weights, str)
                              else dict(weights), data)
    with torch.no_grad():
        return net(**{n: data[n] for n in net.inputs if n in data}).cpu().double().numpy()
