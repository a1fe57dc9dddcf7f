"""Trained weights on the command line (`bmdsl evaluate`, `bmdsl predict`): the options
naming the model, the weights and the data, and the network they make."""
from __future__ import annotations

from ..atoms.activations import ACTIVATIONS
from ..core.errors import BmdslError
from .registry import load_model


def add_weights_options(p) -> None:
    p.add_argument("file", help="the .bm model file the weights were trained for")
    p.add_argument("--weights", required=True, metavar="W",
                   help="the .npz written by bmdsl train (U, V, patterns), or a network "
                   "saved with net.save()")
    p.add_argument("--data", action="append", required=True, metavar="DATA",
                   help="data file (.npz/.csv), or NAME=FILE (.npy); repeatable")
    p.add_argument("--activation", choices=list(ACTIVATIONS),
                   help="the activation used in training (default: the one the weights "
                   "record, else the model's)")
    p.set_defaults(patterns=None, seed=None)   # the weights hold the patterns


def trained_network(args):
    """(network, model, data) for the weights and data of the command line."""
    from ..workflow.prediction import ACTIVATION_KEY, weights_arrays, network_from_weights
    from .data_args import read_data
    weights = args.weights
    if str(weights).lower().endswith(".npz"):
        weights = weights_arrays(weights)
        stored = weights.get(ACTIVATION_KEY)
        if args.activation and stored and stored != args.activation:
            raise BmdslError(f"--activation {args.activation}, but {args.weights} was trained "
                             f"with {stored}", hint=f"drop --activation or pass {stored}")
    model = load_model(args)
    data = read_data(args.data)
    net, model = network_from_weights(model, weights, data)
    return net, model, data
