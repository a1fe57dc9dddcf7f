"""The selection of bench_layerwise.py (`--select`): the configuration and the baseline's
step chosen by K-fold cross-validation within the training images, never on the test set
(the rule: bench_layerwise.py's docstring). Writes bench/results/layerwise_select.json."""
from __future__ import annotations

import json
import os

import numpy as np

from bench.bench_layerwise import (BASELINE_LRS, FOLDS, RESULTS, SELECT, as_config,
                                   spawn)


def cross_validate(kind, cfg, args, lr=None) -> dict:
    """One run per fold, two at a time (the uncertified candidates' steps are fixed and the
    certified ones stop at a certificate, so the sharing changes the times, not the
    result); the mean validation accuracy per stage over the folds."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda f: dict(spawn(kind, cfg, 0, args, f, lr), fold=f),
                             range(FOLDS)))
    acc = np.array([np.atleast_1d(r["test_accuracy"]) for r in runs])
    return {"config": cfg, "lr": lr, "folds": runs, "cv_accuracy": acc.mean(0).tolist(),
            "cv_train_accuracy": np.mean([np.atleast_1d(r["train_accuracy"]) for r in runs],
                                         0).tolist()}


def select(args) -> int:
    """Validation only: the convex candidate, then the baseline's lr (module doc)."""
    from bench.machine import describe
    load0, convex = os.getloadavg(), []
    for c in map(as_config, SELECT):
        r = cross_validate("convex", c, args)
        convex.append(r)
        print(f"{c['name']:30} {FOLDS}-fold validation accuracy per stage "
              f"{np.round(r['cv_accuracy'], 4).tolist()}, train "
              f"{np.round(r['cv_train_accuracy'], 4).tolist()}", flush=True)
    best = max(range(len(convex)), key=lambda i: (convex[i]["cv_accuracy"][-1], -i))
    chosen = convex[best]["config"]
    baseline = []
    for lr in BASELINE_LRS:
        r = cross_validate("baseline", chosen, args, lr)
        baseline.append(r)
        print(f"baseline lr {lr:g}: validation accuracy {r['cv_accuracy'][0]:.4f}", flush=True)
    lr = max(baseline, key=lambda r: (r["cv_accuracy"][0], -r["lr"]))["lr"]
    out = {"rule": "highest mean last-stage validation accuracy over the folds (ties: the "
                   "earlier candidate); the baseline's lr the same way (ties: smaller lr)",
           "validation": f"{FOLDS}-fold cross-validation within the 1438 training images "
                         "(permutation seed 1); test unused",
           "steps_per_stage": args.steps, "time_limit_per_stage": args.time_limit,
           "baseline_epochs": args.epochs, "chosen": chosen, "baseline_lr": lr,
           "convex": convex, "baseline": baseline,
           "load_average_before_after": [load0, os.getloadavg()], "machine": describe()}
    (RESULTS / "layerwise_select.json").write_text(json.dumps(out, indent=2))
    print(f"chosen: {chosen['name']}, baseline lr {lr:g}")
    return 0
