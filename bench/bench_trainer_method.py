"""Which training method reaches the BM optimum? (docs/trainer.md, "Choosing the method")

The paper's set-up (section 4.1, appendix C): three-class spiral, n = 150, d = 2, c = 3,
gated ReLU with P = 100 sampled gates (duplicates removed), m = 5 units per pattern,
squared loss, C = R = l2, beta in {1e-4, 1e-3, 1e-2}, seeds 0, 1, 2 (the seed draws the
gates and the initial factors). Reference p*: the convex program (18)/(5) solved by CVXPY
with Clarabel (bmdsl.cvx). Each method runs full batch in float64 on one CPU thread until
it stops or the time limit; we record the relative gap (p - p*)/p* over time, the time to
reach 1e-4 and 1e-6, and the final certificate of the factors.

    PYTHONPATH=. .venv/bin/python bench/bench_trainer_method.py [--time-limit 60]
        [--methods newton,lbfgs,adam,sgd,als,precgd] [--betas 1e-4,1e-3,1e-2] [--seeds 0,1,2]

Prints a table and writes bench/results/trainer_method.json. A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bmdsl  # noqa: E402
from bmdsl.bind.datasets import spiral  # noqa: E402
from bmdsl.certificates import certify  # noqa: E402
from bmdsl.trainer import Trainer  # noqa: E402

MODEL = """model spiral
input X[n, d]
target Y[n, c]
units m = 5
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(patterns = 100, seed = {seed})
loss squared
regularize beta = {beta!r}, C = l2, R = l2
"""
THRESHOLDS = (1e-2, 1e-4, 1e-6, 1e-8)


def reference(bound):
    t0 = time.perf_counter()
    sol = bound.to_cvxpy().solve()
    if not sol.ok:
        raise RuntimeError(f"CVXPY did not solve the reference: {sol.status}")
    return float(sol.value), time.perf_counter() - t0


def run(bound, method, seed, pstar, time_limit):
    trainer = Trainer(bound, device="cpu", dtype="float64", method=method, seed=seed,
                      progress=False)
    result = trainer.fit(10**7, time_limit=time_limit, certify=False)
    rel = [((f - pstar) / pstar, s) for _, f, s in result.history]
    reach = {f"{th:g}": next((s for r, s in rel if r <= th), None) for th in THRESHOLDS}
    cert = certify(bound, result.U, result.V, refine_iters=200)
    return {"method": result.method, "seed": seed, "objective": result.objective,
            "rel_gap": (result.objective - pstar) / pstar, "steps": result.steps,
            "seconds": result.seconds, "stopped": result.stopped, "time_to": reach,
            "gap_bound": cert.gap_bound if math.isfinite(cert.gap_bound) else None,
            "thm34_bound": cert.thm34_bound}


def _fmt(x, pattern):
    return "-" if x is None else pattern.format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--methods", default="newton,lbfgs,adam,sgd,als,precgd")
    ap.add_argument("--betas", default="1e-4,1e-3,1e-2")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" /
                                              "trainer_method.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)   # small problem on a shared machine: threads only contend
    data = spiral(150, 3, seed=0)
    methods = args.methods.split(",")
    rows = []
    for beta in [float(b) for b in args.betas.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            bound = bmdsl.parse(MODEL.format(seed=seed, beta=beta)).derive().bind(data)
            pstar, tref = reference(bound)
            print(f"beta {beta:g} seed {seed}: P = {bound.P}, p* = {pstar:.10g} "
                  f"(Clarabel, {tref:.1f} s)", flush=True)
            for method in methods:
                r = dict(run(bound, method, seed, pstar, args.time_limit), beta=beta,
                         P=bound.P, pstar=pstar)
                rows.append(r)
                t4, t6 = (_fmt(r["time_to"][k], "{:.1f} s") for k in ("0.0001", "1e-06"))
                print(f"  {method:7s} rel gap {r['rel_gap']:9.2e}  steps {r['steps']:6d}  "
                      f"{r['seconds']:6.1f} s  to 1e-4: {t4:>8}  to 1e-6: {t6:>8}  "
                      f"gap bound {_fmt(r['gap_bound'], '{:.1e}')}", flush=True)
    summary = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {
            "runs": len(mine),
            "reached_1e-4": sum(r["time_to"]["0.0001"] is not None for r in mine),
            "reached_1e-6": sum(r["time_to"]["1e-06"] is not None for r in mine),
            "median_final_rel_gap": float(np.median([r["rel_gap"] for r in mine])),
            "worst_final_rel_gap": float(max(r["rel_gap"] for r in mine)),
        }
        print(f"{method:7s} reached 1e-4 in {summary[method]['reached_1e-4']}/{len(mine)}, "
              f"1e-6 in {summary[method]['reached_1e-6']}/{len(mine)}; median final gap "
              f"{summary[method]['median_final_rel_gap']:.1e}, worst "
              f"{summary[method]['worst_final_rel_gap']:.1e}")
    out = {"setup": {"n": 150, "d": 2, "c": 3, "gates": 100, "m": 5, "loss": "squared",
                     "norms": "l2, l2", "time_limit_s": args.time_limit, "threads": 1,
                     "dtype": "float64", "device": "cpu"},
           "versions": {"torch": torch.__version__, "numpy": np.__version__,
                        "python": platform.python_version(), "bmdsl": bmdsl.__version__},
           "summary": summary, "runs": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
