"""The lifted warm starts through L's block over the free outputs, one against another, on
one problem: which should `auto` give cross_entropy (or logistic) on the CNNs?

    python bench/bench_block.py [--problem cnn2000|digits] [--loss cross_entropy]
                                [--C l2 --R l2] [--starts fista,proxadmm,mm]
                                [--time-limit 60] [--out bench/results/block_starts.json]

Each warm start is set by hand on a fresh `Trainer(bound, m=...)` (the grid's m: what a
factored convex solution needs) and fit with `fit(cert_tol=1e-4, time_limit=...)`, each
in its own process, one torch thread, one after the other (the load is recorded before
and after each): the lifted FISTA (runtime/proxgrad.py), the lifted prox ADMM
(runtime/proxadmm.py, its Z-step through G_F) and the lifted majorization
(runtime/majorize.py, with Bohning's bound for cross_entropy), all through
runtime/kronops.KronL where L's dense matrix does not fit. Problems: the n = 2000 CNN of
bench_grid.py, or the digits CNN of bench_digits.py (m = 9).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.child import run_code  # noqa: E402
from bench.machine import describe  # noqa: E402

STARTS = {"fista": "runtime.proxgrad:LiftedFISTA", "proxadmm": "runtime.proxadmm:LiftedProxADMM",
          "mm": "runtime.majorize:LiftedMajorized"}

CHILD = r'''
import importlib, json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from bmdsl.trainer import Trainer
a = json.loads({args!r})
if a["problem"] == "digits":
    from bench.bench_digits import bound_for
    bound, m = bound_for(a["loss"], 16), 9
else:
    from bench.bench_grid import bound_for, units
    bound = bound_for("cnn", a["loss"], "gated_relu", a["C"], a["R"], n=2000)
    m = units(bound, a["R"])
module, name = a["start"].split(":")
start_class = getattr(importlib.import_module("bmdsl.trainer." + module), name)
t0 = time.perf_counter()
trainer = Trainer(bound, device="cpu", progress=False, m=m, warm_start=False)
trainer.warm = warm = start_class.of(trainer.problem)
r = trainer.fit(cert_tol=1e-4, time_limit=a["time_limit"])
ws = r.warm_start or {{}}
op = getattr(warm, "op", None) or getattr(warm, "smooth", None)
out = {{"seconds": time.perf_counter() - t0, "gap_bound": r.certificate.gap_bound,
        "certified": bool(r.cert_tol_reached), "objective": r.objective, "stopped": r.stopped,
        "steps": r.steps, "operator": type(op).__name__,
        "warm": {{k: v for k, v in ws.items() if k != "history"}},
        "history": [list(h) for h in ws.get("history") or []],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}
print("RESULT " + json.dumps(out, default=str))
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", choices=("cnn2000", "digits"), default="cnn2000")
    ap.add_argument("--loss", default="cross_entropy")
    ap.add_argument("--C", default="l2")
    ap.add_argument("--R", default="l2")
    ap.add_argument("--starts", default="fista,proxadmm,mm")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results/block_starts.json"))
    opts = ap.parse_args()
    rows = []
    for name in opts.starts.split(","):
        before = os.getloadavg()
        row = run_code(CHILD.format(root=str(ROOT), args=json.dumps({"problem": opts.problem, "loss": opts.loss, "C": opts.C, "R": opts.R,
                   "start": STARTS[name], "time_limit": opts.time_limit})),
                       opts.time_limit + 400, ROOT)
        row.update(start=name, load_before=before, load_after=os.getloadavg())
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)
        Path(opts.out).write_text(json.dumps({"machine": describe(), "command":
                                              " ".join(sys.argv), "rows": rows}, indent=1))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
