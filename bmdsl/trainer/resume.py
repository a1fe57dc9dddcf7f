"""What a checkpoint holds and how a trainer takes it back (fitloop.py calls these).

The state is everything the next steps and the final certificate depend on: the factors,
the method's state (damping, L-BFGS memory, Adam moments, plateau), the augmented
Lagrangian's multipliers, the batch order, the loop's counters and history, and the warm
start's record with its dual hints (the lifted ADMM's smooth iterate, a dual direction the
certificate tries: without it a resumed run certifies worse than an uninterrupted one).
A checkpoint is checked in full before the trainer is changed (checkpoint.load verifies
its hash and configuration; `restore` its shapes, types and finiteness), so a hand-edited
file is a TrainerError naming what is wrong, never a KeyError or a NaN at the end.
"""
from __future__ import annotations

import os

import torch

from . import checkpoint as ckpt
from .errors import TrainerError

# what a damaged or edited state raises when a method or torch reads it
_BAD_STATE = (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError)
INTERRUPTED = "{model}-interrupted.pt"   # Ctrl-C's file when no path is set (current dir)


def state(t, run, config=True, method=True) -> dict:
    """The trainer's state now (U, V copied: the final restoration changes U in place);
    config=False leaves out the configuration and its digests, method=False the method's
    state (add them before saving; the method is made at its first use, trainer.py)."""
    return {"config": t.config() if config else None, "U": t.U.detach().cpu().clone(),
            "V": t.V.detach().cpu().clone(),
            "method": t.method.state_dict() if method else None,
            "al": None if t.al is None else t.al.state_dict(),
            "batch_gen": t.batch_gen.get_state(), "perm": t.perm, "pos": t.pos,
            "run": run.state(),
            "warm": {"info": _plain(getattr(t, "warm_info", None)),
                     "hints": [h.detach().cpu().clone() for h in getattr(t, "hints", ())]}}


def restore(t, run, path) -> None:
    """Load a checkpoint into trainer t and loop state run; TrainerError if it cannot be
    continued by t (nothing of t is changed then, except a method state it rejected)."""
    s = ckpt.load(path, t.config())
    path = os.fspath(path)
    U = _factor(s["U"], t.U, "U", path)
    V = _factor(s["V"], t.V, "V", path)
    saved_method = t.method.state_dict()
    saved_al = None if t.al is None else t.al.state_dict()
    try:
        perm, pos = s.get("perm"), int(s.get("pos", 0))
        if perm is not None and (not isinstance(perm, torch.Tensor) or perm.dim() != 1 or
                                 sorted(perm.tolist()) != list(range(t.problem.n))):
            raise ValueError("the batch order is not a permutation of the samples")
        warm = s.get("warm") or {}
        hints = tuple(warm.get("hints") or ())
        if not all(isinstance(h, torch.Tensor) and bool(torch.isfinite(h).all())
                   for h in hints):
            raise ValueError("a warm-start dual hint is not a finite tensor")
        run.load(s["run"])
        t.method.load_state_dict(s["method"])
        if t.al is not None:
            t.al.load_state_dict(s["al"])
        t.batch_gen.set_state(s["batch_gen"])
    except _BAD_STATE as exc:
        t.method.load_state_dict(saved_method)
        if t.al is not None:
            t.al.load_state_dict(saved_al)
        raise TrainerError(f"{path} does not hold a state this trainer can continue "
                           f"({type(exc).__name__}: {exc})",
                           hint="use a checkpoint written by bmdsl and not edited") from None
    t.U.data.copy_(U)
    t.V.data.copy_(V)
    t.perm, t.pos = perm, pos
    t.warm_info = warm.get("info")
    t.hints = tuple(h.to(device=t.device, dtype=t.dtype) for h in hints)
    t.warm = None            # the warm start ran before the checkpoint; its result is in U, V


def _factor(x, current, name, path):
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != tuple(current.shape):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise TrainerError(f"{path} holds {name} of shape {got}; this trainer's {name} is "
                           f"{tuple(current.shape)}", hint="use a checkpoint written by "
                                                           "bmdsl and not edited")
    if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
        raise TrainerError(f"{path} holds a non-finite or non-float {name}",
                           hint="use an earlier checkpoint or train from the start")
    return x


def interrupt_path(t) -> str:
    """Where Ctrl-C saves: the trainer's checkpoint (the run's own file) if set, else
    `interrupt_checkpoint` (the CLI sets one next to the output) or
    ./<model>-interrupted.pt, under a free name: an existing file is never replaced."""
    if t.checkpoint:
        return os.fspath(t.checkpoint)
    base = os.fspath(getattr(t, "interrupt_checkpoint", None) or
                     INTERRUPTED.format(model=t.bound.model.name))
    return free_name(base)


def free_name(path: str) -> str:
    """path, or path with -2, -3, ... before its suffix: the first name not in use."""
    if not os.path.lexists(path):
        return path
    stem, suffix = os.path.splitext(path)
    for k in range(2, 10_000):
        candidate = f"{stem}-{k}{suffix}"
        if not os.path.lexists(candidate):
            return candidate
    raise TrainerError(f"no free checkpoint name next to {path}",
                       hint="remove old checkpoints or set checkpoint=PATH")


def _plain(value):
    """Numbers as Python numbers, so torch.load(weights_only=True) reads the record back
    (numpy scalars are not among the types it accepts)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return value.item()                                   # a numpy scalar
    return value
