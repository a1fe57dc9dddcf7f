"""The training loop of `Trainer.fit`: steps, augmented-Lagrangian updates, stopping,
progress, checkpoints, Ctrl-C, and the final restoration + certificate.

Ctrl-C is deferred to the end of the current step (a SIGINT handler sets a flag, in the
main thread), so the checkpoint it writes is a consistent state; a second Ctrl-C stops at
once. The state saved is everything the next steps depend on, so `resume` continues to
exactly the result of an uninterrupted run with the same seed (tested in float64).
"""
from __future__ import annotations

import logging
import math
import signal
import threading
import time

import numpy as np
import torch

from . import checkpoint as ckpt
from . import health
from . import stopping
from . import resume as resumption  # not `resume`: run_fit's argument of that name
from .certificate import certify as certify_factors
from .errors import TrainingInterrupted
from .result import TrainResult
from .progress import Progress
from .runtime.cones import max_violation, restore_cones

log = logging.getLogger("bmdsl.trainer")

PATIENCE = 5   # consecutive steps with relative change <= tol before stopping
STALLED = 20   # consecutive steps without progress possible (see _stalled)
# what a numerical breakdown inside a step raises: runtime/'s FloatingPointError (with
# its cause), Python's other ArithmeticErrors (a float that overflows, 1e200 ** 2) and
# torch's LinAlgError (a factorization of a singular or NaN matrix)
BREAKDOWNS = (ArithmeticError, torch.linalg.LinAlgError)


class _Run:
    """Loop state that a checkpoint stores besides the factors and the method."""

    def __init__(self):
        self.step, self.seconds, self.calm, self.last, self.stop = 0, 0.0, 0, None, None
        self.history, self.certificates = [], []

    def state(self):
        return {"step": self.step, "seconds": self.seconds, "calm": self.calm,
                "last": self.last, "stop": self.stop, "history": self.history,
                "certificates": self.certificates}

    def load(self, d):
        self.step, self.seconds, self.calm = int(d["step"]), float(d["seconds"]), int(d["calm"])
        self.last, self.stop = d["last"], d["stop"]
        self.history = [tuple(h) for h in d["history"]]
        self.certificates = [tuple(c) for c in d["certificates"]]


# what a checkpoint holds, its restoration and Ctrl-C's file: resume.py
_state, _restore, _interrupt_path = (resumption.state, resumption.restore,
                                      resumption.interrupt_path)


def run_fit(t, max_steps, *, tol, cert_tol, every, callback, resume, time_limit, certify):
    run = _Run()
    if resume is not None:
        _restore(t, run, resume)
    # data whose scale overflows the loss: TrainingFailed (exit 3), before the progress
    # bar and the SIGINT handler exist (nothing to undo)
    health.check_start(t)
    progress = Progress(t.progress, max_steps)
    flag = {"sigint": False, "in_step": False}

    def on_sigint(signum, frame):
        if flag["sigint"]:          # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag["sigint"] = True

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main else None
    start = time.perf_counter() - run.seconds
    every = stopping.schedule(every, certify, t.batch_size is None)
    goal = stopping.target(cert_tol, tol)     # the gap bound that ends the fit, or None
    try:
        if t.warm is not None and resume is None:
            flag["in_step"] = True
            _warm_phase(t, run, start, goal, every, time_limit, progress)
            flag["in_step"] = False
            if flag["sigint"]:
                raise KeyboardInterrupt
        while run.step < max_steps and run.stop is None:
            flag["in_step"] = True
            try:
                f = t.method.step()
            except BREAKDOWNS as exc:     # a runtime breakdown, with its cause
                raise health.breakdown(t, exc, run.step + 1) from None
            run.step += 1
            health.check_step(t, f, run.step)     # diverged: TrainingFailed, not a result
            run.seconds = time.perf_counter() - start
            if t.al is not None and (run.step % t.al_every == 0 or t.method.settled):
                t.al.update(t.problem.slack(t.U.detach()))
                t.method.reset()
            flag["in_step"] = False
            run.history.append((run.step, f, run.seconds))
            change = abs(f - run.last) if run.last is not None else float("inf")
            run.calm = run.calm + 1 if change <= tol * max(1.0, abs(f)) else 0
            run.last = f
            gap = None
            if stopping.due(every, run.step):
                gap = _gap(t, stopping.refine_iters(every, t.problem.gram), goal)
                run.certificates.append((run.step, gap))
            run.stop = _stop(t, run, gap, goal, time_limit) or _stalled(t, tol) or \
                ("stalled" if stopping.gap_stalled(run.certificates, run.step, tol) else None)
            progress.update(run.step, f, run.certificates[-1][1] if run.certificates else None)
            if t.checkpoint and t.checkpoint_every and run.step % t.checkpoint_every == 0:
                ckpt.save(t.checkpoint, _state(t, run))
            if callback is not None:
                callback(run.step, t)
            if flag["sigint"]:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if flag["in_step"]:         # a second Ctrl-C mid-step: the state is not consistent
            raise TrainingInterrupted(
                f"training stopped during step {run.step + 1}; no checkpoint was written for "
                "it", hint="the last periodic checkpoint (--checkpoint-every) still resumes") \
                from None
        path = _interrupt_path(t)
        ckpt.save(path, _state(t, run))
        raise TrainingInterrupted(
            f"training interrupted after step {run.step}; checkpoint saved to {path}",
            hint=f"continue with fit(resume={path!r}) or `bmdsl train ... --resume {path}`") \
            from None
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        progress.close()
    # before _finish restores the cones in U; the method's state (unchanged by _finish) is
    # added only if saved: a fit certified by its warm start never makes the method
    snapshot = _state(t, run, config=False, method=False)
    try:
        return _finish(t, run, run.stop or "max_steps", certify,
                       stopping.final_refine_iters(every, t.problem.gram))
    except KeyboardInterrupt:      # Ctrl-C in the restoration or the final certificate
        path = _interrupt_path(t)
        ckpt.save(path, dict(snapshot, config=t.config(), method=t.method.state_dict()))
        raise TrainingInterrupted(
            f"interrupted during the final certificate, after step {run.step}; checkpoint "
            f"saved to {path}", hint=f"certify it with fit(resume={path!r}) or `bmdsl train "
                                     f"... --resume {path}`") from None


