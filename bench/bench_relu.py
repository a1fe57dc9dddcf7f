"""ReLU MLP with a scalar output: BM trainer against CVXPY + Clarabel to the same objective.

    python bench/bench_relu.py [--n 600] [--d 20] [--patterns 200]

CVXPY must carry the 2nP cone constraints of the exact program (seed 002 eq. (5)); the BM
trainer keeps the cones (19) on its factors. Both use the same sampled patterns. BM runs
twice, stopped after a tenth of CVXPY's time (the target) and after all of it; each run
reports its objective at the cone-restored factors against CVXPY's optimum p*.
Writes bench/results/relu.json. Target (issue 7): BM >= 10x faster at n = 600, P = 200.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402

MODEL = """model relu_scalar
input X[n, d]
target Y[n]
units m = 4
weights W1[d], W2
layer A[n] = X[n, i] * W1[i]
output Yhat[n] = act(A)[n] * W2
activation relu(patterns = PATTERNS, seed = 0)
loss squared
regularize beta = 1e-2, C = l2, R = l2
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--patterns", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.d)) / np.sqrt(args.d)
    teacher = np.maximum(X @ rng.standard_normal((args.d, 5)), 0) @ rng.standard_normal(5)
    data = {"X": X, "Y": teacher + 0.1 * rng.standard_normal(args.n)}
    bound = bmdsl.parse(MODEL.replace("PATTERNS", str(args.patterns))).derive().bind(data)

    t = time.perf_counter()
    sol = bound.to_cvxpy().solve()
    t_cvx = time.perf_counter() - t
    print(f"CVXPY: {sol.status}, p* = {sol.value:.8f}, {t_cvx:.1f} s "
          f"({2 * args.n * bound.P} cone constraints)", flush=True)

    # BM with the default method, stopped by a time limit: a tenth of CVXPY's time (the
    # target) and all of it. Its objective is evaluated after the cones are restored
    # (TrainResult.objective), so it is the value of a feasible point of (19).
    runs = []
    for fraction in (0.1, 1.0):
        result = bound.to_torch(progress=False).fit(time_limit=fraction * t_cvx)
        rel = (result.objective - sol.value) / abs(sol.value)
        runs.append({"time_limit": fraction * t_cvx, "seconds": result.seconds,
                     "method": result.method, "steps": result.steps,
                     "objective": result.objective, "relative_gap": rel,
                     "violation": result.violation, "reached_1e-4": bool(rel <= 1e-4)})
        print(f"BM ({result.method}, {fraction:g} x CVXPY time = {fraction * t_cvx:.1f} s): "
              f"{result.steps} steps, objective {result.objective:.8f}, (p - p*)/p* = "
              f"{rel:.2e} ({'within' if rel <= 1e-4 else 'NOT within'} 1e-4), violation "
              f"{result.violation}", flush=True)
    out = ROOT / "bench" / "results" / "relu.json"
    out.write_text(json.dumps({"machine": describe(), "n": args.n, "d": args.d, "P": bound.P,
                               "cvxpy_seconds": t_cvx, "p_star": sol.value, "bm_runs": runs},
                              indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
