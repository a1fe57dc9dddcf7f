"""ReLU MLP with a scalar output: BM trainer against CVXPY + Clarabel to the same objective.

    python bench/bench_relu.py [--n 600] [--d 20] [--patterns 200]

CVXPY must carry the 2nP cone constraints of the exact program (seed 002 eq. (5)); the BM
trainer keeps the cones (19) on its factors. Both use the same sampled patterns; BM time is
the time until its objective is within 1e-4 (relative) of CVXPY's optimum p*.
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

    trainer = bound.to_torch(progress=False)
    result = trainer.fit()
    target = sol.value * (1 + 1e-4)
    # history holds (step, objective, seconds since the start) at feasible iterates
    # (the default method keeps the cones exactly); the first entry within 1e-4 counts
    hit = next((h for h in result.history if h[1] <= target), None)
    t_bm = hit[2] if hit else result.seconds
    ok = hit is not None
    print(f"BM: {result.method}, objective {result.objective:.8f} "
          f"({'reached 1e-4 of p* at step ' + str(hit[0]) if ok else 'did NOT reach 1e-4 of p*'}), "
          f"violation {result.violation}, {t_bm:.1f} s -> speed-up {t_cvx / t_bm:.1f}x", flush=True)
    out = ROOT / "bench" / "results" / "relu.json"
    out.write_text(json.dumps({"machine": describe(), "n": args.n, "d": args.d, "P": bound.P,
                               "cvxpy_seconds": t_cvx, "p_star": sol.value, "bm_seconds": t_bm,
                               "bm_objective": result.objective, "reached": ok,
                               "bm_method": result.method, "violation": result.violation,
                               "speedup": t_cvx / t_bm}, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
