"""The squared loss's lifted ADMM with a balanced rho against another checkout, side by side.

    python bench/bench_rho.py --base /tmp/base [--cells mlp:0,mlp:2000,...] [--pairs l2,l1]
                              [--limit 120] [--out bench/results/rho.json]

Cells: `arch:n` (n = 0: the built-in size; bench_grid's data and models), the squared loss,
gated ReLU, each (C, R) in --pairs (l2 = (l2, l2), l1 = (l2, l1)); `digits` is the digits
CNN of bench_digits.py (m = 9, P = 16). Each cell runs in a fresh process once with this
checkout and once with --base (a copy of another branch, e.g. `git archive main | tar -x -C
/tmp/base`), one after the other, each importing bmdsl from its own root, one torch thread:
`Trainer(bound, m=...).fit(cert_tol=1e-4, time_limit=limit)`, as bench_grid.py. Recorded
per run: bind, construction and fit seconds, gap bound, stop reason, BM steps, the warm
start's iterations, seconds, final rho and its changes, the objective, peak RSS, and the
load average before it. Compare the two columns of one run (ratios), not across runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

CHILD = r'''
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from bmdsl.trainer import Trainer
cell = json.loads({cell!r})
start = time.perf_counter()
if cell["arch"] == "digits":
    from bench.bench_digits import bound_for
    bound, m = bound_for("squared", 16), 9
    if cell["R"] != "l2":
        raise SystemExit("digits: (l2, l2) only")
else:
    from bench.bench_grid import bound_for, units
    bound = bound_for(cell["arch"], "squared", "gated_relu", "l2", cell["R"], n=cell["n"] or None)
    m = units(bound, cell["R"])
bind = time.perf_counter() - start
t = time.perf_counter()
trainer = Trainer(bound, device="cpu", progress=False, m=m)
setup = time.perf_counter() - t
t = time.perf_counter()
r = trainer.fit(cert_tol=1e-4, time_limit=cell["limit"])
fit = time.perf_counter() - t
ws = r.warm_start or {{}}
out = {{"P": bound.P, "p": bound.p, "q": bound.q, "bind_seconds": bind,
       "trainer_seconds": setup, "fit_seconds": fit, "seconds": bind + setup + fit,
       "objective": r.objective, "gap_bound": r.certificate.gap_bound,
       "certified": bool(r.cert_tol_reached), "stopped": r.stopped, "steps": r.steps,
       "method": r.method, "warm_start": ws.get("method"),
       "warm_iterations": ws.get("iterations"), "warm_seconds": ws.get("seconds"),
       "rho_over_beta": (ws["rho"] / trainer.problem.beta) if ws.get("rho") else None,
       "rho_changes": ws.get("rho_changes"),
       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}
print("RESULT " + json.dumps(out))
'''


def run(root: str, cell: dict, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root)
    load = os.getloadavg()[0]
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD.format(root=root,
                              cell=json.dumps(cell))], capture_output=True, text=True,
                              timeout=timeout, cwd=root, env=env)
    except subprocess.TimeoutExpired:
        return {"skipped": f"killed after {timeout:g} s", "load_before": load}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]), load_before=load)
    return {"skipped": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1],
            "load_before": load}


def brief(r: dict) -> str:
    if "skipped" in r:
        return r["skipped"]
    rho = "" if r["rho_over_beta"] is None else \
        f", rho {r['rho_over_beta']:.3g} beta ({r['rho_changes']} changes)"
    return (f"{r['seconds']:.2f} s (fit {r['fit_seconds']:.2f}), bound {r['gap_bound']:.1e}, "
            f"{r['stopped']}, {r['steps']} steps, {r['warm_start']} "
            f"({r['warm_iterations']} it, {r['warm_seconds'] or 0:.2f} s{rho})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="root of the other checkout")
    ap.add_argument("--cells", default="mlp:0,mlp:2000,selfattention:0,selfattention:2000,"
                                        "cnn:0,cnn:2000")
    ap.add_argument("--pairs", default="l2,l1")
    ap.add_argument("--limit", type=float, default=120.0, help="fit's time_limit")
    ap.add_argument("--out", default=str(ROOT / "bench/results/rho.json"))
    args = ap.parse_args()
    record = {"command": " ".join(sys.argv), "machine": describe(), "rows": []}
    for spec in args.cells.split(","):
        arch, _, n = spec.partition(":")
        for R in args.pairs.split(","):
            if arch == "digits" and R != "l2":
                continue
            cell = {"arch": arch, "n": int(n or 0), "R": R, "limit": args.limit}
            row = dict(cell)
            for who, root in (("base", args.base), ("this", str(ROOT))):
                row[who] = run(root, cell, 2 * args.limit + 120)
            record["rows"].append(row)
            print(f"{arch} n={n or 'built-in'} (l2, {R}): base {brief(row['base'])} | "
                  f"this {brief(row['this'])}", flush=True)
            Path(args.out).write_text(json.dumps(record, indent=1))
    record["machine_after"] = describe()
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
