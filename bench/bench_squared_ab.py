"""The squared loss's n = 2000 CNN cells, this checkout against another (e.g. a copy of main),
alternating fresh processes: construction (the Gram build) and fit timed apart.

    python bench/bench_squared_ab.py --other /tmp/base [--pairs l2,l1] [--repeats 3]
                                     [--out bench/results/squared_ab.json]

Each run is `Trainer(bound, m=...).fit(cert_tol=1e-4, time_limit=60)` as in bench_grid.py
(gated ReLU, one torch thread), in a fresh process importing bmdsl from its checkout;
the two checkouts alternate, so both see the same load (recorded before every run).
Writes per run: construction and fit seconds, the warm start's seconds, iterations and
rho changes, the gap bound, the objective and the peak resident memory.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import write_results  # noqa: E402

CHILD = r'''
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
import bmdsl
from bench.bench_grid import bound_for, units
from bmdsl.trainer import Trainer
assert bmdsl.__file__.startswith({root!r}), bmdsl.__file__
bound = bound_for("cnn", "squared", "gated_relu", "l2", {R!r}, n={n})
t0 = time.perf_counter()
trainer = Trainer(bound, device="cpu", progress=False, m=units(bound, {R!r}))
t1 = time.perf_counter()
r = trainer.fit(cert_tol=1e-4, time_limit=60)
t2 = time.perf_counter()
ws = r.warm_start
print("RESULT " + json.dumps(dict(construct=t1 - t0, fit=t2 - t1, total=t2 - t0,
      warm_seconds=ws["seconds"], iterations=ws["iterations"], rho_changes=ws["rho_changes"],
      gap_bound=r.certificate.gap_bound, objective=r.objective,
      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''


def run(root: Path, R: str, n: int) -> dict:
    code = CHILD.format(root=str(root), R=R, n=n)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, env=env, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"failed": (proc.stderr.strip().splitlines() or ["?"])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True, help="the other checkout (e.g. main's copy)")
    ap.add_argument("--pairs", default="l2,l1", help="R of the (l2, R) pairs")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench/results/squared_ab.json"))
    args = ap.parse_args()
    rows = []
    for R in args.pairs.split(","):
        for rep in range(args.repeats):
            for who, root in (("this", ROOT), ("other", Path(args.other).resolve())):
                row = dict(R=R, n=args.n, repeat=rep, who=who, root=str(root),
                           load_before=list(os.getloadavg()), **run(root, R, args.n))
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
