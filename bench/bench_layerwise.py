"""Layerwise convex CNN (Sahiner et al. 2024, section 4.2) vs an end-to-end ReLU CNN, on
digits (scikit-learn load_digits: 1797 real 8 x 8 images; fixed split, 20% test, seed 0).

The configuration is chosen WITHOUT the test set (`--select`), by a rule fixed before any
run: K-fold cross-validation (K = 3, folds of a fixed permutation of the 1438 training
images, seed 1; each validation fold 479-480 images, 1438 validation predictions in all);
each convex candidate of SELECT (seed 0) is trained on the other two folds, and the one
whose LAST stage has the highest mean validation accuracy over the folds wins (ties: the
earlier in SELECT); then the baseline's Adam step is chosen the same way from 1e-3,
3e-3, 1e-2 (ties: the smaller). Written to bench/results/layerwise_select.json, which
the main run reads. Then bench/layerwise_greedy.py chose each stage's beta greedily on
the same folds (its docstring), and bench/layerwise_rise.py a design (global head, a
down-sampling schedule) whose accuracy should rise from stage to stage, by its own rule; the
main run takes the latest of these that ran (chosen_config).

Convex: S stages, each the cnn architecture (3 x 3 patches, padding 1) with gated ReLU,
P sampled gates and m units per pattern, the candidate's loss, head pooling and beta, the
latent down-sampled between stages (`average:2` or the invertible space-to-depth). The
certified candidates (SELECT) use the default trainer (`--method auto`: the lifted ADMM
warm start on the Gram block over the free outputs, then the BM method) with m = "full"
(min(p, q) units per pattern, every optimum's rank: layerwise/solve.py) and stop each stage
at a duality-gap bound <= 1e-4 (`--cert-tol`; `--time-limit` per stage only as a safety
net). P = 3 is the largest P for which every stage's Gram block P p a fits the trainer's
GRAM_MAX_N (stage 2: p = 9 * 9P, a = 4, 324 P^2; stage 3: p = 9 * 40 P, a = 1, 360 P^2).
The older candidates (P = 16, m = 2: not certifiable, since the optimum's rank exceeds 2)
ran lbfgs for a fixed number of steps (`--steps`) without a warm start.
Baseline: the same depth and width trained end to end -- S conv3x3(32) + ReLU layers with
the same down-sampling between them and the same head pooling, then a linear classifier
-- with torch.optim.Adam (batch 64, cross-entropy, 40 epochs). Seeds 0, 1, 2 (gates and
factors; the baseline's init and batch order). Each run is a subprocess, so its peak
resident memory (getrusage) is its own; the load average is recorded before and after.

    PYTHONPATH=. .venv/bin/python bench/bench_layerwise.py --select     # validation only
    PYTHONPATH=. .venv/bin/python bench/bench_layerwise.py [--seeds 0,1,2] [--jobs 2]
    PYTHONPATH=. .venv/bin/python bench/bench_layerwise.py --candidate NAME   # not chosen

Writes bench/results/layerwise.json and docs/layerwise_accuracy.png (the chosen
configuration; the figure also shows the earlier chosen runs EARLIER, each a file
bench/results/layerwise_NAME.json), or bench/results/layerwise_NAME.json
for another candidate, reported for comparison only (with the baseline's lr chosen for
the chosen configuration). A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WIDTH, FRACTION, STAGES = 32, 0.2, 3
RESULTS = ROOT / "bench" / "results"
# (name, loss, head pooling, down-sampling, beta, P, m, method); beta = 0.5 is the paper's
# weight decay 5e-4 on the mean loss times n ~ 1150 (bmdsl's F sums over samples)
OLD = [
    ("squared-avg2-down2", "squared", "average(2x2)", "2", 1e-2),
    ("ce-head2x2-down2", "cross_entropy", "adaptive(2x2)", "2", 1e-2),
    ("ce-head2x2-invertible", "cross_entropy", "adaptive(2x2)", "invertible", 1e-2),
    ("ce-head2x2-down2-beta0.5", "cross_entropy", "adaptive(2x2)", "2", 0.5),
    ("ce-head2x2-invertible-beta0.5", "cross_entropy", "adaptive(2x2)", "invertible", 0.5),
    ("squared-avg2-down2-beta0.1", "squared", "average(2x2)", "2", 0.1),
    ("squared-avg2-down2-beta1", "squared", "average(2x2)", "2", 1.0),
]
CANDIDATES = [c + (16, 2, "lbfgs") for c in OLD]
# the cross-validated selection of the certified stages: the architecture chosen before
# (squared loss, the cnn's 2 x 2 average head, average 2 x 2 down-sampling) with P = 3,
# m = full, and beta 0.1 (chosen before for the uncertified stages) or 1 (lower ranks)
SELECT = [(f"certified-P3-beta{b:g}", "squared", "average(2x2)", "2", b, 3, "full", "auto")
          for b in (0.1, 1.0)]
CANDIDATES += SELECT
# earlier chosen runs, drawn beside the chosen one: per-stage betas, one beta for all
EARLIER = ("certified-P3-greedy-beta0.3-1-3", "certified-P3-beta1")
CERT_TOL = 1e-4
SAFETY = 900.0      # seconds per certified stage at most (a stage that does not certify)
FOLDS = 3
BASELINE_LRS = (1e-3, 3e-3, 1e-2)


def stage_text(loss, pool, beta, seed, P, m, kernel=3):
    m = 2 if m == "full" else m              # (the stages' m is StageOptions.m)
    patches = "" if kernel == 3 else (f"patches X[n, k, h] = im2col(I, kernel = {kernel}, "
                                      f"stride = 1, padding = {(kernel - 1) // 2})\n")
    return (f"model stage\narchitecture cnn\n{patches}pool P[a, k] = {pool}\nunits m = {m}\n"
            f"activation gated_relu(patterns = {P}, seed = {seed})\nloss {loss}\n"
            f"regularize beta = {beta:g}, C = l2, R = l2\n")


def stage_models(cfg, seed) -> list:
    """One stage model, or one per stage when cfg["stages"] lists per-stage overrides of
    {"kernel", "pool", "P", "beta"} (a later stage's patches, head, gates, beta)."""
    import bmdsl
    per = cfg.get("stages") or [{}]
    return [bmdsl.parse(stage_text(cfg["loss"], o.get("pool", cfg["pool"]),
                                   o.get("beta", cfg["beta"]), seed,
                                   o.get("P", cfg["P"]), cfg["m"], o.get("kernel", 3)))
            for o in per]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def data(fold=None):
    """(train, test) -- or, for fold f, (the other folds, fold f) of the training part (a
    fixed permutation, seed 1, cut in FOLDS): the test images unseen."""
    from bmdsl.layerwise import digits, split
    train, test = split(digits()[0], FRACTION, 0)
    if fold is None:
        return train, test
    parts = np.array_split(np.random.default_rng(1).permutation(len(train["labels"])), FOLDS)
    fit = np.concatenate([q for i, q in enumerate(parts) if i != fold])
    take = lambda idx: {k: v[np.sort(idx)] for k, v in train.items()}  # noqa: E731
    return take(fit), take(parts[fold])


def run_convex(cfg, seed, steps, time_limit, validation) -> dict:
    import torch
    from bmdsl.layerwise import StageOptions, train_layerwise
    torch.set_num_threads(1)
    train, test = data(validation)
    model = stage_models(cfg, seed)
    certified = cfg["method"] == "auto"
    options = StageOptions(method=cfg["method"], m=cfg["m"], seed=seed,
                           max_steps=None if certified else steps,
                           time_limit=time_limit or (SAFETY if certified else None),
                           cert_tol=CERT_TOL if certified else None, refine_iters=0,
                           progress=False)
    start = time.perf_counter()
    result = train_layerwise(model, train, test, STAGES, downsample=cfg["downsample"],
                             options=options)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(),
            "load_average": os.getloadavg(), "stages": result.stages,
            "test_accuracy": [r["test_accuracy"] for r in result.stages],
            "train_accuracy": [r["train_accuracy"] for r in result.stages]}


