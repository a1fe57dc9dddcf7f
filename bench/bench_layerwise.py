"""Layerwise convex CNN (Sahiner et al. 2024, section 4.2) vs an end-to-end ReLU CNN, on
digits (scikit-learn load_digits: 1797 real 8 x 8 images; fixed split, 20% test, seed 0).

Convex: S stages of models/cnn.bm (3 x 3 patches, padding 1, 2 x 2 average pooling,
squared loss, beta = 1e-2) with gated ReLU, P = 16 sampled gates, m = 2 (mP = 32 latent
channels), latent average-pooled 2 x 2 between stages (8x8 -> 4x4 -> 2x2); each stage's
trainer method is "auto" with a per-stage time limit; each stage certified (refine 0: the
plain dual point, as each refinement pass costs seconds at n = 1438 on this machine).
Baseline: the same depth and width trained end to end -- S conv3x3(32) + ReLU layers with
the same 2 x 2 average pooling between them, then 2 x 2 average pooling and a linear
classifier, like the convex last stage -- with torch.optim.Adam (lr 3e-3: the best of
1e-3, 3e-3, 1e-2 on seed 0, batch 64, cross-entropy, 40 epochs). Seeds 0, 1, 2 (gates and factors; the baseline's init and
batch order). Each run is a subprocess, so its peak resident memory (getrusage) is its own.

    PYTHONPATH=. .venv/bin/python bench/bench_layerwise.py [--stages 3] [--seeds 0,1,2]
        [--time-limit 25] [--epochs 40]

Prints a table and writes bench/results/layerwise.json. A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
P, M, WIDTH, FRACTION = 16, 2, 32, 0.2


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def data():
    from bmdsl.layerwise import digits, split
    return split(digits()[0], FRACTION, 0)


def run_convex(seed: int, stages: int, time_limit: float) -> dict:
    import torch
    import bmdsl
    from bmdsl.layerwise import StageOptions, train_layerwise
    torch.set_num_threads(1)
    train, test = data()
    model = bmdsl.load(str(ROOT / "models/cnn.bm")).with_activation("gated_relu", P, seed) \
        .with_units(M)
    start = time.perf_counter()
    result = train_layerwise(model, train, test, stages, windows=2, options=StageOptions(
        seed=seed, time_limit=time_limit, refine_iters=0, progress=False))
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(),
            "stages": result.stages,
            "test_accuracy": [r["test_accuracy"] for r in result.stages],
            "train_accuracy": [r["train_accuracy"] for r in result.stages]}


def run_baseline(seed: int, stages: int, epochs: int, lr: float) -> dict:
    import torch
    from torch import nn
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    train, test = data()
    layers, ch = [], 1
    for s in range(stages):
        layers += [nn.Conv2d(ch, WIDTH, 3, padding=1), nn.ReLU()]
        if s < stages - 1:
            layers.append(nn.AvgPool2d(2))
        ch = WIDTH
    side = 8 // 2 ** (stages - 1)
    layers += [nn.AvgPool2d(2), nn.Flatten(), nn.Linear(WIDTH * (side // 2) ** 2, 10)]
    net = nn.Sequential(*layers).double()
    x, y = torch.as_tensor(train["images"]), torch.as_tensor(train["labels"])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = lambda d: float((net(torch.as_tensor(d["images"])).argmax(1).numpy()  # noqa
                               == d["labels"]).mean())
        return {"seconds": seconds, "peak_mb": peak_mb(), "train_accuracy": acc(train),
                "test_accuracy": acc(test),
                "parameters": sum(p.numel() for p in net.parameters())}


def child(args) -> int:
    out = run_convex(args.seed, args.stages, args.time_limit) if args.one == "convex" \
        else run_baseline(args.seed, args.stages, args.epochs, args.lr)
    print(json.dumps(out))
    return 0


def plot(results: Path, png: Path) -> None:
    """Test accuracy per stage (each seed and the mean) against the baseline's mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    saved = json.loads(results.read_text())
    conv = np.array([r["test_accuracy"] for r in saved["runs"]["convex"]])
    base = np.array([r["test_accuracy"] for r in saved["runs"]["baseline"]])
    stages = np.arange(1, conv.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for row in conv:
        ax.plot(stages, 100 * row, "o", color="tab:blue", alpha=0.35)
    ax.plot(stages, 100 * conv.mean(0), "-o", color="tab:blue",
            label="convex layerwise (BM), mean of seeds")
    ax.axhline(100 * base.mean(), color="tab:red", ls="--",
               label=f"end-to-end ReLU CNN, {conv.shape[1]} layers (mean)")
    ax.set_xticks(stages)
    ax.set_xlabel("stage")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digits, 20% test split, 3 seeds")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--time-limit", type=float, default=25.0, help="seconds per stage")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-3, help="the baseline's Adam step")
    ap.add_argument("--one", choices=["convex", "baseline"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw docs/layerwise_accuracy.png from the saved results")
    args = ap.parse_args()
    results, png = ROOT / "bench/results/layerwise.json", ROOT / "docs/layerwise_accuracy.png"
    if args.plot_only:
        plot(results, png)
        return 0
    if args.one:
        return child(args)
    from bench.machine import describe
    runs = {"convex": [], "baseline": []}
    for seed in map(int, args.seeds.split(",")):
        for kind in runs:
            cmd = [sys.executable, __file__, "--one", kind, "--seed", str(seed),
                   "--stages", str(args.stages), "--time-limit", str(args.time_limit),
                   "--epochs", str(args.epochs), "--lr", str(args.lr)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                  env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
                                       "PATH": "/usr/bin:/bin"})
            runs[kind].append(dict(json.loads(done.stdout.strip().splitlines()[-1]),
                                   seed=seed))
            r = runs[kind][-1]
            print(f"{kind:8} seed {seed}: test {r['test_accuracy']}, {r['seconds']:.1f} s, "
                  f"peak {r['peak_mb']:.0f} MB", flush=True)
    conv = np.array([r["test_accuracy"] for r in runs["convex"]])
    base = np.array([r["test_accuracy"] for r in runs["baseline"]])
    summary = {
        "convex_test_accuracy_per_stage_mean": conv.mean(0).tolist(),
        "convex_test_accuracy_per_stage_std": conv.std(0).tolist(),
        "baseline_test_accuracy_mean": float(base.mean()),
        "baseline_test_accuracy_std": float(base.std()),
        "convex_seconds_mean": float(np.mean([r["seconds"] for r in runs["convex"]])),
        "baseline_seconds_mean": float(np.mean([r["seconds"] for r in runs["baseline"]])),
        "convex_peak_mb_mean": float(np.mean([r["peak_mb"] for r in runs["convex"]])),
        "baseline_peak_mb_mean": float(np.mean([r["peak_mb"] for r in runs["baseline"]])),
        "latent_channels_mP": [s["latent_channels"] for s in runs["convex"][0]["stages"]],
        "convex_latent_channels_Pac": [s["convex_latent_channels"]
                                       for s in runs["convex"][0]["stages"]],
        "convex_final_ge_baseline": bool(conv[:, -1].mean() >= base.mean()),
        "convex_rising_per_stage": bool(np.all(np.diff(conv.mean(0)) > 0)),
    }
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "results" / "layerwise.json"
    out.write_text(json.dumps({"setup": {"P": P, "m": M, "width": WIDTH, "stages": args.stages,
                                         "time_limit_per_stage": args.time_limit,
                                         "baseline_epochs": args.epochs, "test_fraction": FRACTION,
                                         "seeds": args.seeds},
                               "machine": describe(), "summary": summary, "runs": runs},
                              indent=2))
    plot(out, png)
    print(f"wrote {out}, {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
