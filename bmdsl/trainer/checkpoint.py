"""Checkpoints: everything a run needs to continue to the same result (torch.save).

Written to a temporary file and renamed, so an interrupted write never leaves a broken
checkpoint; loaded with weights_only=True (tensors, numbers, strings, containers only).
"""
from __future__ import annotations

import os

import torch

from .errors import TrainerError

FORMAT = "bmdsl-trainer-checkpoint"
VERSION = 1


def save(path, state: dict) -> None:
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:   # torch reports a missing directory as RuntimeError
        raise TrainerError(f"cannot write the checkpoint {path}: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None


def load(path, config: dict) -> dict:
    """The saved state; TrainerError if unreadable or made by a different configuration."""
    path = os.fspath(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainerError(f"no checkpoint at {path}") from None
    except Exception as exc:   # pickle, zip and torch errors all mean "not a checkpoint"
        raise TrainerError(f"{path} is not a readable bmdsl checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainerError(f"{path} is not a bmdsl trainer checkpoint")
    if state.get("version") != VERSION:
        raise TrainerError(f"{path} has checkpoint version {state.get('version')}, this "
                           f"bmdsl reads version {VERSION}")
    saved = state.get("config", {})
    differ = sorted(k for k in config if saved.get(k) != config[k])
    if differ:
        raise TrainerError(f"{path} was made by a different configuration: " + "; ".join(
            f"{k} = {saved.get(k)!r} there, {config[k]!r} here" for k in differ),
            hint="resume with the same model, data, patterns, method, m, dtype and seed")
    return state
