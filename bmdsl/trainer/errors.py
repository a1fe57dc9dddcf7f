"""Errors of the torch trainer: BmdslError subclasses, so the CLI prints them cleanly."""
from __future__ import annotations

from ..errors import BmdslError, SolverError


class TrainerError(BmdslError):
    """A training option that cannot work (method, device, dtype, batch size, checkpoint)."""

    kind = "trainer error"


class TrainingInterrupted(SolverError, KeyboardInterrupt):
    """Ctrl-C during `fit`: a checkpoint was saved; also a KeyboardInterrupt, so Python
    callers that catch KeyboardInterrupt keep working."""

    kind = "interrupted"