def spawn(kind, cfg, seed, args, validation=None, lr=None) -> dict:
    """One run in its own process (its own peak memory); its JSON line back."""
    cmd = [sys.executable, __file__, "--one", kind, "--config", json.dumps(cfg),
           "--seed", str(seed), "--steps", str(args.steps), "--epochs", str(args.epochs),
           "--lr", str(lr or 0.0)] + \
        ([] if args.time_limit is None else ["--time-limit", str(args.time_limit)]) + \
        ([] if validation is None else ["--fold", str(validation)])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
                               "PATH": "/usr/bin:/bin"})
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), seed=seed)


def chosen_config():
    """(configuration, baseline lr, where chosen): layerwise_rise.py's design when it ran,
    else layerwise_greedy.py's per-stage betas, else --select's one configuration."""
    select = json.loads((RESULTS / "layerwise_select.json").read_text())
    for name in ("layerwise_select_rise.json", "layerwise_select_greedy.json"):
        if (RESULTS / name).exists():
            chosen = json.loads((RESULTS / name).read_text())
            return chosen["chosen"], chosen.get("baseline_lr", select["baseline_lr"]), name
    return select["chosen"], select["baseline_lr"], "layerwise_select.json"


def as_config(c) -> dict:
    return dict(zip(("name", "loss", "pool", "downsample", "beta", "P", "m", "method"), c))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=20, help="lbfgs steps per stage (OLD)")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per stage (the "
                    f"certified candidates: a safety net, default {SAFETY:g})")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (each a process)")
    ap.add_argument("--select", action="store_true", help="choose on validation (module doc)")
    ap.add_argument("--candidate", choices=[c[0] for c in CANDIDATES],
                    help="run this candidate instead of the chosen one (for comparison)")
    ap.add_argument("--one", choices=["convex", "baseline"])
    ap.add_argument("--config")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fold", type=int, help="validate on this fold (--select)")
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw docs/layerwise_accuracy.png from the saved results")
    args = ap.parse_args()
    results, png = RESULTS / "layerwise.json", ROOT / "docs/layerwise_accuracy.png"
    from bench.layerwise_plot import plot
    earlier = [RESULTS / f"layerwise_{n}.json" for n in EARLIER]
    if args.plot_only:
        plot(results, png, earlier)
        return 0
    if args.one:
        from bench import layerwise_baseline as baseline
        cfg = json.loads(args.config)
        out = run_convex(cfg, args.seed, args.steps, args.time_limit, args.fold) \
            if args.one == "convex" else \
            baseline.run(cfg, args.seed, args.epochs, args.lr, args.fold)
        print(json.dumps(out))
        return 0
    if args.select:
        from bench.layerwise_select import select
        return select(args)
    from bench.machine import describe
    cfg, lr, source = chosen_config()
    if args.candidate:
        cfg = as_config(next(c for c in CANDIDATES if c[0] == args.candidate))
        results = RESULTS / f"layerwise_{args.candidate}.json"
    load0, runs = os.getloadavg(), {"convex": [], "baseline": []}
    from concurrent.futures import ThreadPoolExecutor

    def one(job):
        kind, seed = job
        r = spawn(kind, cfg, seed, args, lr=lr)
        print(f"{kind:8} seed {seed}: test {r['test_accuracy']}, {r['seconds']:.1f} s, "
              f"peak {r['peak_mb']:.0f} MB", flush=True)
        return kind, r
    jobs = [(kind, seed) for seed in map(int, args.seeds.split(",")) for kind in runs]
    with ThreadPoolExecutor(args.jobs) as pool:     # (in order: map keeps it)
        for kind, r in pool.map(one, jobs):
            runs[kind].append(r)
    conv = np.array([r["test_accuracy"] for r in runs["convex"]])
    base = np.array([r["test_accuracy"] for r in runs["baseline"]])
    mean = lambda kind, key: float(np.mean([r[key] for r in runs[kind]]))  # noqa: E731
    n_test = len(data()[1]["labels"])
    summary = {
        "convex_test_accuracy_per_stage_mean": conv.mean(0).tolist(),
        "convex_test_accuracy_per_stage_std": conv.std(0).tolist(),
        # one run's binomial standard error on the n_test images: the noise floor
        "convex_test_accuracy_per_stage_se_one_run": np.sqrt(
            conv.mean(0) * (1 - conv.mean(0)) / n_test).tolist(),
        "convex_steps_per_stage": [[s["steps"] for s in r["stages"]] for r in runs["convex"]],
        "convex_gap_bound_per_stage": [[s["gap_bound"] for s in r["stages"]]
                                       for r in runs["convex"]],
        "convex_certified_per_stage": [[s.get("certified") for s in r["stages"]]
                                       for r in runs["convex"]],
        "convex_seconds_per_stage": [[s["seconds"] + s["certificate_seconds"]
                                      for s in r["stages"]] for r in runs["convex"]],
        "convex_m_per_stage": [s["m"] for s in runs["convex"][0]["stages"]],
        "convex_train_accuracy_per_stage_mean":
            np.mean([r["train_accuracy"] for r in runs["convex"]], 0).tolist(),
        "baseline_test_accuracy_mean": float(base.mean()),
        "baseline_test_accuracy_std": float(base.std()),
        "convex_seconds_mean": mean("convex", "seconds"),
        "baseline_seconds_mean": mean("baseline", "seconds"),
        "convex_peak_mb_mean": mean("convex", "peak_mb"),
        "baseline_peak_mb_mean": mean("baseline", "peak_mb"),
        "latent_channels_mP": [s["latent_channels"] for s in runs["convex"][0]["stages"]],
        "convex_latent_channels_Pac": [s["convex_latent_channels"]
                                       for s in runs["convex"][0]["stages"]],
        "convex_final_ge_baseline": bool(conv[:, -1].mean() >= base.mean()),
        # in test images (means of counts: a float difference of 1e-16 is no rise)
        "convex_rising_per_stage": bool(np.all(np.diff(np.round(conv.mean(0) * n_test, 6))
                                               > 0)),
        "convex_last_above_first": bool(round((conv.mean(0)[-1] - conv.mean(0)[0]) * n_test,
                                              6) > 0),
        "load_average_before_after": [load0, os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    results.write_text(json.dumps({"setup": {"P": cfg["P"], "m": cfg["m"], "width": WIDTH,
                                             "cert_tol": CERT_TOL, "stages": STAGES,
                                             "config": cfg, "baseline_lr": lr,
                                             "chosen_by": f"bench/results/{source}",
                                             "chosen": not args.candidate,
                                             "time_limit_per_stage": args.time_limit,
                                             "baseline_epochs": args.epochs,
                                             "test_fraction": FRACTION, "seeds": args.seeds},
                                   "machine": describe(), "summary": summary, "runs": runs},
                                  indent=2))
    if not args.candidate:
        plot(results, png, earlier)
    print(f"wrote {results}" + ("" if args.candidate else f", {png}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
