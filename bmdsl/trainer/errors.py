"""Errors of the torch trainer: BmdslError subclasses, so the CLI prints them cleanly."""
from __future__ import annotations

from ..core.errors import BmdslError, SolverError


class TrainerError(BmdslError):
    """A training option that cannot work (method, device, dtype, batch size, checkpoint)."""

    kind = "trainer error"


class TrainingInterrupted(SolverError, KeyboardInterrupt):
    """Ctrl-C during `fit`: a checkpoint was saved; also a KeyboardInterrupt, so Python
    callers that catch KeyboardInterrupt keep working."""

    kind = "interrupted"


class TrainingFailed(SolverError):
    """The trainer ran but produced no solution: the objective or the factors became NaN or
    infinite (divergence, or data whose scale overflows float64), or a numerical method
    broke down (runtime/: a FloatingPointError naming the cause). Nothing it computed is a
    solution; the CLI exits with code 3. `step` is the step at which it was detected (0:
    before the first BM step), `method` and `lr` the method and learning rate in use."""

    kind = "training failed"

    def __init__(self, message, *, step=None, method=None, lr=None, hint=None):
        super().__init__(message, hint=hint)
        self.step, self.method, self.lr = step, method, lr
