"""The BM prediction without autograd, all patterns at once against chunks of patterns
(runtime/problem.py's PREDICT_CHUNK), on the n = 2000 gated CNN with logistic targets, in one
process, one torch thread, alternating, best of --repeats; both predictions' largest
relative difference.

    python bench/bench_predict_chunks.py [--n 2000] [--repeats 3]
                                         [--out bench/results/predict_chunks.json]
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_grid import bound_for, units  # noqa: E402
from bench.machine import write_results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench/results/predict_chunks.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from bmdsl.trainer import Trainer
    from bmdsl.trainer.runtime import problem as problem_module
    bound = bound_for("cnn", "logistic", "gated_relu", "l2", "l2", args.n)
    problem = Trainer(bound, device="cpu", progress=False).problem
    gen = torch.Generator().manual_seed(0)
    m = units(bound, "l2")
    U, V = (torch.randn((bound.P, m) + shape, generator=gen, dtype=torch.float64)
            for shape in (problem.w1_shape, problem.w2_shape))
    chunk, best, out = problem_module.PREDICT_CHUNK, {}, {}
    for _ in range(args.repeats):
        for name, size in (("all patterns", 1 << 62), ("chunked", chunk)):
            problem_module.PREDICT_CHUNK = size
            start = time.perf_counter()
            out[name] = problem.predict(U, V)
            best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    problem_module.PREDICT_CHUNK = chunk
    a, b = out["all patterns"], out["chunked"]
    row = dict(n=args.n, P=bound.P, m=U.shape[1], seconds=best, ratio=best["all patterns"] /
               best["chunked"], rel_diff=float((a - b).abs().max() / a.abs().max()),
               load=os.getloadavg())
    print(row)
    write_results(args.out, [row])


if __name__ == "__main__":
    main()
