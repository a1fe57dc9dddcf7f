"""An ESTIMATE of layerwise training time and memory at CIFAR-10 and Fashion-MNIST sizes,
measured per stage on a small subset and extrapolated (docs/layerwise.md).

No data is downloaded: the subset is random images of the data set's shape (time and
memory of a step depend on the shapes, not the pixel values). Set-up per stage: the cnn
architecture (3 x 3 patches) with global average pooling, gated ReLU, P = 16 gates, m = 4
(64 latent channels), latent pooled 2 x 2 between stages, adam on mini-batches of 128 in
float64 on one CPU thread. Measured on n_sub = 256 images: seconds per step (a stage's
fit time over its 6 steps, start-up included) and the certificate's seconds (refine 0,
scaled linearly in n). Extrapolated to N training images and E epochs per stage:
time = E ceil(N / 128) step + cert N / n_sub; memory = bmdsl's own estimates (footprint.patches + footprint.trainer, the numbers the
memory budget is checked against) at N, which is what the trainer would hold.

    PYTHONPATH=. .venv/bin/python bench/bench_layerwise_scale.py [--epochs 10]

Writes bench/results/layerwise_scale.json. A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import bmdsl  # noqa: E402
from bmdsl.core import footprint  # noqa: E402
from bmdsl.layerwise import StageOptions, train_layerwise  # noqa: E402

SETS = {"cifar10": ((3, 32, 32), 50_000, 10_000, 5), "fashion_mnist": ((1, 28, 28), 60_000,
                                                                       10_000, 3)}
P, M, BATCH, N_SUB, STEPS = 16, 4, 128, 256, 6
# global average pooling (a = 1): with 2 x 2 windows a = K / 4 and q = c a = 2560 on
# 32 x 32 images, where one certificate took 40 s at n = 64 (measured), 0.27 s with a = 1
STAGE = f"""model cnn_global
architecture cnn
pool P[a, k] = global
units m = {M}
activation gated_relu(patterns = {P}, seed = 0)
loss squared
regularize beta = 1e-2, C = l2, R = l2
"""


def estimate(name, epochs):
    shape, n_train, _, stages = SETS[name]
    rng = np.random.default_rng(0)
    train = {"images": rng.random((N_SUB,) + shape), "labels": rng.integers(0, 10, N_SUB)}
    train["labels"][:10] = np.arange(10)                     # all ten classes present
    model = bmdsl.parse(STAGE)
    result = train_layerwise(model, train, None, stages, downsample=2, options=StageOptions(
        method="adam", batch_size=BATCH, max_steps=STEPS, refine_iters=0, progress=False,
        lr=1e-3))
    rows, scale = [], n_train / N_SUB
    for r in result.stages:
        step = r["seconds"] / r["steps"]
        ch, h, w = r["input"]
        K = h * w                          # padding 1, stride 1: one position per pixel
        a_size = n_train * K
        data_bytes = n_train * (ch * h * w + K * ch * 9 + 10) * 8
        mem = footprint.patches((n_train, ch, h, w), 3, 1, 1).nbytes + footprint.trainer(
            r["P"], r["m"], r["p"], r["q"], a_size, data_bytes, 8, "adam",
            BATCH / n_train, False, n_train * 10).nbytes
        hours = (epochs * math.ceil(n_train / BATCH) * step + r["certificate_seconds"] * scale) \
            / 3600
        rows.append({"stage": r["stage"], "input": r["input"], "P": r["P"], "m": r["m"],
                     "p": r["p"], "q": r["q"], "measured_step_seconds": step,
                     "measured_certificate_seconds": r["certificate_seconds"],
                     "estimated_hours": hours, "estimated_memory_gib": mem / 2 ** 30})
        print(f"{name} stage {r['stage']}: input {r['input']}, step {step:.3f} s, estimated "
              f"{hours:.2f} h and {mem / 2 ** 30:.1f} GiB", flush=True)
    return {"shape": shape, "n_train": n_train, "stages": stages, "epochs": epochs,
            "per_stage": rows, "total_hours": sum(r["estimated_hours"] for r in rows),
            "peak_memory_gib": max(r["estimated_memory_gib"] for r in rows)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from bench.machine import describe
    out = {"setup": {"P": P, "m": M, "batch": BATCH, "n_sub": N_SUB, "steps": STEPS,
                     "dtype": "float64", "device": "cpu"}, "machine": describe(),
           "estimates": {name: estimate(name, args.epochs) for name in SETS}}
    path = ROOT / "bench" / "results" / "layerwise_scale.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
