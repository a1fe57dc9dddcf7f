"""How one stage is solved: its units per pattern, its batches, its fit to a certificate.

A stage is the BM factorization (24) of the convex CNN program (23), fitted by
`bmdsl.trainer.Trainer` with the trainer's own choices (`--method auto`: for the squared
loss on the full batch, the lifted ADMM warm start on the Gram block over the free outputs
wherever P p q / c fits it) and certified as `bmdsl train` certifies: the warm start's
chunks and the BM steps are certified on the trainer's schedule, and the fit stops once the
Fenchel duality-gap bound (Sahiner et al. 2024, eq. (20) and its any-point form) is
<= `cert_tol`.

`m = "full"` gives each stage min(p, q) units per pattern: every optimum Z_k [p, q] of
(23) has rank <= min(p, q), so its factors (24) exist with that many units and the BM
factorization can reach the convex optimum whatever the optimum's rank (its rank-deficient
local minima are global, Sahiner et al. 2024, Theorem 3.3; full-rank stationary points
too for C = R = l2, Theorem 3.5). With fewer units than every optimum's rank the BM
objective stays above p* and no certificate can close (measured on the digits: the
optimum of stage 1 at beta = 0.1 has rank 9 = p in 13 of its 16 patterns).
"""
from __future__ import annotations

import logging
import math
import time

from ..core import footprint, memory
from ..core.errors import BmdslError
from ..trainer import Trainer
from ..trainer.certificate import certify
from ..trainer.stopping import GAP_TARGET
from .data import one_hot

log = logging.getLogger("bmdsl.layerwise")
FULL = "full"


def check_units(m) -> None:
    if not (m is None or m == FULL or
            (isinstance(m, int) and not isinstance(m, bool) and m >= 1)):
        raise BmdslError(f"m must be a positive whole number or {FULL!r} (min(p, q) units "
                         f"per pattern), not {m!r}")


def units(m, bound) -> int:
    """Units per pattern: m (None: the model's), or min(p, q) for m = "full"."""
    check_units(m)
    return min(bound.p, bound.q) if m == FULL else m or bound.m


def train_stage(model, s, x, labels, classes, options, store, resume, spec):
    """Fit stage s on images x (module doc): (its network with all P m units, its record)."""
    name, target = spec["inputs"][0][0], spec["target"]
    p = spec["patches"][0]
    # the stage's patches are built by bind: checked against the budget first
    memory.require(footprint.patches(tuple(x.shape), p["kernel"], p["stride"], p["padding"]),
                   options.memory_budget, prefix=f"stage {s}: ")
    bound = model.derive().bind({name: x.cpu().numpy(), target: one_hot(labels, classes)})
    m = units(options.m, bound)
    method, batch = batches(bound, options, m)
    ckpt = None if store is None else store.checkpoint(s)
    trainer = Trainer(bound, device=options.device, dtype=options.dtype, method=method,
                      m=m, seed=options.seed, lr=options.lr, batch_size=batch,
                      checkpoint=ckpt, checkpoint_every=options.checkpoint_every,
                      interrupt_checkpoint=ckpt, progress=options.progress,
                      memory_budget=options.memory_budget)
    log.info("stage %d: input %s, P = %d, m = %d, p = %d, q = %d; %s on %s%s", s,
             list(x.shape[1:]), bound.P, trainer.m, bound.p, bound.q, trainer.method_name,
             trainer.device, "" if trainer.batch_size is None else
             f", mini-batches of {trainer.batch_size}")
    steps = options.max_steps
    if steps is None and options.epochs is not None:
        steps = options.epochs * trainer.batches_per_epoch
    resume = ckpt if resume and ckpt is not None and ckpt.exists() else None
    if resume is not None:
        log.info("stage %d: resuming its training from %s", s, ckpt)
    # on the full batch the fit certifies on its schedule and stops at cert_tol; on
    # mini-batches only once, below (its final certificate would refine 1000 times, each
    # a pass over the data)
    full = trainer.batch_size is None
    result = trainer.fit(steps, tol=options.tol, cert_tol=options.cert_tol if full else None,
                         resume=resume, time_limit=options.time_limit, certify=full)
    start = time.perf_counter()
    cert = result.certificate
    if cert is None or (result.stopped != "certificate" and options.refine_iters > 0):
        # a refined dual point: another valid bound, the smaller one is kept
        refined = certify(bound, result.U, result.V, refine_iters=options.refine_iters,
                          gram=trainer.problem.gram)
        cert = refined if cert is None or refined.gap_bound < cert.gap_bound else cert
    log.info("stage %d: objective %.10g, (p - p*)/p* <= %.3e", s, result.objective,
             cert.gap_bound)
    ws = result.warm_start or {}
    record = {"stage": s, "model": model.name, "input": list(x.shape[1:]),
              "n": int(x.shape[0]), "P": bound.P, "m": trainer.m, "p": bound.p, "q": bound.q,
              "latent_channels": bound.P * trainer.m, "convex_latent_channels": bound.P * bound.q,
              "method": trainer.method_name, "warm_start": ws.get("method"),
              "warm_iterations": ws.get("iterations"), "batch_size": trainer.batch_size,
              "device": str(trainer.device), "steps": result.steps,
              "seconds": result.seconds, "certificate_seconds": time.perf_counter() - start,
              "stopped": result.stopped, "objective": result.objective,
              "gap_bound": _finite(cert.gap_bound), "thm34_bound": _finite(cert.thm34_bound),
              "thm34_applicable": bool(cert.thm34_applicable),
              # against cert_tol, or the trainer's own target without one
              "certified": bool(math.isfinite(cert.gap_bound) and cert.gap_bound <= (
                  GAP_TARGET if options.cert_tol is None else options.cert_tol))}
    return trainer.network(prune=False), record


def _finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def batches(bound, options, m):
    """(method, batch size): the full batch when the trainer's estimate fits the memory
    budget, else the largest halving of n that fits (adam when the method is auto)."""
    itemsize = 8 if options.dtype == "float64" else 4
    if options.batch_size is not None or memory.fits(
            footprint.trainer_for(bound, m, itemsize, options.method, None),
            options.memory_budget):
        return options.method, options.batch_size
    method = "adam" if options.method == "auto" else options.method
    n = bound.Y.shape[0]
    b = n // 2
    while b >= 1:
        if memory.fits(footprint.trainer_for(bound, m, itemsize, method, b),
                       options.memory_budget):
            log.info("the full batch does not fit the memory budget: %s on mini-batches "
                     "of %d", method, b)
            return method, b
        b //= 2
    return options.method, None      # nothing fits: the Trainer names the estimate
