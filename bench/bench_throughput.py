"""BM trainer step throughput against this machine's dense matmul peak (float32).

    python bench/bench_throughput.py [--n 50000] [--rounds 5] [--ablation] [--threads T]
                                     [--tiles 65536 262144 ...] [--no-generic]

Gated-ReLU MLP, n = 50000, d = 100, c = 10, P = 256 patterns, m = 4 units (issue 7; target
>= 60% of the matmul peak). One step = forward + backward of the BM objective (14)/(18),
`trainer.objective(U, V)`, through the fused path (runtime/fused.py) and, for
comparison, through the generic einsum path (the same problem with `fused = None`).
`--ablation` adds the fused path with a new tile buffer every step ("fresh_buffer"), with
one worker using torch's threads inside each tile ("one_worker"), and without tiles (one
[Pm, n] block, one worker: "untiled"); `--tiles` times other tile sizes.

FLOPs of a step. Needed: forward X U^T (2 n d Pm) and H V (2 n Pm c); backward
dU = dA^T X (2 n d Pm), dV = H^T R and dH = R V^T (2 n Pm c each): 4 n d Pm + 6 n Pm c.
X is data, so no gradient dX is due; the first version of this benchmark counted one
(6 n d Pm + 6 n Pm c, "legacy" below, 1.44x the work done). Both are reported; the
fraction of the peak is the needed count's.

Peak: the faster of float32 matmuls [n, d] @ [d, Pm] (into a reused output: no page
faults) and 2048^3, timed right before and right after every step (the better of the
two): the machine may be shared, and a load change then hits the step and its peak
alike. Each step's fraction of the peak beside it is reported as the median (and best)
over rounds. Writes bench/results/throughput.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402
from bmdsl.trainer.runtime import fused  # noqa: E402

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


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tiles", type=int, nargs="*", default=[],
                    help="also time the fused step with these tile sizes (entries)")
    ap.add_argument("--ablation", action="store_true",
                    help="also time fresh_buffer, one_worker and untiled (see above)")
    ap.add_argument("--no-generic", action="store_true", help="skip the generic path")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, d, c, m = args.n, 100, 10, 4
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((n, d)), "Y": rng.standard_normal((n, c))}
    bound = bmdsl.parse(MODEL).derive().bind(data)
    trainer = bound.to_torch(device="cpu", dtype="float32", method="adam", progress=False)
    U, V, pb = trainer.U, trainer.V, trainer.problem
    plan, Pm = pb.fused, bound.P * m
    assert plan is not None, "the benchmark model must take the fused path"

    def step(tile=None, workers=None, fresh=False, generic=False):
        """One variant: its own copy of the plan, so no variant sees another's buffer."""
        own = copy.copy(plan)
        own.block = None if tile is None else max(16, tile // Pm)
        own.workers, own.spare = workers, None

        def run():
            pb.fused = None if generic else own
            if fresh:
                own.spare = None   # a new tile buffer every step: its pages fault in
            U.grad = V.grad = None
            trainer.objective(U, V).backward()
        return run

    Xt, Wt, XW = torch.randn(n, d), torch.randn(d, Pm), torch.empty(n, Pm)
    A = torch.randn(2048, 2048)
    needed, legacy = 4 * n * d * Pm + 6 * n * Pm * c, 6 * n * d * Pm + 6 * n * Pm * c
    steps = {"fused": step()}
    steps.update({f"fused_tile_{t}": step(t) for t in args.tiles})
    if args.ablation:
        steps["fresh_buffer"] = step(fresh=True)
        steps["one_worker"] = step(workers=1)
        steps["untiled"] = step(tile=n * Pm, workers=1)
    if not args.no_generic:
        steps["generic"] = step(generic=True)
    for fn in (lambda: torch.mm(Xt, Wt, out=XW), lambda: A @ A, *steps.values()):
        fn()   # warm-up: allocations, MKL's first-call set-up

    def peak_now() -> float:
        return max(2 * n * d * Pm / timed(lambda: torch.mm(Xt, Wt, out=XW)),
                   2 * 2048 ** 3 / timed(lambda: A @ A))

    load = os.getloadavg()[0]
    times = {k: [] for k in steps}
    fractions = {k: [] for k in steps}
    peaks = []
    for _ in range(args.rounds):
        for name, fn in steps.items():
            before = peak_now()
            t = timed(fn)
            peak = max(before, peak_now())      # the peak beside this very step
            times[name].append(t)
            fractions[name].append(needed / t / peak)
            peaks.append(peak)
    pb.fused = plan
    rows = {}
    for name in steps:
        f, t = np.array(fractions[name]), np.array(times[name])
        rows[name] = {"step_s_min": t.min(), "step_s_median": float(np.median(t)),
                      "fraction_median": float(np.median(f)), "fraction_best": f.max(),
                      "fraction_median_legacy_count": float(np.median(f)) * legacy / needed,
                      "fractions": f.tolist()}
        print(f"{name:18s} step {1e3 * t.min():7.1f} ms (median {1e3 * np.median(t):7.1f})  "
              f"{100 * np.median(f):4.0f}% of the peak, best {100 * f.max():3.0f}% "
              f"(median {100 * np.median(f) * legacy / needed:.0f}% with the legacy count)")
    print(f"peak {max(peaks) / 1e9:.1f} GFLOP/s (float32 matmul; median "
          f"{np.median(peaks) / 1e9:.1f}), {torch.get_num_threads()} threads, load average "
          f"{load:.2f} -> {os.getloadavg()[0]:.2f}")
    result = {"n": n, "d": d, "c": c, "P": bound.P, "m": m, "rounds": args.rounds,
              "flops_needed": needed, "flops_legacy_count": legacy,
              "matmul_peak_gflops_best": max(peaks) / 1e9,
              "matmul_peak_gflops_median": float(np.median(peaks)) / 1e9,
              "threads": torch.get_num_threads(), "load_average_at_start": load,
              "default_tile_entries": fused.FUSED_TILE, "steps": rows}
    out = ROOT / "bench" / "results" / "throughput.json"
    out.write_text(json.dumps({"machine": describe(), "result": result}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
