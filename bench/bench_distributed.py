"""Strong scaling of the data-parallel trainer: 1 against 2 processes (gloo, CPU).

    python bench/bench_distributed.py [--n 100000] [--time-limit 120]

Gated-ReLU MLP, d = 10, c = 2 classes from a random teacher, P = 20 sampled gates,
m = 3, beta = 1e-3, float64, one thread per process (the machine has 2 cores).
(A) cross-entropy: L-BFGS steps on the sharded loss (no Gram matrix), so every loss
    evaluation touches all samples: time per step, collectives and bytes all-reduced per
    step, flops per step (torch.utils.flop_counter on one loss + gradient evaluation,
    times the evaluations per step).
(B) squared loss, the default path: the Gram matrix G = L^* L summed over shards, the
    lifted ADMM warm start, Newton on G (no per-sample work per step); time to a
    certified gap <= 1e-4 (the certificates included).
(C) one certificate of the factors of (A) (100 refinement iterations): in one process,
    and sharded over 2 (each rank sums its own samples, the sums all-reduced).
(D) memory per rank: samples bound, the trainer's estimate, peak resident memory, in a
    fresh job of 1 and of 2 processes (squared loss, Gram path).
Every rank binds only its shard of the samples (docs/distributed.md).
Writes bench/results/distributed.json (with the load average: the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402
from bmdsl.trainer import Trainer, distributed, launch  # noqa: E402

MODEL = """model teacher
input X[n, d]
target Y[n, c]
units m = 3
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(patterns = 20, seed = 0)
loss LOSS
regularize beta = 1e-3, C = l2, R = l2
"""
STEPS = 4          # (A) timed L-BFGS steps (10 iterations each)


def bound_for(n: int, loss: str):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 10))
    hidden = np.maximum(X @ rng.standard_normal((10, 8)), 0) @ rng.standard_normal((8, 2))
    Y = np.eye(2)[np.argmax(hidden + 0.3 * rng.standard_normal((n, 2)), axis=1)]
    return bmdsl.parse(MODEL.replace("LOSS", loss)).derive().bind({"X": X, "Y": Y})


def _make(bound, **options):
    torch.set_num_threads(1)
    if distributed.active():
        from bmdsl.trainer.sharded import DistributedTrainer
        return DistributedTrainer(bound, device="cpu", progress=False, **options)
    return Trainer(bound, device="cpu", progress=False, **options)


def _steps(recipe):
    """(A): seconds per step, evaluations, collectives and bytes per step."""
    t = _make(launch.rebind(recipe), method="lbfgs")
    calls = [0]
    objective = t.objective

    def counted(*a, **k):
        calls[0] += 1
        return objective(*a, **k)
    t.objective = counted
    t.fit(1, certify=False)                          # warm-up (allocations)
    c0, b0, e0 = *distributed.traffic(), calls[0]
    start = time.perf_counter()
    r = t.fit(STEPS, resume=None, certify=False)
    seconds = time.perf_counter() - start
    c1, b1 = distributed.traffic()
    return {"seconds_per_step": seconds / STEPS, "evaluations_per_step":
            (calls[0] - e0) / STEPS, "collectives_per_step": (c1 - c0) / STEPS,
            "bytes_per_step": (b1 - b0) / STEPS, "objective": r.objective}


def _certified(recipe, time_limit, every):
    """Seconds from the trainer's construction to a certified gap <= 1e-4 (or the limit)."""
    start = time.perf_counter()
    t = _make(launch.rebind(recipe))
    built = time.perf_counter() - start
    r = t.fit(certificate_every=every, cert_tol=1e-4, time_limit=time_limit)
    return {"seconds": time.perf_counter() - start, "method": r.method,
            "construct_seconds (data, sharded Gram build)": built,
            "fit_loop_seconds (warm start, certificates)": r.seconds,
            "warm_start": None if r.warm_start is None else r.warm_start["method"],
            "steps": r.steps, "stopped": r.stopped,
            "gap_bound": r.certificate.gap_bound, "objective": r.objective}


