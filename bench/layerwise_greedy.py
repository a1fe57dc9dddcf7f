"""Greedy, per-stage choice of beta for the certified layerwise stages, by cross-validation
within the training images (never the test set): bench_layerwise.py's folds (K = 3, fixed
permutation seed 1), the stage model of bench_layerwise.py's chosen configuration.

The rule, fixed before the runs: stage by stage, each candidate beta of the stage is
trained (seed 0) on each fold's fitting part, taking as input the representation passed
on by the stages already chosen on that fold; the beta with the highest mean validation
accuracy of THIS stage over the folds wins (ties: the earlier in BETAS), and its networks'
latent representations (down-sampled and scaled as train_layerwise does) feed the next
stage. Greedy as the layerwise training itself: stage s is chosen to be as accurate as
possible given stages 1..s-1 (Belilovsky et al. 2019; Sahiner et al. 2024, section 4.2).

    PYTHONPATH=. .venv/bin/python bench/layerwise_greedy.py [--jobs 3]

Writes bench/results/layerwise_select_greedy.json, with the chosen configuration, which
`bench_layerwise.py --greedy` runs on the test split. Each (fold, beta) is a process of
its own (its inputs and outputs are .npz files in a temporary directory).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_layerwise import (CERT_TOL, FOLDS, RESULTS, SAFETY, STAGES,  # noqa: E402
                                   data, stage_models)

BETAS = {1: (0.1, 0.3, 1.0, 3.0, 10.0), 2: (1.0, 3.0, 10.0), 3: (1.0, 3.0, 10.0)}


def one_stage(cfg, beta, s, inputs: Path, out: Path) -> dict:
    """Train stage s (beta) on inputs' fit part; validation accuracy; the representation
    it passes on (train_layerwise's: latent.representation, scaled by the fit part's RMS)."""
    import torch
    from bmdsl.layerwise import StageOptions, train_layerwise
    from bmdsl.layerwise.latent import representation
    from bmdsl.layerwise.stages import _rms
    torch.set_num_threads(1)
    d = np.load(inputs)
    fit = {"images": d["fit_images"], "labels": d["fit_labels"]}
    val = {"images": d["val_images"], "labels": d["val_labels"]}
    model = stage_models(dict(cfg, beta=beta), 0)[0]
    opts = StageOptions(method="auto", m=cfg["m"], seed=0, time_limit=SAFETY,
                        cert_tol=CERT_TOL, refine_iters=0, progress=False)
    start = time.perf_counter()
    result = train_layerwise(model, fit, val, 1, options=opts)
    record = dict(result.stages[0], stage=s, beta=beta, wall_seconds=time.perf_counter() - start)
    if s < STAGES:
        net, down = result.network.stages[0], cfg["downsample"]
        x_fit = representation(net, torch.as_tensor(fit["images"]), down)
        scale = _rms(x_fit)
        x_val = representation(net, torch.as_tensor(val["images"]), down, scale)
        np.savez(out, fit_images=(x_fit / scale).numpy(), fit_labels=fit["labels"],
                 val_images=x_val.numpy(), val_labels=val["labels"])
    return record


def spawn(cfg, beta, s, inputs, out) -> dict:
    cmd = [sys.executable, __file__, "--one", json.dumps([cfg, beta, s, str(inputs),
                                                          str(out)])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
                               "PATH": "/usr/bin:/bin"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--one")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_stage(*json.loads(args.one)[:3], *map(Path, json.loads(
            args.one)[3:]))))
        return 0
    from bench.machine import describe
    cfg = json.loads((RESULTS / "layerwise_select.json").read_text())["chosen"]
    load0, tmp = os.getloadavg(), Path(tempfile.mkdtemp(prefix="layerwise_greedy_"))
    inputs = {}
    for f in range(FOLDS):
        fit, val = data(f)
        inputs[f] = tmp / f"fold{f}_stage1.npz"
        np.savez(inputs[f], fit_images=fit["images"], fit_labels=fit["labels"],
                 val_images=val["images"], val_labels=val["labels"])
    stages, chosen = [], []
    for s in range(1, STAGES + 1):
        jobs = [(b, f) for b in BETAS[s] for f in range(FOLDS)]
        out = {(b, f): tmp / f"fold{f}_stage{s + 1}_beta{b:g}.npz" for b, f in jobs}
        with ThreadPoolExecutor(args.jobs) as pool:
            records = list(pool.map(lambda j: spawn(cfg, j[0], s, inputs[j[1]], out[j]),
                                    jobs))
        acc = {b: float(np.mean([r["test_accuracy"] for (bb, _), r in zip(jobs, records)
                                 if bb == b])) for b in BETAS[s]}
        best = max(BETAS[s], key=lambda b: (acc[b], -BETAS[s].index(b)))
        chosen.append(best)
        inputs = {f: out[(best, f)] for f in range(FOLDS)}
        stages.append({"stage": s, "cv_accuracy": {f"{b:g}": a for b, a in acc.items()},
                       "chosen_beta": best, "runs": [dict(r, fold=f) for (_, f), r in
                                                     zip(jobs, records)]})
        print(f"stage {s}: {FOLDS}-fold validation accuracy per beta "
              f"{ {f'{b:g}': round(a, 4) for b, a in acc.items()} } -> beta {best:g}",
              flush=True)
    name = "certified-P3-greedy-beta" + "-".join(f"{b:g}" for b in chosen)
    config = dict(cfg, name=name, stages=[{"beta": b} for b in chosen])
    (RESULTS / "layerwise_select_greedy.json").write_text(json.dumps({
        "rule": "stage by stage, the beta with the highest mean validation accuracy of that "
                "stage over the folds, given the stages chosen before (ties: the earlier)",
        "validation": f"{FOLDS}-fold cross-validation within the 1438 training images "
                      "(permutation seed 1, as bench_layerwise --select); test unused",
        "betas": {str(s): list(b) for s, b in BETAS.items()}, "chosen": config,
        "stages": stages, "load_average_before_after": [load0, os.getloadavg()],
        "machine": describe()}, indent=2))
    shutil.rmtree(tmp)            # the stages' representations: only the records are kept
    print(f"chosen: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
