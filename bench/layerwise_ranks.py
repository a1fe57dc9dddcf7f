"""The rank of a digits stage's convex optimum per pattern: how many units m a BM
factorization (Sahiner et al. 2024, eq. (24)) needs to reach it (docs/layerwise.md).

Stage 1 of bench_layerwise.py's set-up on the 1438 training images of the fixed split
(the cnn's 3 x 3 patches and 2 x 2 average head, gated ReLU with P gates, seed 0, squared
loss, beta): the lifted ADMM (the trainer's warm start on the Gram block) run to its
tolerance 1e-8, then the singular values of each Z_k [p, q]; the rank counts those above
1e-6 of the largest.

    PYTHONPATH=. .venv/bin/python bench/layerwise_ranks.py [--P 16] [--beta 0.1]

Prints one JSON line. A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bmdsl  # noqa: E402
from bench.bench_layerwise import FRACTION, stage_text  # noqa: E402
from bmdsl.layerwise import digits, split  # noqa: E402
from bmdsl.layerwise.data import one_hot  # noqa: E402
from bmdsl.trainer import Trainer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--P", type=int, default=16)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, _ = split(digits()[0], FRACTION, 0)
    model = bmdsl.parse(stage_text("squared", "average(2x2)", args.beta, 0, args.P, 2))
    bound = model.derive().bind({"I": train["images"], "Y": one_hot(train["labels"], 10)})
    warm = Trainer(bound, device="cpu", progress=False, method="lbfgs", warm_start=True).warm
    done = warm.run(args.iters, tol=1e-8)
    sv = torch.linalg.svdvals(warm.solution())               # [P, min(p, q)]
    ranks = (sv > 1e-6 * sv.max()).sum(1).tolist()
    print(json.dumps({"P": args.P, "beta": args.beta, "p": bound.p, "q": bound.q,
                      "converged": done, "iterations": warm.iterations, "ranks": ranks,
                      "load_average": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
