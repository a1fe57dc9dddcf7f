"""One leaf of the Gram's fixed-order tree (runtime/gram.py): its first chunk added to a
zeroed buffer (main before 2026-12-05) or written over a used one, side by side in one
process, alternating; the n = 2000 CNN's shape (N / c = 2592, a block of 16 rows).

    python bench/bench_gram_leaf.py [--n 2592] [--rows 16] [--repeats 15]

Prints the medians and whether the two results are bitwise equal; one torch thread.
"""
import argparse
import os
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2592)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    M = torch.randn(args.rows, args.n, generator=gen, dtype=torch.float64)
    G = torch.randn(args.n, args.n, generator=gen, dtype=torch.float64)   # a used buffer
    added, written = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        G.zero_()
        G.addmm_(M.T, M)
        added.append(time.perf_counter() - t)
        before = G.clone()
        t = time.perf_counter()
        torch.mm(M.T, M, out=G)
        written.append(time.perf_counter() - t)
    med = lambda v: sorted(v)[len(v) // 2]   # noqa: E731
    print(f"zeroed + added: {med(added) * 1e3:.1f} ms, written: {med(written) * 1e3:.1f} ms "
          f"(medians of {args.repeats}); bitwise equal: {torch.equal(before, G)}; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
