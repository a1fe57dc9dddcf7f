"""argparse types for the commands' options: every value is checked when the command line
is read, before any model, data or solver work (docs/cli.md, "Option values").

A type raises `argparse.ArgumentTypeError`, so argparse prints
`bmdsl CMD: error: argument --lr: must be a finite number > 0, not -1` and exits 2.
Names that come from a registry (solvers, training methods) are checked against that
registry when the option is given, importing it only then: `bmdsl check` never pays for
cvxpy or torch.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

MAX_ENUM_CAP = 16  # 2^(k-1) sign vectors per pattern in the CVXPY program: 32768 at most


@dataclass(frozen=True)
class Number:
    """A whole or real number in [low, high] (either end may be open with None);
    real numbers must be finite (NaN and inf are refused)."""

    kind: type
    low: float | None = None
    high: float | None = None
    strict_low: bool = False  # low itself excluded (e.g. a learning rate > 0)

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {self.accepted()}, not {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {self.accepted()}, not {text}")
        below = self.low is not None and (value <= self.low if self.strict_low else value < self.low)
        above = self.high is not None and value > self.high
        if below or above:
            raise argparse.ArgumentTypeError(f"must be {self.accepted()}, not {text}")
        return value

    def accepted(self) -> str:
        what = "a whole number" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{what} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{what} {'>' if self.strict_low else '>='} {self.low}"
        return what


# the ranges in use; one name per meaning, shared by every command
positive_int = Number(int, 1)              # --epochs, --batch-size, --checkpoint-every
count = Number(int, 0)                     # --steps, --certificate-every (0: none), --refine-iters
seed = Number(int, 0, 2**32 - 1)           # --train-seed, --data-seed (numpy and torch seeds)
positive_real = Number(float, 0, strict_low=True)  # --lr, --time-limit, --cert-tol, tolerances
enum_cap = Number(int, 0, MAX_ENUM_CAP)


def solver_name(text: str) -> str:
    """An installed CVXPY solver, by any capitalization; its CVXPY name."""
    import cvxpy as cp
    name = text.upper()
    if name not in cp.installed_solvers():
        raise argparse.ArgumentTypeError(
            f"solver {text!r} is not installed; installed solvers: "
            f"{', '.join(cp.installed_solvers())}")
    return name


def method_name(text: str) -> str:
    """'auto' or a training method of the trainer's registry (bmdsl.trainer.methods)."""
    if text == "auto":   # the default: no torch import just to read the command line
        return text
    from ..trainer.methods import METHODS
    if text not in METHODS:
        raise argparse.ArgumentTypeError(
            f"unknown training method {text!r}; accepted: auto, {', '.join(METHODS)}")
    return text


# --solver-opt values: words that read as booleans; then whole numbers, then reals
BOOLEANS = {"true": True, "false": False}
RESERVED_SOLVER_OPTIONS = {"solver": "--solver", "verbose": "--verbose"}


def solver_option(text: str) -> tuple:
    """KEY=VALUE for the solver, VALUE read as a bool, an int, a float or kept as text."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier() or not raw:
        raise argparse.ArgumentTypeError(
            f"expects KEY=VALUE (e.g. max_iter=500 or eps_abs=1e-6), not {text!r}")
    if key in RESERVED_SOLVER_OPTIONS:
        raise argparse.ArgumentTypeError(
            f"{key} is not a solver setting here: use {RESERVED_SOLVER_OPTIONS[key]}")
    return key, parse_value(raw)


def parse_value(raw: str):
    if raw.lower() in BOOLEANS:
        return BOOLEANS[raw.lower()]
    for kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            continue
        if isinstance(value, float) and math.isnan(value):
            raise argparse.ArgumentTypeError(f"value {raw!r} is not a number a solver accepts")
        return value
    return raw


class SolverOptions(argparse.Action):
    """Collects --solver-opt KEY=VALUE items into one dict; a key given twice is a usage
    error (which value would win is not obvious)."""

    def __call__(self, parser, namespace, pair, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        key, value = pair
        if key in options:
            parser.error(f"argument {option_string}: {key} given twice")
        options[key] = value
        setattr(namespace, self.dest, options)


def add_solver_options(p) -> None:
    """--solver and --solver-opt, the same for `bmdsl solve` and `bmdsl run`."""
    p.add_argument("--solver", type=solver_name, default=None,
                   help="an installed CVXPY solver (default: Clarabel)")
    p.add_argument("--solver-opt", action=SolverOptions, type=solver_option, default={},
                   metavar="KEY=VALUE",
                   help="a solver setting passed to cvxpy, e.g. max_iter=500 (Clarabel) or "
                        "max_iters=100000 (SCS); repeatable")


class _DeprecatedSpelling(argparse.Action):
    """An option's old spelling: still read, with a warning naming the new one."""

    def __init__(self, option_strings, dest, new="", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        import logging
        logging.getLogger("bmdsl").warning("%s is deprecated: use %s", option_string, self.new)
        setattr(namespace, self.dest, values)


def add_method_option(p, help: str):
    """--method: 'auto' or a training method of the trainer's table (the Trainer's and the
    estimators' `method`). --optimizer, its spelling in bmdsl 0.1.0, stays accepted (hidden
    from --help, with a warning) so that existing scripts keep running."""
    p.add_argument("--method", type=method_name, default="auto", help=help)
    p.add_argument("--optimizer", dest="method", type=method_name, action=_DeprecatedSpelling,
                   new="--method", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
