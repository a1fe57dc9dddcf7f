"""BM trainer step throughput against this machine's dense matmul peak (float32).

    python bench/bench_throughput.py [--n 50000] [--reps 5]

Gated-ReLU MLP, n = 50000, d = 100, c = 10, P = 256 patterns, m = 4 units (issue 7; target
>= 60% of the matmul peak). One step = forward + backward of the BM objective (14)/(18).
Useful FLOPs of a step: forward X U (2 n d Pm) and H V (2 n Pm c); backward twice that.
Peak: the best of several float32 matmuls [n, d] @ [d, Pm] and 2048^3, measured in the
same run. Writes bench/results/throughput.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402

MODEL = """model bench
input X[n, d]
target Y[n, c]
units m = 4
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(patterns = 256, seed = 0)
loss squared
regularize beta = 1e-3, C = l2, R = l2
"""


def best_time(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    n, d, c, m = args.n, 100, 10, 4
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((n, d)), "Y": rng.standard_normal((n, c))}
    bound = bmdsl.parse(MODEL).derive().bind(data)
    trainer = bound.to_torch(device="cpu", dtype="float32", method="adam", progress=False)
    U, V = trainer.U, trainer.V
    Pm = bound.P * m

    def step():
        U.grad = V.grad = None
        trainer.objective(U, V).backward()

    t_step = best_time(step, args.reps)
    flops = 6 * n * d * Pm + 6 * n * Pm * c
    Xt = torch.randn(n, d)
    Wt = torch.randn(d, Pm)
    t_mm = best_time(lambda: Xt @ Wt, args.reps)
    A = torch.randn(2048, 2048)
    t_sq = best_time(lambda: A @ A, args.reps)
    peak = max(2 * n * d * Pm / t_mm, 2 * 2048 ** 3 / t_sq)
    rate = flops / t_step
    row = {"n": n, "d": d, "c": c, "P": bound.P, "m": m, "step_s": t_step,
           "step_gflops": rate / 1e9, "matmul_peak_gflops": peak / 1e9,
           "fraction_of_peak": rate / peak, "threads": torch.get_num_threads()}
    print(f"step {t_step * 1e3:.1f} ms  {rate / 1e9:.1f} GFLOP/s useful  "
          f"peak {peak / 1e9:.1f} GFLOP/s  -> {100 * rate / peak:.0f}% of the matmul peak")
    out = ROOT / "bench" / "results" / "throughput.json"
    out.write_text(json.dumps({"machine": describe(), "result": row}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
