"""The cost in one process of the cone interior point's fixed-order sums over samples
(runtime/rowsums.py: per block of samples, added along a fixed tree, so that 1 and N
processes take the same bits) against another source tree of bmdsl (e.g. the commit
before it, unpacked by `git archive`), side by side in one run.

    python bench/bench_interior_blocks.py --other /tmp/old [--n 4001] [--patterns 20]

A scalar-output ReLU MLP (models/relu.bm, d = 5, the data of bench_distcone.py), float64,
one thread, squared and logistic loss: the interior point's construction (timed apart)
and its iterations to convergence, in a fresh process per tree and case, alternating the
trees, best of --repeats. Writes bench/results/interior_blocks_n{N}.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np, torch
import bmdsl
from bmdsl.trainer import Trainer
text, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.standard_normal((n, 5))
Y = np.sign(X[:, 0] * X[:, 1] + 0.3 * X[:, 2] + 0.1)
torch.set_num_threads(1)
t = Trainer(bmdsl.parse(text).derive().bind({"X": X, "Y": Y}), device="cpu", progress=False)
from bmdsl.trainer.runtime.interior import ConeInteriorPoint
start = time.perf_counter()
ip = ConeInteriorPoint(t.problem)
setup = time.perf_counter() - start
start = time.perf_counter()
ip.run(200)
seconds = time.perf_counter() - start
print(json.dumps({"iterations": ip.iterations, "seconds": seconds, "setup": setup,
                  "objective": ip.objective()}))
"""


def run(tree, text, n):
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, text, str(n)], env=env,
                         capture_output=True, text=True, check=True, cwd=str(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True, help="another bmdsl source tree")
    ap.add_argument("--n", type=int, default=4001)
    ap.add_argument("--patterns", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    base = (ROOT / "models" / "relu.bm").read_text().replace("patterns = 50",
                                                              f"patterns = {a.patterns}")
    rows = []
    for loss in ("squared", "logistic"):
        text = re.sub(r"loss\s+squared", f"loss {loss}", base)
        per = {"blocks": [], "other": []}
        setup = {"blocks": [], "other": []}
        iters, obj = {}, {}
        for _ in range(a.repeats):
            for label, tree in (("blocks", ROOT), ("other", Path(a.other))):
                r = run(tree, text, a.n)
                per[label].append(r["seconds"] / max(r["iterations"], 1))
                setup[label].append(r["setup"])
                iters[label], obj[label] = r["iterations"], r["objective"]
        row = {"loss": loss, "n": a.n, "patterns": a.patterns,
               "iterations_blocks": iters["blocks"], "iterations_other": iters["other"],
               "objective_blocks": obj["blocks"], "objective_other": obj["other"],
               "ms_per_iteration_blocks": 1e3 * min(per["blocks"]),
               "ms_per_iteration_other": 1e3 * min(per["other"]),
               "setup_s_blocks": min(setup["blocks"]), "setup_s_other": min(setup["other"])}
        row["ratio"] = row["ms_per_iteration_blocks"] / row["ms_per_iteration_other"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = {"rows": rows, "load": os.getloadavg(), "time": __import__("time").strftime(
        "%Y-%m-%d %H:%M"), "command": f"python bench/bench_interior_blocks.py --other OLD "
                                      f"--n {a.n} --patterns {a.patterns}"}
    path = ROOT / "bench" / "results" / f"interior_blocks_n{a.n}.json"
    path.write_text(json.dumps(out, indent=2))
    print("wrote", path)


if __name__ == "__main__":
    main()
