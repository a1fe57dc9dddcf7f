"""Predictions and test metrics from trained weights (`bmdsl predict`, `bmdsl evaluate`).

    Yhat = bmdsl.predict("models/mlp.bm", "mlp_bm.npz", {"X": X_new})
    report = bmdsl.evaluate("models/mlp.bm", "mlp_bm.npz", "test.npz")
    # {"n": .., "loss": .., "accuracy": ..} or {"n", "loss", "mse", "r2"} (bmdsl.workflow.metrics)

Weights are the .npz that `bmdsl train` writes (U [P, m, *w1], V [P, m, *w2], the patterns'
masks and gates, the activation), a dict of the same arrays, or a network file saved with
`net.save(path)`. The network is `BMNetwork` (trainer/network.py): gated ReLU units use the
training gates h_k, so new inputs get masks 1[A(h_k)(x) >= 0] of the same patterns.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..atoms.activations import get_activation
from ..core.errors import DataError

ACTIVATION_KEY = "activation"     # the name `bmdsl train` stores beside U and V


def read_weights(path) -> dict:
    """The arrays of a weights .npz ({"U", "V", "masks"?, "gates"?, "seed"?, "activation"?}
    as `bmdsl train` writes it), headers and sizes checked before reading, never pickle
    (bmdsl.bind.npyread): a missing, empty, truncated or foreign file is a DataFileError."""
    from ..bind.datafile import data_limit, regular_file
    from ..bind.npyread import read_npz
    regular_file(path)
    return read_npz(path, data_limit(), kinds="biufU", float64=False)


def weights_arrays(weights) -> dict:
    """The weights (a path or a dict) as float64 arrays, checked: U, V present and finite."""
    d = dict(weights) if isinstance(weights, Mapping) else read_weights(weights)
    missing = [k for k in ("U", "V") if k not in d]
    if missing:
        raise DataError(f"the weights lack {', '.join(missing)}; they need U [P, m, *w1] and "
                        f"V [P, m, *w2] as `bmdsl train` saves them")
    for k in ("U", "V", "gates", "b2"):
        if k in d:
            d[k] = np.asarray(d[k], dtype=np.float64)
            if not np.all(np.isfinite(d[k])):
                raise DataError(f"the weights' {k} contains NaN or inf")
    if ACTIVATION_KEY in d:
        d[ACTIVATION_KEY] = str(d[ACTIVATION_KEY])
    return d


def _matching_model(model, w: dict):
    """The model with the activation the weights were trained with (stored by bmdsl train;
    older files: no gates means linear)."""
    trained = w.get(ACTIVATION_KEY) or (None if "gates" in w else "linear")
    name = model.activation.name
    if trained is None:
        if not get_activation(name).uses_patterns:      # its units rule: no patterns
            raise DataError(f"the weights hold patterns (gates) but the model's activation "
                            f"is {name}", hint="pass the activation used in training, e.g. "
                            "--activation gated_relu")
        return model
    if trained == name:
        return model
    seed = int(w["seed"]) if "seed" in w and int(w["seed"]) >= 0 else None
    P = int(np.shape(w["U"])[0])     # with_activation drops it where no patterns apply
    return model.with_activation(trained, P, seed)


def _check_shapes(spec, w: dict) -> None:
    U, V = w["U"], w["V"]
    declared = dict(spec["sizes"])
    for key, arr, name in (("w1", U, "U"), ("w2", V, "V")):
        dims = spec["dims"][key]
        if arr.ndim != 2 + len(dims):
            raise DataError(f"the weights' {name} has shape {arr.shape}; this model needs "
                            f"[P, m{''.join(', ' + d for d in dims)}]")
        for dim, size in zip(dims, arr.shape[2:]):
            if dim in declared and declared[dim] != size:
                raise DataError(f"the weights' {name} has {dim} = {size}, but the model "
                                f"declares {dim} = {declared[dim]}")
    if U.shape[:2] != V.shape[:2]:
        raise DataError(f"U has {U.shape[:2]} (patterns, units), V {V.shape[:2]}")
    from ..trainer.runtime.network import uses_gates
    if uses_gates(spec):
        gates = w.get("gates")
        if gates is None or gates.shape != (U.shape[0],) + U.shape[2:]:
            raise DataError(f"gated ReLU weights need the training gates [P, *w1] = "
                            f"{(U.shape[0],) + U.shape[2:]}, have "
                            f"{None if gates is None else gates.shape}",
                            hint="use the .npz written by `bmdsl train`")


def _fixed_maps(spec, data: dict) -> dict:
    """Pooling matrices for the images' grid (they depend on the image size only)."""
    from ..trainer.runtime.predict import fixed_maps
    try:
        return fixed_maps(spec, data)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def network_from_weights(model, weights, data=None, *, prune=True):
    """(BMNetwork, the model with the weights' activation) for a model (path or Model)."""
    from ..check.loading import load
    from ..trainer.network import BMNetwork, load_network
    from ..trainer.runtime.network import uses_gates
    from ..trainer.spec import build_spec
    model = load(model) if isinstance(model, (str, Path)) else model
    if isinstance(weights, (str, Path)) and not str(weights).lower().endswith(".npz"):
        net = load_network(weights)
        return (net.pruned() if prune else net), model
    w = weights_arrays(weights)
    model = _matching_model(model, w)
    spec = build_spec(model.derive())
    _check_shapes(spec, w)
    gates = w["gates"] if uses_gates(spec) else None
    if model.bias.output != ("b2" in w):
        raise DataError("the model declares an output bias but the weights hold none (b2)"
                        if model.bias.output else "the weights hold an output bias (b2) but "
                        "the model declares none", hint="predict with the model file the "
                        "weights were trained with")
    net = BMNetwork.from_factors(spec, w["U"], w["V"], gates, _fixed_maps(spec, data or {}),
                                 prune=prune, model_text=model.source.text, bias=w.get("b2"))
    return net, model


