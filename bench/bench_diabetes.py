"""Real data: scikit-learn's diabetes set with a ReLU MLP and a scalar output, the default
trainer against CVXPY + Clarabel on the same patterns (issue 13: certified within 10 s).

    python bench/bench_diabetes.py [--patterns 100] [--beta 1e-2] [--loss squared]

`sklearn.datasets.load_diabetes` ships with scikit-learn (no download): n = 442, d = 10.
Features and target are standardized (zero mean, unit variance); the model declares a
hidden bias (`bias hidden`: a constant feature, so W1 has d + 1 = 11 entries). Each run is
a fresh process, so its peak resident memory is its own:

* trainer: `Trainer(bound).fit(cert_tol=1e-4)` with the defaults (the cone interior-point
  warm start): time to the certified relative gap <= 1e-4 (the fit stops there), its gap
  bound, objective, peak RSS;
* CVXPY: `bound.to_cvxpy().solve()` (Clarabel, its default tolerances), time, p*, peak RSS.
`seconds` is bind (the patterns) + solve, after the libraries are imported (torch, cvxpy,
sympy, scikit-learn: 3-10 s on this machine, the same for both; `process_seconds` has
them).

Writes bench/results/diabetes.json with the machine and its load average.
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

MODEL = """model diabetes_relu
input X[n, d]
target Y[n]
units m = 2
weights W1[d], W2
layer A[n] = X[n, i] * W1[i]
output Yhat[n] = act(A)[n] * W2
activation relu(patterns = {patterns}, seed = 0)
loss {loss}
regularize beta = {beta}, C = l2, R = l2
bias hidden
"""

CHILD = r'''
import json, resource, sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
import cvxpy, sklearn.datasets, sympy, torch
import bmdsl
from bmdsl.trainer import Trainer
from bench.bench_diabetes import bound_for
args = json.loads({args!r})
imported = time.perf_counter()
bound = bound_for(**args["bound"])      # the first bind also pays lazy imports
out = {{"P": bound.P, "p": bound.p, "n": int(bound.Y.shape[0]),
       "bind_seconds": time.perf_counter() - imported}}
if args["who"] == "cvxpy":
    t = time.perf_counter()
    sol = bound.to_cvxpy().solve()
    out.update(solve_seconds=time.perf_counter() - t, ok=bool(sol.ok), value=sol.value,
               status=str(sol.status))
else:
    t = time.perf_counter()
    r = Trainer(bound, device="cpu", progress=False).fit(cert_tol=1e-4)
    ws = r.warm_start or {{}}
    out.update(solve_seconds=time.perf_counter() - t, objective=r.objective,
               gap_bound=r.certificate.gap_bound, certified=bool(r.cert_tol_reached),
               steps=r.steps, stopped=r.stopped, method=r.method, violation=r.violation,
               warm_start=ws.get("method"), warm_iterations=ws.get("iterations"),
               warm_seconds=ws.get("seconds"))
out["seconds"] = time.perf_counter() - imported   # bind + solve, the imports left out
out["process_seconds"] = time.perf_counter() - start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
'''


def diabetes(loss="squared"):
    """X [442, 10], Y [442], both standardized; for the logistic loss Y is the sign of the
    standardized target (above or below the mean)."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    data = load_diabetes()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    Y = (data.target - data.target.mean()) / data.target.std()
    if loss == "logistic":
        Y = np.where(Y > 0, 1.0, -1.0)
    return {"X": X, "Y": Y}


def bound_for(patterns, beta, loss):
    import bmdsl
    text = MODEL.format(patterns=patterns, beta=beta, loss=loss)
    return bmdsl.parse(text).derive().bind(diabetes(loss))


def run_child(args: dict, limit: float) -> dict:
    return run_code(CHILD.format(root=str(ROOT), args=json.dumps(args)), limit, ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patterns", type=int, default=100)
    ap.add_argument("--beta", type=float, default=1e-2)
    ap.add_argument("--loss", default="squared", choices=("squared", "huber", "logistic"))
    ap.add_argument("--cvxpy-limit", type=float, default=600.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results/diabetes.json"))
    args = ap.parse_args()
    spec = dict(patterns=args.patterns, beta=args.beta, loss=args.loss)
    load_before = os.getloadavg()
    tr = run_child({"who": "trainer", "bound": spec}, 600)
    print("trainer:", json.dumps(tr), flush=True)
    cv = run_child({"who": "cvxpy", "bound": spec}, args.cvxpy_limit)
    print("cvxpy:  ", json.dumps(cv), flush=True)
    row = {"bound": spec, "trainer": tr, "cvxpy": cv}
    if "objective" in tr and cv.get("ok"):
        row["rel_to_pstar"] = (tr["objective"] - cv["value"]) / abs(cv["value"])
        row["speedup"] = cv["seconds"] / tr["seconds"]
        print(f"trainer {tr['seconds']:.2f} s (gap bound {tr['gap_bound']:.1e}, "
              f"{tr['peak_rss_mb']:.0f} MB) vs CVXPY {cv['seconds']:.2f} s "
              f"({cv['peak_rss_mb']:.0f} MB): {row['speedup']:.1f}x; "
              f"(p - p*)/p* = {row['rel_to_pstar']:+.1e}")
    out = {"machine": describe(), "load_before": load_before, "load_after": os.getloadavg(),
           "command": " ".join(sys.argv), "rows": [row]}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
