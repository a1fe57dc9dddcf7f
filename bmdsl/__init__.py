"""bmdsl: a small language and compiler for convex two-layer neural networks.

    >>> import bmdsl
    >>> model = bmdsl.load("models/mlp.bm")        # parse + check
    >>> print(model.summary())

Pipeline (each stage its own module, data flowing one way):
text --syntax--> ast.Program --check--> Model --derive--> Derivation --> CVXPY | torch.
Importing bmdsl and checking a model imports neither torch nor cvxpy.
"""
from __future__ import annotations

from pathlib import Path

from .errors import (BmdslError, BmdslSyntaxError, DataError, NotConvexifiableError,
                     SemanticError, SolverError)

__version__ = "0.1.0"
__all__ = ["parse", "load", "check", "BmdslError", "BmdslSyntaxError", "SemanticError",
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
    """Read and parse a `.bm` file (see `parse`)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise BmdslError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BmdslError(f"cannot read {p}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return parse(text, path=str(p), check=check)


def check(program):
    """Check a syntax tree from `parse(..., check=False)`."""
    from .semantic import check as run_check
    return run_check(program)
