"""bmdsl: a small language and compiler for convex two-layer neural networks.

    >>> import bmdsl
    >>> model = bmdsl.load("models/mlp.bm")        # parse + check
    >>> print(model.summary())

Pipeline (each stage its own module, data flowing one way):
text --syntax--> ast.Program --check--> Model --derive--> Derivation --> CVXPY | torch.
Importing bmdsl and checking a model imports neither torch nor cvxpy.
"""
from __future__ import annotations

import logging

from .check.loading import check, load, parse
from .core.version import __version__
from .core.errors import (BmdslError, BmdslSyntaxError, DataError, NotConvexifiableError,
                          SemanticError, SolverError)

from .core.stages import LATER


# The fluent API's later stages (core/stages.py): each imports its stage when called, so
# checking a model imports neither torch nor cvxpy and no stage imports a later one.
def _derive(model):
    from .derive.derivation import derive
    return derive(model)


def _summary(model):
    from .derive.summary import summarize
    return summarize(model)


def _bind(derivation, data, patterns=None, **options):
    from .bind.bound import BoundModel
    return BoundModel(derivation, data, patterns, **options)


def _to_cvxpy(bound, **options):
    from .cvx import build_problem
    return build_problem(bound, **options)


def _to_torch(bound, device=None, **options):
    from .trainer import Trainer
    return Trainer(bound, device=device, **options)


LATER.update(derive=_derive, summary=_summary, bind=_bind, to_cvxpy=_to_cvxpy,
             to_torch=_to_torch)

# a library logs and lets the program configure logging (the CLI does: bmdsl/core/logs.py)
logging.getLogger("bmdsl").addHandler(logging.NullHandler())

__all__ = ["parse", "load", "check", "predict", "evaluate", "load_network", "BmdslError", "BmdslSyntaxError", "SemanticError",
           "NotConvexifiableError", "DataError", "SolverError"]


def predict(model, weights, data, *, prune=True):
    """Predictions of trained weights (a `bmdsl train` .npz, or a saved network) for the
    inputs in `data` (dict or data file); see bmdsl/workflow/prediction.py."""
    from .workflow.prediction import predict as _predict
    return _predict(model, weights, data, prune=prune)


def evaluate(model, weights, data) -> dict:
    """{"n", "loss", accuracy or mse and r2} of trained weights on data with targets."""
    from .workflow.prediction import evaluate as _evaluate
    return _evaluate(model, weights, data)


def load_network(path, map_location="cpu"):
    """A network saved with `net.save(path)` (a torch.nn.Module; loaded weights-only)."""
    from .trainer.network import load_network as _load
    return _load(path, map_location)
