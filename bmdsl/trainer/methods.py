"""bmdsl's view of the BM methods: the runtime's table (runtime/policy.py: METHODS, the
order AUTO of `auto`, each method's `accepts`), with a refusal as a TrainerError.

The methods themselves (steps and per-method constants) live in the bmdsl-free runtime
(runtime/steps.py, runtime/curvature.py), so the stand-alone trainer that bmdsl emits
chooses and steps exactly as the Trainer does.
"""
from __future__ import annotations

from .errors import TrainerError
from .runtime.policy import AUTO, METHODS, MethodRefused, choose

__all__ = ["AUTO", "METHODS", "resolve"]


def resolve(name: str, problem, m: int, full_batch: bool) -> str:
    """The method for `name` ("auto" or a METHODS key); TrainerError with the reasons if
    it cannot run."""
    try:
        return choose(name, problem, m, full_batch)
    except MethodRefused as exc:
        raise TrainerError(str(exc)) from None
