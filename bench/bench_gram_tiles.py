"""One leaf of the Gram's fixed-order tree with its addition to a partial sum: the whole
product M^T M [N, N] (main before 2026-12-05) against G_F's upper triangle by row tiles of
T rows (runtime/gram.py), side by side in one process; the n = 2000 CNN's shape
(N / c = 2592, a block of 16 rows).

    python bench/bench_gram_tiles.py [--n 2592] [--rows 16] [--tiles 64,128,256,512]
                                     [--repeats 5] [--out bench/results/gram_tiles.json]

Per variant: the median and best of --repeats passes over 8 leaves (a product and an
addition each), in ms per leaf, the variants alternating; one torch thread.
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


def tiles_of(N, T):
    tiles = [(a, min(N, a + T)) for a in range(0, N, T)]
    at = [sum((b - a) * (N - a) for a, b in tiles[:i]) for i in range(len(tiles) + 1)]
    return tiles, at


def timed(Ms, leaf, size):
    """Seconds per leaf of one pass over the leaves (a product and an addition each)."""
    out, acc = torch.empty(size, dtype=torch.float64), torch.zeros(size, dtype=torch.float64)
    t = time.perf_counter()
    for M in Ms:
        leaf(out, M)
        acc.add_(out)
    return (time.perf_counter() - t) / len(Ms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2592)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--tiles", default="64,128,256,512")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench/results/gram_tiles.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    N = args.n
    gen = torch.Generator().manual_seed(0)
    Ms = [torch.randn(args.rows, N, generator=gen, dtype=torch.float64) for _ in range(8)]
    variants = {}

    def whole(out, M):
        torch.mm(M.T, M, out=out.view(N, N))
    variants["whole"] = (whole, N * N)
    for T in (int(t) for t in args.tiles.split(",")):
        def tiled(out, M, tiles_at=tiles_of(N, T)):
            for (a, b), t in zip(*tiles_at):
                out[t:t + (b - a) * (N - a)].view(b - a, N - a).addmm_(
                    M[:, a:b].T, M[:, a:], beta=0.0)
        variants[f"upper tiles of {T}"] = (tiled, tiles_of(N, T)[1][-1])
    times = {name: [] for name in variants}
    loads = []
    for _ in range(args.repeats):          # the variants alternate: the same load for each
        loads.append(os.getloadavg()[0])
        for name, (leaf, size) in variants.items():
            times[name].append(timed(Ms, leaf, size))
    rows = [dict(variant=name, ms_per_leaf_best=min(v) * 1e3,
                 ms_per_leaf_median=sorted(v)[len(v) // 2] * 1e3, loads=loads)
            for name, v in times.items()]
    for row in rows:
        print(f"{row['variant']}: {row['ms_per_leaf_median']:.1f} ms per leaf (median; best "
              f"{row['ms_per_leaf_best']:.1f}), load {min(loads):.1f}-{max(loads):.1f}")
    write_results(args.out, rows, n=N, rows_per_leaf=args.rows)


if __name__ == "__main__":
    main()
