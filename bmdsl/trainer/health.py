"""Honest ends of a fit: a NaN or infinite objective or factor, or a numerical method that
broke down, ends the fit with `TrainingFailed` naming the cause -- never a result that
prints "objective: inf", never an endless loop.

Three places are checked (fitloop.py calls these):
* the start: the objective at the initial factors. Not finite there means the data's
  scale overflows float64 in the loss (e.g. targets near 1e300, whose squares are inf):
  no method can do anything, and the hint says to rescale the data;
* every step: the objective and the factors. Not finite after a finite start means the
  method diverged; the message names the method and its learning rate and suggests a
  smaller one or the automatic method;
* the runtime's numerical breakdowns: runtime/ raises FloatingPointError with the cause
  (it imports no bmdsl, so the emitted trainer raises the same); it becomes TrainingFailed.
"""
from __future__ import annotations

import math

import torch

from .errors import TrainingFailed


def finite_factors(t) -> bool:
    with torch.no_grad():
        return bool(torch.isfinite(t.U).all()) and bool(torch.isfinite(t.V).all())


def learning_rate(t):
    """The learning rate in use: the one given, else the method's default (None: none)."""
    return t.lr if t.lr is not None else getattr(t.method, "default_lr", None)


def _method(t) -> str:
    lr = learning_rate(t)
    return t.method_name + ("" if lr is None else f" with learning rate {lr:g}")


def _largest(arrays):
    """(name, max |entry|) of the data array with the largest entry."""
    sizes = {k: float(v.detach().abs().max()) for k, v in arrays.items()
             if torch.is_tensor(v) and v.numel() and v.is_floating_point()}
    return max(sizes.items(), key=lambda kv: kv[1]) if sizes else ("data", 0.0)


def check_start(t) -> float:
    """The objective at the starting factors; TrainingFailed when it is not finite. With
    mini-batches only on the first batch's samples (the full data may be what does not
    fit in memory at once)."""
    arrays = idx = None
    if t.batch_size is not None:
        idx = torch.arange(min(t.problem.n, t.batch_size), device=t.U.device)
        arrays = t.problem.batch(idx)
    with torch.no_grad():
        f = float(t.objective(t.U.detach(), t.V.detach(), arrays, 1.0, idx))
    if not math.isfinite(f):
        name, scale = _largest(t.problem.arrays)
        raise TrainingFailed(
            f"the training objective is {f} at the initial factors, before any step: the "
            f"data's scale overflows float64 in the loss (largest entry: |{name}| = "
            f"{scale:.3g})",
            step=0, method=t.method_name, lr=learning_rate(t),
            hint="rescale the inputs and the target (e.g. to unit scale) and train again")
    return f


def check_step(t, f, step) -> None:
    """After a step: TrainingFailed when the objective or the factors are not finite."""
    if math.isfinite(f) and finite_factors(t):
        return
    what = f"the objective became {f}" if not math.isfinite(f) else \
        "the factors U, V became NaN or infinite"
    lr = learning_rate(t)
    hint = ("use a smaller learning rate (--lr, Trainer(lr=...); "
            f"now {lr:g}) or the automatic method (--method auto)" if lr is not None else
            "this method has no learning rate: try the automatic method (--method auto), "
            "and check the data's scale (rescale the inputs and the target)")
    raise TrainingFailed(f"training diverged: {what} at step {step} of {_method(t)}",
                         step=step, method=t.method_name, lr=lr, hint=hint)


def breakdown(t, exc: Exception, step) -> TrainingFailed:
    """A runtime breakdown (its message names the cause) as TrainingFailed."""
    cause = str(exc) if isinstance(exc, FloatingPointError) else f"{type(exc).__name__}: {exc}"
    return TrainingFailed(f"numerical breakdown at step {step} of {_method(t)}: {cause}",
                          step=step, method=t.method_name, lr=learning_rate(t),
                          hint="rescale the inputs and the target (e.g. to unit scale), or "
                               "try another method (--method)")
