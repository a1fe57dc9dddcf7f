"""The CVXPY program of a CNN on real digits: time and peak memory of the planned lowering.

    python bench/bench_cvx_memory.py [--n 1797] [--patterns 16] [--losses squared cross_entropy]

scikit-learn's `load_digits` (n = 1797 real 8 x 8 images scaled to [0, 1], 10 classes,
one-hot targets), the CNN of models/cnn.bm (3x3 patches, padding 1, 2x2 average pooling,
so p = 9, q = 10 * 16 = 160), gated ReLU with P patterns, beta = 1e-2, C = R = l2, solved by
`bound.to_cvxpy().solve()` with Clarabel. Each loss runs in its own child process, alone,
so that its peak RSS (getrusage ru_maxrss) is its own. Recorded per run: the lowering the
planner chose, the estimates of both lowerings (cvxfootprint.cvxpy_plan_for), the operator's
non-zeros, build / solve / total wall time, the RSS before the program is built and the
peak RSS (bench/fit_cvx_memory.py fits the estimate to their difference), status and
optimum. Targets are one-hot, or +-1 where the loss's own target check refuses 0/1
(logistic).
Writes bench/results/cvx_memory.json.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def digits_data(n: int, loss: str = "squared") -> dict:
    """One-hot targets; +-1 where the loss's own target check refuses 0/1 (logistic)."""
    from sklearn.datasets import load_digits
    from bmdsl.atoms.losses import get_loss
    d = load_digits()
    y = np.eye(10)[d.target[:n]]
    if get_loss(loss).target_check(y):
        y = 2.0 * y - 1.0
    return {"I": d.images[:n, None].astype(np.float64) / 16.0, "Y": y}


def rss_now() -> int:
    """Resident bytes of this process now (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def one_run(n: int, patterns: int, loss: str) -> dict:
    import bmdsl
    from bmdsl.core.cvxfootprint import cvxpy_plan_for
    text = (ROOT / "models" / "cnn.bm").read_text().replace("loss       squared",
                                                             f"loss       {loss}")
    model = bmdsl.parse(text).with_activation("gated_relu", patterns, 0)
    t0 = time.perf_counter()
    bound = model.derive().bind(digits_data(n, loss))
    path, estimate = cvxpy_plan_for(bound)
    before = rss_now()       # the process before the program: the estimate is what it adds
    dense = cvxpy_plan_for(bound, "dense", "full")[1]
    problem = bound.to_cvxpy()
    t1 = time.perf_counter()
    solution = problem.solve()
    t2 = time.perf_counter()
    main = problem.programs["exact"].problem
    stats = main.solver_stats
    return {"n": n, "patterns": bound.P, "loss": loss, "p": bound.p, "q": bound.q,
            "ny": int(bound.Y.size), "lowering": problem.lowering, "planned": path,
            "estimate_bytes": estimate.nbytes, "estimate": estimate.what,
            "dense_estimate_bytes": dense.nbytes, "operator_nnz_bound": bound.operator_nnz(),
            "build_s": round(t1 - t0, 2), "solve_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2), "compile_s": round(main.compilation_time or 0, 2),
            "clarabel_s": round(stats.solve_time or 0, 2), "iterations": stats.num_iters,
            "status": solution.status, "value": solution.value,
            "rss_before_bytes": before,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1797)
    ap.add_argument("--patterns", type=int, default=16)
    ap.add_argument("--losses", nargs="+", default=["squared", "cross_entropy"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cvx_memory.json"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args.n, args.patterns, args.child)))
        return
    from bench.machine import describe
    runs = []
    for loss in args.losses:
        out = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--patterns",
                              str(args.patterns), "--child", loss],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            runs.append({"loss": loss, "error": out.stderr.strip().splitlines()[-1:]})
        else:
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1], indent=1), flush=True)
        # written after each run: a long one may be stopped
        Path(args.out).write_text(json.dumps({"machine": describe(), "runs": runs}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
