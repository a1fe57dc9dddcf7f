"""The lifted ADMM's z-step (runtime/lifted.py) at the n = 2000 CNN's size: the explicit
inverse (main before 2026-12-05: Cholesky + cholesky_inverse, a product per iteration)
against the Cholesky factor (two triangular solves per iteration), side by side in one
process, alternating.

    python bench/bench_zstep.py [--n 2592] [--columns 2,10] [--repeats 7]
                                [--out bench/results/zstep.json]

G_F = M^T M / 2000 + rho I (M [2000, n] Gaussian, seed 0, rho = 0.05). Per repeat: one
factorization (cholesky_ex), the inverse from it (cholesky_inverse, read by rows as
lifted.py did), then per column count a z-step each way; medians in ms, the largest
relative difference between the two z, and the load average. One torch thread.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import write_results  # noqa: E402


def clock(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2592)
    ap.add_argument("--columns", default="2,10")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "bench/results/zstep.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    M = torch.randn(2000, args.n, generator=gen, dtype=torch.float64)
    G = M.T @ M / 2000
    rhs = {c: torch.randn(args.n, c, generator=gen, dtype=torch.float64)
           for c in (int(c) for c in args.columns.split(","))}
    solve = torch.linalg.solve_triangular
    times = {"cholesky": [], "cholesky_inverse": []}
    times.update({f"{way}, {c} columns": [] for c in rhs for way in ("inverse", "factor")})
    diff, loads = 0.0, []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        t, (C, _) = clock(lambda: torch.linalg.cholesky_ex(G.diagonal_scatter(G.diagonal() + 0.05)))
        times["cholesky"].append(t)
        t, K = clock(lambda: torch.cholesky_inverse(C).T)
        times["cholesky_inverse"].append(t)
        for c, r in rhs.items():
            t, z0 = clock(lambda: K @ r)
            times[f"inverse, {c} columns"].append(t)
            t, z1 = clock(lambda: solve(C.mH, solve(C, r, upper=False), upper=True))
            times[f"factor, {c} columns"].append(t)
            diff = max(diff, float((z1 - z0).norm() / z0.norm()))
    rows = [dict(what=k, ms_median=sorted(v)[len(v) // 2] * 1e3, ms_best=min(v) * 1e3)
            for k, v in times.items()]
    for row in rows:
        print(f"{row['what']}: {row['ms_median']:.1f} ms (median; best {row['ms_best']:.1f})")
    print(f"z: largest relative difference {diff:.1e}; load {min(loads):.1f}-{max(loads):.1f}")
    write_results(args.out, rows, n=args.n, relative_difference=diff, loads=loads)


if __name__ == "__main__":
    main()
