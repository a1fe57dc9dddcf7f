"""The diabetes benchmark's trainer (bench/bench_diabetes.py: ReLU MLP, scalar output,
fit(cert_tol=1e-4) with the cone interior point) in this checkout against another
revision's, side by side: the runs alternate, each a fresh process.

    git archive REV | tar -x -C /tmp/base
    python bench/bench_diabetes_ab.py /tmp/base [--repeats 3] [--loss squared]

Writes bench/results/diabetes_ab.json: every run's seconds (bind + fit), interior-point
iterations, gap bound and objective, and the ratio of the medians (base / this).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_diabetes import CHILD  # noqa: E402
from bench.machine import describe  # noqa: E402


def trainer_run(root: Path, spec: dict) -> dict:
    code = CHILD.format(root=str(root), args=json.dumps({"who": "trainer", "bound": spec}))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=root)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(proc.stderr.strip()[-2000:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base", help="a checkout of the revision to compare against")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loss", default="squared", choices=("squared", "huber", "logistic"))
    args = ap.parse_args()
    spec = dict(patterns=100, beta=1e-2, loss=args.loss)
    runs = {"base": [], "this": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for who, root in (("base", Path(args.base).resolve()), ("this", ROOT)):
            r = trainer_run(root, spec)
            runs[who].append(r)
            print(who, json.dumps({k: r.get(k) for k in ("seconds", "warm_iterations",
                                                          "gap_bound", "objective")}),
                  flush=True)
    med = {w: statistics.median(r["seconds"] for r in rs) for w, rs in runs.items()}
    print(f"median seconds: base {med['base']:.2f}, this {med['this']:.2f}: "
          f"base / this = {med['base'] / med['this']:.2f}")
    out = {"machine": describe(), "load_before": load_before, "load_after": os.getloadavg(),
           "command": " ".join(sys.argv), "bound": spec, "runs": runs, "median": med}
    suffix = "" if args.loss == "squared" else "_" + args.loss
    path = ROOT / "bench" / "results" / f"diabetes_ab{suffix}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
