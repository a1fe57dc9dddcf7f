"""`spawn(fn, nproc, args)`: run fn(*args) in nproc processes on this machine
(torch.multiprocessing, "forkserver" start method), each in the process group of
distributed.py, and return rank 0's value.

The parent watches every process: the first that fails (an error, or killed by a
signal) ends the job -- the others are killed (SIGKILL, which also ends a stopped
process) -- and the parent raises one DistributedError naming the rank and the cause.
A rank that stalls makes the others fail at their next collective within the timeout
(distributed.py), which names it; so nothing waits forever.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from multiprocessing.connection import wait

import torch.multiprocessing as mp

from . import distributed
from .distributed import DistributedError
from .shards import rebind, recipe  # noqa: F401 -- launch.recipe / launch.rebind
from ..core.errors import BmdslError

GRACE = 5.0   # seconds the other ranks get to report their own error after a failure


def _context():
    """"forkserver": one clean server process imports torch and bmdsl once; each job's
    processes are forked from it (no CUDA and no threads there, so forking is safe) --
    later jobs of the same program skip the imports (about 5 s per process)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "bmdsl.trainer.sharded"])
    return ctx


def _worker(r, nproc, port, timeout, device, fn, args, queue, quiet):
    os.environ.update(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(nproc),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ[distributed.ENV_TIMEOUT] = str(timeout)
    if quiet and r > 0:     # rank 0 speaks for the job (tables, progress)
        sys.stdout = open(os.devnull, "w")
    try:
        distributed.init(device, timeout)
        out = fn(*args)
        distributed.finish()
        queue.put(("ok", r, out if r == 0 else None))
    except BmdslError as exc:
        queue.put(("error", r, _portable(exc)))
        sys.exit(1)
    except BaseException:                     # a bug: the parent shows the traceback
        queue.put(("crash", r, traceback.format_exc()))
        sys.exit(1)


def _portable(exc):
    """The error itself when it pickles (its class and hint survive), else its text."""
    import pickle
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:   # noqa: BLE001 -- any pickling failure: send the rendered text
        return DistributedError(exc.render() if hasattr(exc, "render") else str(exc))


def spawn(fn, nproc: int, args=(), *, timeout=None, device="cpu", quiet=True):
    """fn(*args) on ranks 0..nproc-1; rank 0's return value. fn and args must pickle."""
    if int(nproc) < 1:
        raise DistributedError(f"--nproc must be a whole number >= 1, not {nproc}")
    timeout = distributed.timeout_seconds(timeout)
    ctx = _context()
    queue = ctx.SimpleQueue()
    port = distributed.free_port()
    procs = [ctx.Process(target=_worker, args=(r, nproc, port, timeout, device, fn, args,
                                               queue, quiet)) for r in range(nproc)]
    for p in procs:
        p.start()
    messages, result, killed = [], None, set()
    try:
        alive = set(range(nproc))
        failed = None
        while alive:
            wait([procs[r].sentinel for r in alive] + [queue._reader], timeout=1.0)
            while not queue.empty():
                kind, r, payload = queue.get()
                if kind == "ok":
                    result = payload if r == 0 else result
                else:
                    messages.append((kind, r, payload))
            for r in sorted(alive):
                if procs[r].exitcode is not None:
                    alive.discard(r)
                    if procs[r].exitcode != 0 and failed is None:
                        failed = r
            if failed is not None or messages:
                killed = _stop(procs, queue, messages)
                break
    except KeyboardInterrupt:       # Ctrl-C reached every rank: rank 0 saves a checkpoint
        _stop(procs, queue, messages, grace=GRACE)
        for kind, r, payload in messages:
            if r == 0 and isinstance(payload, KeyboardInterrupt):
                raise payload from None        # TrainingInterrupted: where it saved
        raise
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()
    _raise(procs, messages, killed)
    return result


def _stop(procs, queue, messages, grace=GRACE):
    """Let the others report (up to `grace` s), then kill what is left."""
    import time
    end = time.monotonic() + grace
    while time.monotonic() < end and any(p.is_alive() for p in procs):
        wait([p.sentinel for p in procs if p.is_alive()] + [queue._reader], timeout=0.2)
        while not queue.empty():
            kind, r, payload = queue.get()
            if kind != "ok":
                messages.append((kind, r, payload))
    killed = set()
    for r, p in enumerate(procs):
        if p.is_alive():
            p.kill()
            killed.add(r)
    return killed


def _raise(procs, messages, killed):
    """One error for the job: a rank killed by a signal first (the cause), else the first
    error reported."""
    for r, p in enumerate(procs):
        if (p.exitcode is not None and p.exitcode < 0 and r not in killed
                and not any(m[1] == r for m in messages)):
            name = signal.Signals(-p.exitcode).name
            others = "; ".join(f"rank {m[1]}: {_text(m[2])}" for m in messages)
            raise DistributedError(
                f"rank {r} died (signal {name}); the job was stopped"
                + (f" ({others})" if others else ""),
                hint="the last checkpoint is intact: resume it with the same --nproc")
    for kind, r, payload in messages:
        if kind == "error":
            raise payload
        raise DistributedError(f"rank {r} failed with an internal error:\n{payload}")
    bad = [r for r, p in enumerate(procs) if p.exitcode not in (0, None) and r not in killed]
    if bad:
        raise DistributedError(f"rank {bad[0]} exited with status {procs[bad[0]].exitcode}")


def _text(exc) -> str:
    return exc.message if hasattr(exc, "message") else str(exc)


def _fit(recipe_, options, fit_options):
    from .sharded import DistributedTrainer
    return DistributedTrainer(rebind(recipe_), **options).fit(**fit_options)


def fit(bound, nproc: int, *, timeout=None, fit_options=None, **options):
    """The Python form of `bmdsl train --nproc N`: DistributedTrainer(bound, **options)
    .fit(**fit_options) on nproc processes of this machine; rank 0's TrainResult.
    The bound's data and patterns (drawn once, here) are sent to every process."""
    device = options.get("device") or "cpu"
    return spawn(_fit, nproc, (recipe(bound), options, dict(fit_options or {})),
                 timeout=timeout, device=device)
