"""Checkpoints: everything a run needs to continue to the same result, sealed by a hash.

File format (version 2): one header line, then the payload.

    BMDSL-CHECKPOINT 2 sha256=<64 hex digits of the payload>\\n
    <payload: torch.save of {"format", "version", "config", "U", "V", "method", ...}>

The sha256 covers every payload byte, so a flipped byte, a truncated copy or a hand edit
is refused when the checkpoint is loaded (not found as a NaN at the end of a resumed run).
The payload is read with torch.load(weights_only=True): tensors, numbers, strings and
containers only, never arbitrary objects. `config` carries what a resumed trainer must
share with the run that wrote it (Trainer.config: the digests of the model's derivation,
of all data arrays and of the patterns, and the options that change the iterates); a
mismatch is refused with the differences named. Writes are atomic (commands/outputs.py).
"""
from __future__ import annotations

import hashlib
import io
import os
import re

import torch

from .errors import TrainerError

FORMAT = "bmdsl-trainer-checkpoint"
VERSION = 2
MAGIC = b"BMDSL-CHECKPOINT"
_HEADER = re.compile(rb"^BMDSL-CHECKPOINT (\d+) sha256=([0-9a-f]{64})\n")
_HEADER_MAX = 128
# digests in Trainer.config, named for people when they differ
DIGESTS = {"model_digest": "the model (its derivation: tensors, einsum specs, activation, "
                           "loss, regularizer) differs",
           "data_digest": "the data (all arrays, including built patches and pooling) differ",
           "patterns_digest": "the activation patterns (masks and gates) differ"}
REQUIRED = ("config", "U", "V", "method", "run")


def encode(state: dict) -> bytes:
    """The file's bytes: header with the payload's sha256, then the payload."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    return MAGIC + f" {VERSION} sha256={digest}\n".encode("ascii") + payload


def save(path, state: dict) -> None:
    """Atomically: a new temporary file in the same directory, then os.replace (so an
    interrupted write leaves the previous checkpoint, and a link at `path` is replaced,
    never written through). In a distributed run only rank 0 writes."""
    from ..core.outputs import OutputError, write_atomic  # lazy: commands import trainer
    from .distributed import is_writer
    if not is_writer():
        return
    data = encode(state)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    try:
        write_atomic(path, write)
    except OutputError as exc:
        raise TrainerError(f"cannot write the checkpoint {os.fspath(path)}: "
                           f"{getattr(exc, 'reason', exc.message)}") from None


def read(path) -> dict:
    """The verified payload as a dict (no configuration check; see `load`)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise TrainerError(f"no checkpoint at {path}") from None
    except OSError as exc:
        raise TrainerError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") \
            from None
    head = _HEADER.match(raw[:_HEADER_MAX])
    if head is None:
        if raw.startswith(MAGIC):
            raise TrainerError(f"{path} is a damaged bmdsl checkpoint: its header line is "
                               "not 'BMDSL-CHECKPOINT <version> sha256=<hex>'",
                               hint="use another checkpoint or train from the start")
        if raw.startswith(b"PK\x03\x04"):          # a torch.save zip without our header
            raise TrainerError(f"{path} is not a bmdsl trainer checkpoint (a torch file "
                               "without the BMDSL-CHECKPOINT header and its sha256)",
                               hint="resume from a file written by bmdsl's --checkpoint "
                                    "or by Ctrl-C")
        raise TrainerError(f"{path} is not a readable bmdsl checkpoint (no BMDSL-CHECKPOINT "
                           "header)", hint="resume from a file written by bmdsl's "
                                           "--checkpoint or by Ctrl-C")
    version = int(head.group(1))
    if version != VERSION:
        raise TrainerError(f"{path} has checkpoint version {version}, this bmdsl reads "
                           f"version {VERSION}")
    payload = raw[head.end():]
    if hashlib.sha256(payload).hexdigest() != head.group(2).decode("ascii"):
        raise TrainerError(f"{path} is corrupt: the sha256 of its {len(payload)}-byte payload "
                           "does not match the one written in its header (the file was "
                           "changed or damaged after it was saved)",
                           hint="use an earlier checkpoint or train from the start")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:   # pickle, zip and torch errors all mean "not a checkpoint"
        raise TrainerError(f"{path} is not a readable bmdsl checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainerError(f"{path} is not a bmdsl trainer checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise TrainerError(f"{path} is an incomplete checkpoint: no {', '.join(missing)}",
                           hint="use a checkpoint written by bmdsl, unedited")
    return state


def load(path, config: dict) -> dict:
    """The saved state; TrainerError if unreadable, corrupt or made by a different
    configuration (each difference named)."""
    state = read(path)
    path = os.fspath(path)
    saved = state["config"]
    if not isinstance(saved, dict):
        raise TrainerError(f"{path} is an incomplete checkpoint: its config is not a table")
    differ = sorted(k for k in config if saved.get(k) != config[k])
    if differ:
        raise TrainerError(f"{path} was made by a different configuration: " + "; ".join(
            _difference(k, saved.get(k), config[k]) for k in differ),
            hint="resume with the same model, data, patterns, method, m, dtype and seed")
    return state


def _difference(key, there, here) -> str:
    if key in DIGESTS:
        short = lambda d: f"{d[:12]}..." if isinstance(d, str) else repr(d)  # noqa: E731
        return f"{DIGESTS[key]} (sha256 {short(there)} there, {short(here)} here)"
    return f"{key} = {there!r} there, {here!r} here"


def digest_arrays(arrays: dict) -> str:
    """sha256 over name, dtype, shape and bytes of every array (sorted by name)."""
    import numpy as np
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def digest_literal(value) -> str:
    """sha256 of a structure of plain literals (spec.build_spec) by its repr: the spec is
    built in a fixed order from the derivation, so equal derivations give equal text."""
    return hashlib.sha256(repr(value).encode()).hexdigest()