def _certificate(recipe, refine_iters=100):
    """Seconds of one certificate (refine_iters refinement iterations) after STEPS L-BFGS
    steps; with 2 processes the sharded certificate (each rank sums its own samples)."""
    t = _make(launch.rebind(recipe), method="lbfgs")
    t.fit(STEPS, certify=False)
    from bmdsl.trainer.certificate import certify
    U, V = t.factors()
    c0, b0 = distributed.traffic()
    start = time.perf_counter()
    cert = certify(t.bound, U, V, refine_iters=refine_iters,
                   samples=getattr(t, "samples", None))
    seconds = time.perf_counter() - start
    c1, b1 = distributed.traffic()
    return {"seconds": seconds, "refine_iters": refine_iters, "gap_bound": cert.gap_bound,
            "collectives": c1 - c0, "bytes": b1 - b0}


def _memory(recipe):
    """(D) in a fresh process of a job of 1 or 2: the samples this rank binds, the
    trainer's estimate (core/footprint.trainer_for, checked before allocation), and the
    peak resident memory after binding, the Gram build and one certificate."""
    import resource

    from bmdsl.core import footprint
    t = _make(launch.rebind(recipe))
    t.fit(0)
    rss = [0.0] * distributed.world()
    distributed.all_gather_object(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                  / 1024)
    return {"samples_held_by_rank_0": int(t.bound.Y.shape[0]),
            "estimated_trainer_MiB_rank_0": footprint.trainer_for(t.bound, t.m, 8).nbytes
            / 2 ** 20, "max_rss_MiB_per_rank": rss}


def flops_per_evaluation(bound) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    t = Trainer(bound, device="cpu", progress=False, method="lbfgs")
    with FlopCounterMode(display=False) as counter:
        t.objective(t.U, t.V).backward()
    return float(counter.get_total_flops())


def both(fn, recipe, *args, repeats=1):
    """1 and 2 processes, alternated `repeats` times (the machine is shared: the median
    of each, and every run with the load average before it)."""
    runs = {"1 process": [], "2 processes": []}
    for _ in range(repeats):
        runs["1 process"].append(dict(fn(recipe, *args), load=os.getloadavg()[0]))
        load = os.getloadavg()[0]
        runs["2 processes"].append(dict(launch.spawn(fn, 2, (recipe,) + args, timeout=600),
                                        load=load))
    key = "seconds_per_step" if "seconds_per_step" in runs["1 process"][0] else "seconds"
    out = {}
    for name, rs in runs.items():
        rs = sorted(rs, key=lambda r: r[key])
        out[name] = dict(rs[len(rs) // 2], all_seconds=[r[key] for r in rs],
                         loads=[r["load"] for r in rs])
    out["speed-up"] = out["1 process"][key] / out["2 processes"][key]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args()
    load = os.getloadavg()
    ce, sq = bound_for(args.n, "cross_entropy"), bound_for(args.n, "squared")
    flops = flops_per_evaluation(ce)
    out = {"n": args.n, "machine": describe(), "load_average_at_start": load,
           "command": f"python bench/bench_distributed.py --n {args.n} "
                      f"--time-limit {args.time_limit:g}"}
    steps = both(_steps, launch.recipe(ce), repeats=3)
    steps["flops_per_evaluation"] = flops
    steps["flops_per_step"] = flops * steps["1 process"]["evaluations_per_step"]
    steps["bytes_per_step_over_flops_per_step"] = \
        steps["2 processes"]["bytes_per_step"] / steps["flops_per_step"]
    out["A_cross_entropy_lbfgs_steps"] = steps
    print(json.dumps(steps, indent=1), flush=True)
    out["C_cross_entropy_one_certificate"] = both(_certificate, launch.recipe(ce))
    print(json.dumps(out["C_cross_entropy_one_certificate"], indent=1), flush=True)
    out["B_squared_gram_time_to_1e-4"] = both(_certified, launch.recipe(sq),
                                              args.time_limit, 1, repeats=2)
    print(json.dumps(out["B_squared_gram_time_to_1e-4"], indent=1), flush=True)
    out["D_squared_memory_per_rank"] = {
        f"{k} process{'es' if k > 1 else ''}": launch.spawn(_memory, k, (launch.recipe(sq),),
                                                           timeout=600) for k in (1, 2)}
    print(json.dumps(out["D_squared_memory_per_rank"], indent=1), flush=True)
    out["load_average_at_end"] = os.getloadavg()
    path = ROOT / "bench" / "results" / "distributed.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