def _warm_phase(t, run, start, goal, every, time_limit, progress):
    """The warm start (runtime/warm.py: lifted ADMM, or the cone interior point for ReLU),
    recorded as step 0 and, chunk by chunk, in warm_start["history"] as (iterations,
    objective, seconds, gap bound or None). It runs in doubling chunks (from its
    FIRST_CHUNK) to its own tolerance or MAX_ITER iterations; unless certificates are
    turned off (`every` = 0), the factored iterate is certified after each chunk, and one
    below `goal` (cert_tol, default stopping.GAP_TARGET) ends the fit with no BM step.
    The BM factors are the factors of its solution, so the method then only polishes -- or,
    for a solver whose converged solution needs no polish (POLISH False), the fit ends
    there ("tol"). No objective at the random start: every way out of the loop sets f."""
    warm = t.warm
    t.problem.goal = goal    # a chunk may end once it could certify (trainer/factored.py)
    chunk, trace, failed = stopping.first_chunk(warm, time_limit), [], None
    probing = chunk < warm.FIRST_CHUNK
    start_U, start_V = t.U.detach().clone(), t.V.detach().clone()
    while True:
        try:
            done = warm.run(min(chunk, warm.MAX_ITER - warm.iterations))
        except BREAKDOWNS as exc:
            failed = str(exc) if isinstance(exc, FloatingPointError) else \
                f"{warm.info()['method']}: {type(exc).__name__}: {exc}"
            break
        run.seconds = time.perf_counter() - start
        if probing and not done and run.seconds < time_limit:   # timed, not certified
            probing, chunk = False, stopping.after_probe(warm, run.seconds, time_limit)
            continue
        probing = False
        U, V = warm.factors(t.m)
        U, V = U.reshape(t.U.shape), V.reshape(t.V.shape)
        fw = float(t.objective(U, V))
        if not math.isfinite(fw):
            failed = f"{warm.info()['method']}: the objective at its factors is {fw}"
            break
        t.U.data.copy_(U)
        t.V.data.copy_(V)
        run.seconds = time.perf_counter() - start
        f = fw
        hint = warm.dual_hint()
        t.hints = () if hint is None else (hint,)
        # a loss gradient the solver knows (the prox ADMM's multiplier); not checkpointed:
        # a resumed run certifies without it (a valid, possibly weaker bound)
        direction = getattr(warm, "dual_direction", lambda: None)()
        t.directions = () if direction is None else (direction,)
        gap = None
        if stopping.certifies_warm(every):
            gap = _gap(t, stopping.refine_iters(every, t.problem.gram), goal)
            run.certificates.append((0, gap))
            run.seconds = time.perf_counter() - start
        trace.append((warm.iterations, f, run.seconds, gap))
        progress.update(0, f, gap, force=True)
        if gap is not None and goal is not None and gap <= goal:
            run.stop = "certificate"
        elif done and not warm.POLISH:
            run.stop = "tol"
        elif time_limit is not None and run.seconds >= time_limit:
            run.stop = "time_limit"
        if run.stop or done or warm.iterations >= warm.MAX_ITER:
            break
        chunk = stopping.next_chunk(chunk, warm, run.seconds, time_limit)
    if failed is not None:
        # the warm start only accelerates: a solver that broke down (its earlier chunks
        # are suspect too) is dropped, BM starts from the initial factors, the record
        # says why (warm_start["failed"])
        log.warning("warm start failed, training from the initial factors: %s", failed)
        t.U.data.copy_(start_U)
        t.V.data.copy_(start_V)
        t.hints = t.directions = ()
        f = float(t.objective(t.U.detach(), t.V.detach()))
    run.history.append((0, f, run.seconds))
    run.last = f
    t.warm_info = dict(warm.info(), history=trace, failed=failed)
    t.warm = None                                 # the factors are warm from now on


