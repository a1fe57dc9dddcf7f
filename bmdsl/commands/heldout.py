"""Held-out data for `bmdsl run`, `train`, `path` and `layerwise`: `--test-data D` or
`--test-fraction f` (a seeded split, `--split-seed`), checked against the training data,
and the train/test metric reports the commands print and record."""
from __future__ import annotations

from ..core.errors import DataError


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
        from ..bind.split import split_data
        train, test = split_data(model, data, args.test_fraction, args.split_seed)
        n = model.target.name
        return train, test, (f"{len(test[n])} of {len(data[n])} samples held out "
                             f"(--test-fraction {args.test_fraction:g}, seed {args.split_seed})")
    if getattr(args, "test_data", None):
        from .data_args import read_data
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
    from ..bind.binding import validate
    _, sizes = validate(model, test)
    n_dim = model.target.dims[0]
    for dim, size in sizes.items():
        if dim != n_dim and bound.sizes.get(dim, size) != size:
            raise DataError(f"the test data has {dim} = {size}, the training data "
                            f"{dim} = {bound.sizes[dim]}; they must agree except in {n_dim}")


def fit_reports(trainer, train: dict, test: dict | None) -> dict:
    """{"train": scores, "test": scores} of the trained network (bmdsl.workflow.metrics)."""
    from ..workflow.prediction import network_scores
    net = trainer.network()
    reports = {"train": network_scores(net, train)}
    if test is not None:
        reports["test"] = network_scores(net, test)
    return reports
