"""When a fit ends without being told: a certified gap, a stalled gap bound, the schedule
of certificates that decides both (docs/trainer.md, "When a fit stops").

* GAP_TARGET: without `cert_tol`, a fit stops once a certificate's relative duality-gap
  bound (p_BM - d)/d (the Fenchel dual value d <= p*, Sahiner et al. 2024, eq. (20) and
  its any-point form) is <= 1e-6. Unlike `cert_tol` it is only a stopping rule: a fit
  that does not reach it is still "finished" (result.cert_tol stays None).
* The certificate schedule: `certificate_every` N certifies every N steps, 0 never (only
  the final certificate); None (the default) certifies after each chunk of a warm start
  and at BM steps 10, 20, 40, 80, ...: a logarithmic number of certificates, so their cost
  stays a small share of a long run, and a deterministic one, so a resumed run stops
  where an uninterrupted one does. Not for mini-batches or certify=False.
* tol = 0 (every step asked for) turns the default target and the stall rule off.
* Stall: "stalled" once the step count has grown STALL_GROWTH-fold (from the earliest
  certificate considered) without the best gap bound shrinking STALL_FACTOR-fold; a
  method converging at any useful rate (linearly, or even like 1/k) never trips it, a
  bound stuck at a plateau (the issue's 1.8e-5 for 9,000 Newton steps) does.
"""
from __future__ import annotations

GAP_TARGET = 1e-6     # the default certified relative duality gap
AUTO_FIRST = 10       # the first BM step certified by the default schedule (then doubling)
STALL_GROWTH = 4      # steps grown this many times ...
STALL_FACTOR = 2.0    # ... without the best gap bound shrinking this many times: stalled
STALL_MIN_STEPS = 100  # BM steps before the stall rule applies


def target(cert_tol, tol):
    """The gap bound that stops a fit: the one asked for, else GAP_TARGET -- except with
    tol = 0, which asks for every step (None: no default target)."""
    if cert_tol is not None:
        return cert_tol
    return GAP_TARGET if tol > 0 else None


def schedule(every, certify: bool, full_batch: bool):
    """`every` as run_fit uses it: None (the default schedule) becomes 0 (none) for a fit
    without certificates (certify=False) or on mini-batches (their steps are noisy and
    cheap: certify every N steps by asking for it)."""
    if every is None and not (certify and full_batch):
        return 0
    return every


def refine_iters(every, gram) -> int:
    """Refinement iterations of a certificate during the fit: 100 (as always) with the Gram
    matrix, whose refinement never touches the samples, or when certificates were asked
    for; 0 for the default schedule's certificates otherwise. Why: the refinement
    predicts through bmdsl's numpy einsums, measured at > 45 s for 100 iterations on the
    built-in CNN (P = 32, p = 9, q = 18), while the lifted solvers' iterates are already
    refined points (the final certificate refines as always)."""
    return 100 if every is not None or gram is not None else 0


def final_refine_iters(every, gram) -> int:
    """The final certificate's refinement: 1000 iterations (as always) with the Gram matrix
    or when certificates were asked for; none after the default schedule otherwise (same
    reason as refine_iters: without the Gram matrix 100 of them took > 45 s on the CNN)."""
    return 1000 if every is not None or gram is not None else 0


PROBE = 5             # a warm start's first iterations under a time limit, to time them


def first_chunk(warm, time_limit) -> int:
    """A warm start's first chunk: its FIRST_CHUNK; under a time limit first a PROBE of a
    few uncertified iterations that times them (a 100-iteration first chunk ran a digits
    cross-entropy CNN stage more than 90 s past a 20 s limit)."""
    return warm.FIRST_CHUNK if time_limit is None else min(PROBE, warm.FIRST_CHUNK)


def after_probe(warm, elapsed: float, time_limit) -> int:
    """The rest of the first chunk after the probe, no more iterations than fit in the
    time left at the probe's rate (at least 1)."""
    rest = max(1, warm.FIRST_CHUNK - warm.iterations)
    if warm.iterations <= 0 or warm.seconds <= 0:
        return rest
    return max(1, min(rest, int((time_limit - elapsed) / (warm.seconds / warm.iterations))))


def next_chunk(chunk: int, warm, elapsed: float, time_limit) -> int:
    """A warm start's next chunk: the last times its CHUNK_GROWTH (default 2: doubling;
    1 for a solver whose iterations are few and costly, e.g. the proximal Newton's outer
    steps), but with a time limit no more iterations than fit in the time left at the
    rate measured so far (a doubled chunk ran the n = 2000 CNN 25-40 s past a 30 s limit)."""
    chunk *= getattr(warm, "CHUNK_GROWTH", 2)
    if time_limit is None or warm.iterations <= 0 or warm.seconds <= 0:
        return chunk
    per = warm.seconds / warm.iterations
    return max(1, min(chunk, int((time_limit - elapsed) / per)))


def certifies_warm(every) -> bool:
    """Whether a warm start's chunks are certified (every None: the default schedule)."""
    return every is None or bool(every)


def due(every, step: int) -> bool:
    """Whether BM step `step` is certified (every None: steps 10, 20, 40, ...)."""
    if every is None:
        k, r = divmod(step, AUTO_FIRST)
        return r == 0 and k > 0 and k & (k - 1) == 0
    return bool(every) and step % every == 0


def gap_stalled(certificates, step: int, tol) -> bool:
    """certificates: (step, gap bound) so far (warm-start chunks at step 0). Stalled when
    the best bound now is not STALL_FACTOR times below the best bound at step
    <= step / STALL_GROWTH. Never with tol = 0 (every step asked for)."""
    if tol <= 0 or step < STALL_MIN_STEPS or not certificates or \
            certificates[-1][0] != step:
        return False
    earlier = [g for s, g in certificates if s <= step / STALL_GROWTH]
    if not earlier:
        return False
    now = min(g for _, g in certificates)
    return now > min(earlier) / STALL_FACTOR
