"""`bmdsl evaluate FILE --weights W --data D`: test metrics of trained weights (docs/cli.md).

Reports n, the loss per sample and the loss's metrics (bmdsl.metrics: accuracy for a
classification loss, MSE and R^2 for a regression loss) as a table, or as JSON with
`--json`. Also home of the held-out data options that `bmdsl run` and `bmdsl train` share:
`--test-data D` or `--test-fraction f` (a seeded split, `--split-seed`), and the train/test
metric reports they print and record.
"""
from __future__ import annotations

import json

from ..activations import ACTIVATIONS
from ..cli import command, load_model
from ..errors import BmdslError, DataError


# -- held-out data for run and train ---------------------------------------------------------
def open_fraction(text: str) -> float:
    """argparse type: a finite number strictly between 0 and 1 (exit 2 otherwise)."""
    import argparse
    import math
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:                       # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, "
                                         f"not {text!r}")
    return value


def add_test_options(p) -> None:
    from .options import seed
    group = p.add_mutually_exclusive_group()
    group.add_argument("--test-data", action="append", metavar="DATA",
                       help="held-out data (.npz/.csv, or NAME=FILE); test metrics are "
                       "reported beside the training ones; repeatable")
    group.add_argument("--test-fraction", type=open_fraction, metavar="F",
                       help="hold out this fraction (0 < F < 1) of the data, chosen at random "
                       "with --split-seed, and report test metrics on it")
    p.add_argument("--split-seed", type=seed, default=0,
                   help="seed of the --test-fraction split (default 0)")


def held_out(args, model, data: dict) -> tuple[dict, dict | None, str | None]:
    """(training data, test data or None, a note saying where the test data came from)."""
    if getattr(args, "test_fraction", None) is not None:
        from ..split import split_data
        train, test = split_data(model, data, args.test_fraction, args.split_seed)
        n = model.target.name
        return train, test, (f"{len(test[n])} of {len(data[n])} samples held out "
                             f"(--test-fraction {args.test_fraction:g}, seed {args.split_seed})")
    if getattr(args, "test_data", None):
        from .solve import read_data
        test = read_data(args.test_data)
        n_dim = model.target.dims[0]
        for t in model.inputs:               # fixed tensors (no sample axis): the training ones
            if t.name not in test and n_dim not in t.dims and t.name in data:
                test[t.name] = data[t.name]
        return data, test, f"test data {', '.join(args.test_data)}"
    return data, None, None


def check_test_data(model, bound, test: dict) -> None:
    """Before training: the test data fits the model and has the training data's sizes
    (all but the sample count)."""
    from ..binding import validate
    _, sizes = validate(model, test)
    n_dim = model.target.dims[0]
    for dim, size in sizes.items():
        if dim != n_dim and bound.sizes.get(dim, size) != size:
            raise DataError(f"the test data has {dim} = {size}, the training data "
                            f"{dim} = {bound.sizes[dim]}; they must agree except in {n_dim}")


def fit_reports(trainer, train: dict, test: dict | None) -> dict:
    """{"train": scores, "test": scores} of the trained network (bmdsl.metrics)."""
    from ..prediction import network_scores
    net = trainer.network()
    reports = {"train": network_scores(net, train)}
    if test is not None:
        reports["test"] = network_scores(net, test)
    return reports


# -- bmdsl evaluate --------------------------------------------------------------------------
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
    from ..prediction import ACTIVATION_KEY, weights_arrays, network_from_weights
    from .solve import read_data
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


def scores_table(reports: dict) -> str:
    from .run import table
    from ..metrics import rows
    return table(rows(reports))


@command("evaluate", "test metrics of trained weights on data: accuracy, or MSE and R^2")
def cmd_evaluate(args) -> int:
    from ..prediction import network_scores
    net, model, data = trained_network(args)
    report = network_scores(net, data)
    if args.json:
        print(json.dumps({"model": model.name, "activation": net.spec["activation"],
                          "units": net.units, "data": list(args.data), "loss": net.spec["loss"],
                          "metrics": report}, indent=2))
        return 0
    print(f"model {model.name}: {net.spec['activation']}, {net.units} unit(s), loss "
          f"{net.spec['loss']}; data {', '.join(args.data)}")
    print(scores_table({"": report}))
    return 0


def _configure(p) -> None:
    add_weights_options(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


cmd_evaluate.configure = _configure
