"""The cost in one process of summing the lifted warm starts' sums by blocks in a fixed
order (runtime/blocksum.py), against another source tree of bmdsl (e.g. a commit before
it, unpacked by `git archive`), side by side in one run.

    python bench/bench_lifted_blocks.py --other /tmp/old [--n 4000] [--iters 200]

Gated-ReLU MLP, d = 10, P = 12 sampled gates, m = 3, float64: cross-entropy with
(l2, l2) and huber with (l2, l1) (both: the lifted prox ADMM, as `auto` picks), and huber
with (l2, l1) by the lifted FISTA (made directly), each for a
fixed number of iterations of its warm start after its first (timed apart: the operator
and, for the ADMM, L^* L and its inverse), no certificate, in a fresh process per
tree and case, alternating the trees. Writes bench/results/lifted_blocks.json.
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

CASES = {"cross_entropy": ("cross_entropy", "R = l2", "Y[n, c]", "W2[c]", "[n, o]", "[o]"),
         "huber": ("huber", "R = l1", "Y[n]", "W2", "[n]", ""),
         "huber_fista": ("huber", "R = l1", "Y[n]", "W2", "[n]", "")}

MODEL = """model m
input   X[n, d]
target  {Y}
units   m = 3
weights W1[d], {W2}
layer   A[n] = X[n, i] * W1[i]
output  Yhat{yo} = act(A)[n] * W2{wo}
activation gated_relu(patterns = 12, seed = 0)
loss       {loss}
regularize beta = 1e-2, C = l2, {R}
"""

CHILD = r"""
import json, sys, time
import numpy as np, torch
import bmdsl
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.proxgrad import LiftedFISTA
text, n, iters, fista = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
rng = np.random.default_rng(0)
X = rng.standard_normal((n, 10))
Y = np.eye(2)[(X[:, 0] * X[:, 1] > 0).astype(int)] if "cross_entropy" in text else \
    np.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
t = Trainer(bmdsl.parse(text).derive().bind({"X": X, "Y": Y}), device="cpu", progress=False)
warm = LiftedFISTA(t.problem) if fista else t.warm
torch.set_num_threads(1)
start = time.perf_counter()
warm.run(1)                      # the operator, L^* L and its inverse, one iteration
first = time.perf_counter() - start
done = warm.info()["iterations"]
start = time.perf_counter()
warm.run(iters)
seconds = time.perf_counter() - start
# per iteration run: a warm start may converge before `iters` (and the trees' sums round
# differently, so their counts may differ)
print(json.dumps({"method": warm.info()["method"], "iterations": warm.info()["iterations"] - done,
                  "seconds": seconds, "first": first}))
"""


def run(tree, text, n, iters, fista):
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, text, str(n), str(iters),
                          "1" if fista else "0"], env=env,
                         capture_output=True, text=True, check=True, cwd=str(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True, help="another bmdsl source tree")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    rows = []
    for name, (loss, R, Y, W2, yo, wo) in CASES.items():
        text = MODEL.format(loss=loss, R=R, Y=Y, W2=W2, yo=yo, wo=wo)
        times = {"blocks": [], "other": []}
        first = {"blocks": [], "other": []}
        for _ in range(a.repeats):
            for label, tree in (("blocks", ROOT), ("other", Path(a.other))):
                r = run(tree, text, a.n, a.iters, name.endswith("fista"))
                times[label].append(r["seconds"] / r["iterations"])
                first[label].append(r["first"])
                method = r["method"]
        row = {"case": name, "method": method, "n": a.n, "iterations": r["iterations"],
               "ms_per_iteration_blocks": 1e3 * min(times["blocks"]),
               "ms_per_iteration_other": 1e3 * min(times["other"]),
               "first_iteration_s_blocks": min(first["blocks"]),
               "first_iteration_s_other": min(first["other"])}
        row["ratio"] = row["ms_per_iteration_blocks"] / row["ms_per_iteration_other"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = {"rows": rows, "load": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M")}
    path = ROOT / "bench" / "results" / "lifted_blocks.json"
    path.write_text(json.dumps(out, indent=2))
    print("wrote", path)


if __name__ == "__main__":
    main()