def _data(data) -> dict:
    if isinstance(data, (str, Path)):
        from ..bind.datasets import load_data
        return load_data(data)
    return dict(data)


BATCH_ENTRIES = 2 ** 24   # pre-activation entries per chunk (units x samples x |a| / n)


def _sample_axes(net, inputs: dict) -> dict | None:
    """{input: its sample axis} when every input with the sample axis has the same count
    (else None: the network itself then names the mismatch)."""
    spec, n_dim = net.spec, net.spec["target_dims"][0]
    if not _samples_separate(spec):
        return None
    axes = {k: d.index(n_dim) for k, d in spec["inputs"] if n_dim in d}
    counts = {np.shape(inputs[k])[a] if np.ndim(inputs[k]) > a else -1 for k, a in axes.items()}
    return axes if len(counts) == 1 else None


def _samples_separate(spec) -> bool:
    """True when sample i's prediction depends on sample i's inputs only: in every term of
    the layer and output equations, all sample axes carry one index that the term keeps
    (a graph S[n, n] or a sum over samples mixes them: then no chunks)."""
    n_dim = spec["target_dims"][0]
    dims = dict(spec["inputs"], H=spec["dims"]["a"])
    dims.update({p["tensor"]: p["dims"] for p in spec["patches"] + spec["pools"]})
    if n_dim not in spec["dims"]["y"] or any(list(d).count(n_dim) > 1 for d in dims.values()):
        return False
    for _, ops, out in spec["layer"] + spec["output"]:
        found = {idx[dims[name].index(n_dim)] for name, idx in ops
                 if n_dim in dims.get(name, ())}
        if len(found) > 1 or not found <= set(out):
            return False
    return True


def _chunk(net, inputs: dict, axes: dict) -> int | None:
    """Samples per forward pass so that A [units, *a] stays near BATCH_ENTRIES entries
    (the whole data at once could need gigabytes); None: one pass."""
    spec, n_dim = net.spec, net.spec["target_dims"][0]
    sizes = net.known_sizes()
    for name, dims in spec["inputs"]:
        sizes.update(zip(dims, np.shape(inputs[name])))
    per_sample = int(np.prod([sizes.get(d, 1) for d in spec["dims"]["a"] if d != n_dim]))
    name, axis = next(iter(axes.items()))
    n = np.shape(inputs[name])[axis]
    chunk = max(1, BATCH_ENTRIES // max(1, net.units * per_sample))
    return None if chunk >= n else chunk


def predict_network(net, data) -> np.ndarray:
    """The network's predictions for the inputs in `data` (by name), float64 numpy; in
    chunks of samples when the data is large (samples do not interact in the network)."""
    import torch
    data = _data(data)
    missing = [n for n in net.inputs if n not in data]
    if missing:
        raise DataError(f"the data lacks the input(s) {missing}; the network takes "
                        f"{net.inputs}")
    inputs = {n: data[n] for n in net.inputs}
    try:
        axes = _sample_axes(net, inputs)
        chunk = None if axes is None else _chunk(net, inputs, axes)
        with torch.no_grad():
            if chunk is None:
                return net(**inputs).cpu().double().numpy()
            name, axis = next(iter(axes.items()))
            n = np.shape(inputs[name])[axis]
            parts = []
            for lo in range(0, n, chunk):
                rows = np.arange(lo, min(lo + chunk, n))
                part = {k: np.take(np.asarray(v), rows, axis=axes[k]) if k in axes else v
                        for k, v in inputs.items()}
                parts.append(net(**part).cpu().double().numpy())
            return np.concatenate(parts, axis=net.spec["dims"]["y"].index(
                net.spec["target_dims"][0]))
    except (TypeError, ValueError) as exc:
        raise DataError(str(exc)) from None


def network_loss(net):
    from ..atoms.losses import get_loss
    return get_loss(net.spec["loss"], **dict(net.spec["loss_params"]))


def network_scores(net, data) -> dict:
    """bmdsl.workflow.metrics.scores of the network's predictions against the data's target."""
    from .metrics import scores
    data = _data(data)
    target = net.spec["target"]
    if target not in data:
        raise DataError(f"the data lacks the target '{target}'; evaluating needs it")
    return scores(network_loss(net), predict_network(net, data), data[target],
                  f"the target '{target}'")


def predict(model, weights, data, *, prune=True) -> np.ndarray:
    """Predictions of the trained network for new inputs (see the module docstring)."""
    data = _data(data)
    net, _ = network_from_weights(model, weights, data, prune=prune)
    return predict_network(net, data)


def evaluate(model, weights, data) -> dict:
    """{"n", "loss", metrics by the loss (bmdsl.workflow.metrics)} of the trained network on data."""
    from ..bind.binding import declared_target      # class labels -> one-hot, as in training
    data = _data(data)
    net, model = network_from_weights(model, weights, data)
    return network_scores(net, declared_target(model, data, net.known_sizes()))
