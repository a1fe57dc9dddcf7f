"""ReLU cones on shards: a scalar-output ReLU MLP trained by 1 and by 2 processes
(gloo, CPU), every rank binding only its shard, and the sharded cone NNLS.

    python bench/bench_distcone.py [--n 4001] [--patterns 20]

(A) the fit (cone interior point, its sums all-reduced) and its certificate: objective,
    gap bound, their differences between 1 and 2 processes (relative to the objective),
    seconds, samples held by rank 0, peak resident memory per rank.
(B) one certificate of the same factors, 1 vs 2 processes: seconds, collectives and bytes
    all-reduced (the cone dual norms' pricing rounds: certificates/conennls.py).
(C) one process: the cone dual norms of P patterns by the batched Lawson-Hanson of
    conennls.py against scipy's nnls one problem at a time (what it replaced): seconds
    and the largest difference of the values.
Writes bench/results/distcone.json (with the load average: the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402
from bmdsl.trainer import distributed, launch  # noqa: E402

MODEL = (ROOT / "models" / "relu.bm").read_text()


def bound_for(n: int, patterns: int):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5))
    Y = np.sign(X[:, 0] * X[:, 1] + 0.3 * X[:, 2] + 0.1)
    text = MODEL.replace("patterns = 50", f"patterns = {patterns}")
    return bmdsl.parse(text).derive().bind({"X": X, "Y": Y})


def _fit(recipe):
    from bmdsl.trainer.sharded import DistributedTrainer
    from bmdsl.trainer import Trainer
    torch.set_num_threads(1)
    b = launch.rebind(recipe)
    make = DistributedTrainer if distributed.active() else Trainer
    start = time.perf_counter()
    t = make(b, device="cpu", progress=False)
    r = t.fit()
    seconds = time.perf_counter() - start
    rss = [0.0] * distributed.world()
    distributed.all_gather_object(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                  / 1024)
    c = r.certificate
    return {"objective": r.objective, "gap_bound": c.gap_bound, "dual_value": c.dual_value,
            "method": r.warm_start["method"], "seconds": seconds,
            "samples_held_by_rank_0": int(b.Y.shape[0]), "max_rss_MiB_per_rank": rss,
            "U": r.U, "V": r.V}


def _certificate(recipe, U, V):
    from bmdsl.certificates import certify
    from bmdsl.trainer.sharded import ShardSamples
    torch.set_num_threads(1)
    b = launch.rebind(recipe)
    samples = ShardSamples(b, b) if distributed.active() else None
    c0, b0 = distributed.traffic()
    start = time.perf_counter()
    c = certify(b, U, V, refine_iters=100, samples=samples)
    seconds = time.perf_counter() - start
    c1, b1 = distributed.traffic()
    return {"seconds": seconds, "gap_bound": c.gap_bound, "objective": c.objective,
            "collectives": c1 - c0, "bytes": b1 - b0}


def _oracles(bound, U, V):
    """(C): the batched Lawson-Hanson against scipy's nnls per (pattern, sign)."""
    from scipy.optimize import nnls

    from bmdsl.certificates.dualnorms import DualNormOracle, cone_rows
    g = bound.loss.grad(bound.predict_bm(U, V), bound.Y)
    G = bound.adjoint(g)
    oracle = DualNormOracle(bound)
    start = time.perf_counter()
    ours = oracle(G).values
    batched = time.perf_counter() - start
    M, signs = cone_rows(bound)
    start = time.perf_counter()
    theirs = np.zeros(bound.P)
    for k in range(bound.P):
        for s in (1.0, -1.0):
            c = s * G[k, :, 0]
            lam, _ = nnls((signs[k][:, None] * M).T, -c)
            theirs[k] = max(theirs[k], min(np.linalg.norm(c + M.T @ (signs[k] * lam)),
                                           np.linalg.norm(c)))
    scipy_s = time.perf_counter() - start
    return {"patterns": bound.P, "rows": int(M.shape[0]), "p": int(M.shape[1]),
            "batched_lawson_hanson_seconds": batched, "scipy_nnls_seconds": scipy_s,
            "max_relative_difference": float(np.max(np.abs(ours - theirs))
                                             / max(np.max(np.abs(theirs)), 1e-300))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4001)
    ap.add_argument("--patterns", type=int, default=20)
    args = ap.parse_args()
    bound = bound_for(args.n, args.patterns)
    recipe = launch.recipe(bound)
    out = {"n": args.n, "patterns": args.patterns, "machine": describe(),
           "load_average_at_start": os.getloadavg(),
           "command": f"python bench/bench_distcone.py --n {args.n} "
                      f"--patterns {args.patterns}"}
    one = _fit(recipe)
    two = launch.spawn(_fit, 2, (recipe,), timeout=1200)
    U, V = one.pop("U"), one.pop("V")
    two.pop("U"), two.pop("V")
    f1, f2 = one["objective"], two["objective"]
    out["A_fit"] = {"1 process": one, "2 processes": two,
                    "objective_relative_difference": abs(f1 - f2) / abs(f1),
                    "gap_difference_relative_to_objective":
                        abs(one["gap_bound"] - two["gap_bound"]) * abs(one["dual_value"])
                        / abs(f1)}
    print(json.dumps(out["A_fit"], indent=1), flush=True)
    c1 = _certificate(recipe, U, V)
    c2 = launch.spawn(_certificate, 2, (recipe, U, V), timeout=1200)
    out["B_certificate"] = {"1 process": c1, "2 processes": c2}
    print(json.dumps(out["B_certificate"], indent=1), flush=True)
    out["C_cone_dual_norms_one_process"] = _oracles(bound, U, V)
    print(json.dumps(out["C_cone_dual_norms_one_process"], indent=1), flush=True)
    out["load_average_at_end"] = os.getloadavg()
    path = ROOT / "bench" / "results" / "distcone.json"
    path.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