def _stalled(t, tol):
    """"stalled" after STALLED consecutive steps that could not decrease the objective
    (runtime/curvature.Newton.stalls; without an augmented Lagrangian, whose multipliers could
    still change it). tol = 0 asks for every step, so it never stops a run early."""
    if tol > 0 and t.al is None and getattr(t.method, "stalls", 0) >= STALLED:
        return "stalled"
    return None


def _stop(t, run, gap, goal, time_limit):
    """Why to stop after this step (None: go on). Decided before the callback, and saved
    with the state, so an interrupted and resumed run stops where an uninterrupted one does."""
    if gap is not None and goal is not None and gap <= goal:
        return "certificate"
    if run.calm >= PATIENCE and (t.al is None or t.al.last_violation <= 1e-12):
        return "tol"
    if time_limit is not None and run.seconds >= time_limit:
        return "time_limit"
    return None


def _gap(t, refine_iters, goal):
    U, V = t.factors()
    cert = certify_factors(t.bound, U, V, refine_iters=refine_iters, gram=t.problem.gram,
                           hints=_numpy(t, "hints"), samples=getattr(t, "samples", None),
                           directions=_numpy(t, "directions"), target=goal)
    t.last_certificate = (U, V, cert)    # _finish reuses it for the same factors
    return float(cert.gap_bound)


def _numpy(t, name):
    """t.hints (the warm start's last smooth iterate, a dual direction for every later
    certificate: a stale one can only be a weaker candidate, the certificate keeps the
    best) or t.directions, as numpy arrays."""
    return tuple(h.detach().cpu().double().numpy() for h in getattr(t, name, ()))


def _finish(t, run, stopped, certify, refine_iters=1000):
    before = after = None
    pb = t.problem             # a shard's: the cones' rows reduced over the shards (cones.py)
    if pb.cone:
        before = max_violation(pb, t.U.detach())
        t.U.data.copy_(restore_cones(pb, t.U.detach()))
    U, V = t.factors()
    b = t.bound
    samples = getattr(t, "samples", None)     # a shard's: its sum over all shards
    if t.problem.cone:
        local = b if samples is None else samples.local
        after = float(max(0.0, -np.min(local.cone_slack(U)))) if U.size else 0.0
        after = after if samples is None else float(samples.most(after))
    reg = b.regularizer_bm(U, V)
    cert = None
    last = getattr(t, "last_certificate", None)
    if certify and stopped == "certificate" and last is not None and \
            np.array_equal(last[0], U) and np.array_equal(last[1], V):
        cert = last[2]      # the certificate that stopped the fit, of these very factors
        # its objective is F + regularizer at these factors, already summed over the data
        # (a second prediction took 0.57 s of a 2.5 s fit on the n = 2000 self-attention)
        loss = float(cert.objective) - reg
    else:
        loss = float(b.loss.value(b.predict_bm(U, V), b.Y)) if samples is None else \
            samples.value(samples.local.predict_bm(U, V))
    if cert is None and certify:
        cert = certify_factors(b, U, V, gram=t.problem.gram, hints=_numpy(t, "hints"),
                               directions=_numpy(t, "directions"),
                               refine_iters=refine_iters, samples=getattr(t, "samples", None))
    t.last_certificate = None
    return TrainResult(objective=loss + reg, loss=loss, regularizer=reg, method=t.method_name,
                       steps=run.step, seconds=run.seconds, stopped=stopped, violation=after,
                       violation_before=before, certificate=cert, device=str(t.device),
                       dtype=str(t.dtype).replace("torch.", ""), U=U, V=V,
                       history=list(run.history), certificates=list(run.certificates),
                       warm_start=getattr(t, "warm_info", None))
