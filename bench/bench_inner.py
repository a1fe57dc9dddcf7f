"""The lifted warm starts' inner iterations, side by side with another checkout: the
default trainer on issue 13's cells, each run a fresh process (bench_grid.py's cells and
units), recording time (wall, and this process's CPU time: one thread, so it is less
sensitive to other jobs on the cores), outer steps, inner ADMM iterations
(load-independent), gap bound, objective and peak RSS; `--repeat` alternates this
checkout and the other.

    python bench/bench_inner.py --other DIR [--n 2000] [--cells mlp] [--losses logistic]
                                [--pairs l2,l1] [--repeat 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r'''
import json, os, resource, sys, time
import torch
sys.path.insert(0, {root!r})
from bench.bench_grid import bound_for, units
torch.set_num_threads(1)
cell = json.loads({cell!r})
bound = bound_for(**cell)
from bmdsl.trainer import Trainer
start, cpu = time.perf_counter(), time.process_time()
r = Trainer(bound, device="cpu", progress=False, m=units(bound, cell["R"])).fit(
    cert_tol=1e-4, time_limit=60)
ws = r.warm_start or {{}}
import bmdsl
print("RESULT " + json.dumps(dict(module=bmdsl.__file__,
    seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu,
    objective=r.objective,
    gap_bound=r.certificate.gap_bound, certified=bool(r.cert_tol_reached),
    warm_start=ws.get("method"), outer=ws.get("iterations"),
    inner=ws.get("inner_iterations"), exact_steps=ws.get("exact_steps"),
    peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    load=os.getloadavg())))
'''


def run(root: Path, cell: dict) -> dict:
    """One fresh process on root's bmdsl and bench: its RESULT, or why it failed."""
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(root), cell=json.dumps(
        cell))], capture_output=True, text=True, timeout=300, cwd=root)
    found = [json.loads(x[7:]) for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    return found[0] if found else {"failed": (proc.stderr.strip().splitlines() or ["?"])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True, help="another checkout (e.g. a copy of main)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--cells", default="mlp")
    ap.add_argument("--losses", default="logistic,cross_entropy,huber")
    ap.add_argument("--pairs", default="l2,l1", help="R of (l2, R)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench/results/inner.json"))
    args = ap.parse_args()
    rows = []
    for arch in args.cells.split(","):
        for loss in args.losses.split(","):
            for R in args.pairs.split(","):
                cell = dict(arch=arch, loss=loss, act="gated_relu", C="l2", R=R, n=args.n)
                for rep in range(args.repeat):
                    for who, root in (("branch", ROOT), ("other", Path(args.other).resolve())):
                        row = dict(cell, who=who, repeat=rep, root=str(root),
                                   load_before=list(os.getloadavg()), **run(root, cell))
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    sys.path.insert(0, str(ROOT))
    from bench.machine import write_results
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
