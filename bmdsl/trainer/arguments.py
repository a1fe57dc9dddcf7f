"""The numeric arguments of `Trainer(...)` and `fit(...)`, checked before any work.

One table: argument -> (test, what is accepted). A value that fails raises TrainerError
naming the argument, the value and the accepted range, so a Python caller meets the same
rule as the command line (whose options are checked by argparse first). None always
means "the default" and is accepted.
"""
from __future__ import annotations

import math
import numbers

from .errors import TrainerError


def _whole(x) -> bool:
    """An int (or a float equal to one), never a bool."""
    if isinstance(x, bool):
        return False
    if isinstance(x, numbers.Integral):
        return True
    return isinstance(x, numbers.Real) and math.isfinite(float(x)) and float(x).is_integer()


def _real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _at_least(low):
    return lambda x: _whole(x) and int(x) >= low


def _positive(x) -> bool:
    return _real(x) and float(x) > 0


def _nonnegative(x) -> bool:
    return _real(x) and float(x) >= 0


RULES = {
    "m": (_at_least(1), "positive: a whole number >= 1 (units per pattern)"),
    "seed": (lambda x: _whole(x) and 0 <= int(x) < 2 ** 63, "a whole number >= 0"),
    "lr": (_positive, "a finite number > 0"),
    "batch_size": (_at_least(1), "positive: a whole number >= 1"),
    "init_scale": (_positive, "a finite number > 0"),
    "checkpoint_every": (_at_least(1), "a whole number >= 1 (steps)"),
    "certificate_every": (_at_least(0), "a whole number >= 0 (steps; 0: never)"),
    "al_every": (_at_least(1), "a whole number >= 1 (steps)"),
    "max_steps": (_at_least(0), "a whole number >= 0"),
    "epochs": (_at_least(0), "a whole number >= 0"),
    "tol": (_nonnegative, "a finite number >= 0"),
    "cert_tol": (_positive, "a finite number > 0 (a relative duality-gap bound)"),
    "time_limit": (_positive, "a finite number > 0 (seconds)"),
}


def check_arguments(**values) -> None:
    """TrainerError for the first value (not None) outside its RULES entry."""
    for name, value in values.items():
        if value is None:
            continue
        test, accepted = RULES[name]
        try:
            ok = bool(test(value))
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise TrainerError(f"{name} = {value!r} is not accepted: {name} must be {accepted}")
