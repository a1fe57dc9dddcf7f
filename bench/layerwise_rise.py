"""A layerwise stage design whose accuracy rises from stage to stage for a structural reason,
chosen by 3-fold cross-validation within the 1438 training images only (bench_layerwise.py's
folds: a fixed permutation, seed 1); the test images are not used.

Why these candidates. In the earlier designs (bench_layerwise.py's SELECT and the greedy
betas of layerwise_greedy.py) each stage's head averages 2 x 2 windows of its grid, so the
head of stage 1 (a = 16 cells on the 8 x 8 grid) already sees where each feature is and
nearly fits the training images, while stage 3 (a 2 x 2 grid, a = 1) has the coarsest head
of the three: nothing in the design makes a later stage the stronger classifier. Every
candidate here has a **global** average head (a = 1, `pool P[a, k] = global`) on every
stage: a stage's own classifier is then a linear function of the mean of its units over all
positions -- a bag of local features, blind to where each one is -- while the receptive
field of a unit grows from stage to stage (3 x 3 pixels in stage 1; 5 x 5 in stage 2 on
the full grid, 8 x 8 after a down-sampling by 2; in stage 3 7 x 7 without any down-sampling,
the whole image after one), so a later
stage's units can encode the arrangement of features that an earlier stage's head must
discard (the reason depth helps in the greedy scheme of Belilovsky et al. 2019, which
Sahiner et al. 2024, section 4.2, follow). The candidates differ in where the grid is
down-sampled (where the receptive field grows) and in beta. P = 7: with a = 1 the Gram
blocks P p a are 7 x 567 = 3969 (stage 2) and 7 x 630 = 4410 (stage 3), within the
trainer's GRAM_MAX_N = 5313, whatever the grid; m = full (9, 10, 10 units per pattern),
so every stage can be certified (layerwise/solve.py).

The rule, fixed before the runs. Each candidate is trained (seed 0) on each fold's other
two folds, every stage to a duality-gap bound <= CERT_TOL as in bench_layerwise.py; a
candidate with an uncertified stage on any fold is out. Among the others, those whose mean
validation accuracy over the folds rises at every stage (strictly: more of the 1438
validation predictions correct) compete, and the highest last-stage mean wins (ties: the
earlier in RISE); if none rises, the highest last-stage mean of all. Then the end-to-end
baseline of the chosen design's architecture (its down-samplings and head) gets its Adam
step from BASELINE_LRS the same way (highest mean validation accuracy; ties: the smaller).

    PYTHONPATH=. .venv/bin/python bench/layerwise_rise.py [--jobs 3]

Writes bench/results/layerwise_select_rise.json, whose chosen design and baseline step
bench_layerwise.py then runs on the test split. Each (candidate, fold) is a process.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_layerwise import BASELINE_LRS, FOLDS, RESULTS, spawn  # noqa: E402


def design(downsample, beta):
    name = f"global-P7-down{'-'.join(downsample)}-beta{beta:g}"
    return {"name": name, "loss": "squared", "pool": "global", "downsample": downsample,
            "beta": beta, "P": 7, "m": "full", "method": "auto"}


RISE = [design(["2", "2"], 1.0),      # the earlier schedule, with the global head
        design(["2", "1"], 1.0),      # stage 3 keeps the 4 x 4 grid
        design(["1", "2"], 1.0),      # down-sample only before the last stage
        design(["1", "1"], 1.0),      # never: 3 x 3, 5 x 5, 7 x 7 receptive fields
        design(["2", "1"], 3.0)]      # stage 2 fits the training part at beta = 1: more beta


def choose(scores: list) -> int:
    """The rule of the module doc over [{"cv_accuracy": [per stage], "certified": bool}];
    accuracies are compared in validation images (counts of the 1438 predictions)."""
    count = lambda a: np.round(np.asarray(a) * 1438, 6)           # noqa: E731
    ok = [i for i, s in enumerate(scores) if s["certified"]]
    rising = [i for i in ok if np.all(np.diff(count(scores[i]["cv_accuracy"])) > 0)]
    pool = rising or ok
    if not pool:
        raise SystemExit("no candidate certified on every fold: nothing to choose")
    return max(pool, key=lambda i: (count(scores[i]["cv_accuracy"])[-1], -i))


def run_all(kind, cfgs, args, lrs=(None,)) -> list:
    """Every (configuration, lr) on every fold, args.jobs processes at a time."""
    jobs = [(i, lr, f) for i in range(len(cfgs)) for lr in lrs for f in range(FOLDS)]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda j: dict(spawn(kind, cfgs[j[0]], 0, args, j[2], j[1]),
                                            fold=j[2]), jobs))
    out = []
    for i in range(len(cfgs)):
        for lr in lrs:
            mine = [r for (c, l2, _), r in zip(jobs, runs) if c == i and l2 == lr]
            acc = np.array([np.atleast_1d(r["test_accuracy"]) for r in mine])
            cert = all(s.get("certified") for r in mine for s in r.get("stages", []))
            out.append({"config": cfgs[i], "lr": lr, "folds": mine, "certified": cert,
                        "cv_accuracy": acc.mean(0).tolist(),
                        "cv_train_accuracy": np.mean([np.atleast_1d(r["train_accuracy"])
                                                      for r in mine], 0).tolist()})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=3)
    args = ap.parse_args()
    args.steps, args.epochs, args.time_limit = 20, 40, None    # as bench_layerwise's defaults
    from bench.machine import describe
    load0 = os.getloadavg()
    convex = run_all("convex", RISE, args)
    for r in convex:
        print(f"{r['config']['name']:30} validation {np.round(r['cv_accuracy'], 4).tolist()}"
              f" train {np.round(r['cv_train_accuracy'], 4).tolist()} certified "
              f"{r['certified']}", flush=True)
    best = choose(convex)
    chosen = convex[best]["config"]
    baseline = run_all("baseline", [chosen], args, BASELINE_LRS)
    lr = max(baseline, key=lambda r: (r["cv_accuracy"][0], -r["lr"]))["lr"]
    for r in baseline:
        print(f"baseline lr {r['lr']:g}: validation {r['cv_accuracy'][0]:.4f}", flush=True)
    (RESULTS / "layerwise_select_rise.json").write_text(json.dumps({
        "rule": "certified on every fold; among the candidates whose mean validation "
                "accuracy rises at every stage, the highest last-stage mean (ties: the "
                "earlier); if none rises, the highest last-stage mean; the baseline's lr "
                "by its mean validation accuracy (ties: the smaller)",
        "validation": f"{FOLDS}-fold cross-validation within the 1438 training images "
                      "(permutation seed 1, as bench_layerwise --select); test unused",
        "chosen": chosen, "baseline_lr": lr, "convex": convex, "baseline": baseline,
        "load_average_before_after": [load0, os.getloadavg()], "machine": describe()},
        indent=2))
    print(f"chosen: {chosen['name']}, baseline lr {lr:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
