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
from pathlib import Path

from .errors import (BmdslError, BmdslSyntaxError, DataError, NotConvexifiableError,
                     SemanticError, SolverError)

# a library logs and lets the program configure logging (the CLI does: bmdsl/logs.py)
logging.getLogger("bmdsl").addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = ["parse", "load", "check", "predict", "evaluate", "load_network", "BmdslError", "BmdslSyntaxError", "SemanticError",
           "NotConvexifiableError", "DataError", "SolverError"]


def parse(text: str, *, path: str = "<string>", check: bool = True):
    """Parse model text. Returns the checked `Model`, or with `check=False` the unchecked
    syntax tree (`bmdsl.ast.Program`) for tooling. Raises a `BmdslError` subclass."""
    from .syntax import parse_program
    program = parse_program(text, path)
    if not check:
        return program
    from .semantic import check as run_check
    return run_check(program)


def load(path: str | Path, *, check: bool = True):
    """Read and parse a `.bm` file (see `parse`). A bare name that is not a file, such as
    "mlp" or "relu.bm", is one of the example models shipped with bmdsl
    (`bmdsl.shipped.shipped_models()`); an unknown name lists them."""
    p = Path(path)
    if not _exists(p):
        from .shipped import resolve, unknown
        found = resolve(str(path))
        if found is not None:
            return parse(found.read_text(), path=str(found), check=check)
        if p.name == str(path):      # a bare name: perhaps a shipped model was meant
            raise unknown(str(path), "no such file")
    from .modeltext import read_text  # size limit; UTF-8, else the line/column of the bad byte
    return parse(read_text(p), path=str(p), check=check)


def _exists(p: Path) -> bool:
    """p.exists(), where a name the system refuses (too long, a NUL byte) counts as a
    file, so that reading it reports the system's reason."""
    try:
        return p.exists()
    except (OSError, ValueError):
        return True


def check(program):
    """Check a syntax tree from `parse(..., check=False)`."""
    from .semantic import check as run_check
    return run_check(program)


def predict(model, weights, data, *, prune=True):
    """Predictions of trained weights (a `bmdsl train` .npz, or a saved network) for the
    inputs in `data` (dict or data file); see bmdsl/prediction.py."""
    from .prediction import predict as _predict
    return _predict(model, weights, data, prune=prune)


def evaluate(model, weights, data) -> dict:
    """{"n", "loss", accuracy or mse and r2} of trained weights on data with targets."""
    from .prediction import evaluate as _evaluate
    return _evaluate(model, weights, data)


def load_network(path, map_location="cpu"):
    """A network saved with `net.save(path)` (a torch.nn.Module; loaded weights-only)."""
    from .trainer.network import load_network as _load
    return _load(path, map_location)
