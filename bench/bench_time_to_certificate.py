"""Time to a certified relative gap <= 1e-3: BM trainer against CVXPY + Clarabel.

    python bench/bench_time_to_certificate.py [--sizes 150 600 2000 100000] [--cvxpy-limit 600]

Gated-ReLU MLP on the three-class spiral (paper sec. 4.1: d = 2, c = 3, P = 100 sampled
gates, m = 5, beta = 1e-3), both methods on the SAME patterns. BM: the default trainer
(lifted ADMM warm start, then the default method; --no-warm-start: the method alone from
random factors), stopped once the Fenchel duality-gap bound of the BM factors is <= 1e-3
(the time includes building the trainer, its Gram matrix and every certificate).
CVXPY: build + solve, run in a subprocess with a time limit; skipped (and said so) when it
would not finish within the limit. Writes bench/results/time_to_certificate.json.
"""
from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402
from bmdsl.bind import datasets  # noqa: E402

MODEL = """model spiral
input X[n, d]
target Y[n, c]
units m = 5
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(patterns = 100, seed = 0)
loss squared
regularize beta = BETA, C = l2, R = l2
"""


def bound_for(n: int, beta: float):
    return bmdsl.parse(MODEL.replace("BETA", repr(beta))).derive().bind(datasets.spiral(n=n))


def _cvxpy(n, beta, queue):
    t = time.perf_counter()
    sol = bound_for(n, beta).to_cvxpy().solve()
    queue.put((sol.value, sol.status, time.perf_counter() - t))


def cvxpy_time(n, beta, limit):
    queue = mp.Queue()
    proc = mp.Process(target=_cvxpy, args=(n, beta, queue))
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.terminate()
        return None, f"did not finish within {limit:.0f} s", None
    return queue.get() if not queue.empty() else (None, "failed", None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[150, 600, 2000, 100000])
    ap.add_argument("--beta", type=float, default=1e-3)
    ap.add_argument("--cvxpy-limit", type=float, default=600.0)
    ap.add_argument("--cvxpy-max-n", type=int, default=20000,
                    help="skip CVXPY above this n (its dense operator alone is n*c*P*p*q floats)")
    ap.add_argument("--no-warm-start", action="store_true",
                    help="BM from random factors only (the trainer's warm_start=False)")
    args = ap.parse_args()
    warm = not args.no_warm_start
    for name in ("cvxpy", "torch"):     # before any clock starts: neither side pays imports
        importlib.import_module(name)
    rows = []
    for n in args.sizes:
        bound = bound_for(n, args.beta)
        t = time.perf_counter()
        trainer = bound.to_torch(progress=False, warm_start="auto" if warm else False)
        result = trainer.fit(cert_tol=1e-3, certificate_every=25)
        t_bm = time.perf_counter() - t
        gap = result.certificate.gap_bound if result.certificate else float("nan")
        if n > args.cvxpy_max_n:
            value, status, t_cvx = None, f"skipped: n > {args.cvxpy_max_n} (dense operator " \
                f"{n * 3 * bound.P * bound.p * bound.q * 8 / 1e9:.1f} GB)", None
        else:
            value, status, t_cvx = cvxpy_time(n, args.beta, args.cvxpy_limit)
        rel = None if value is None else (result.objective - value) / abs(value)
        row = {"n": n, "mode": "warm" if warm else "bm-only", "P": bound.P,
               "bm_seconds": t_bm, "bm_method": result.method,
               "bm_steps": result.steps, "bm_warm_start": result.warm_start,
               "bm_gap_bound": gap, "bm_objective": result.objective,
               "cvxpy_seconds": t_cvx, "cvxpy_status": status, "cvxpy_value": value,
               "true_gap": rel, "speedup": None if t_cvx is None else t_cvx / t_bm,
               "measured": time.strftime("%Y-%m-%d %H:%M")}
        rows.append(row)
        sp = "" if t_cvx is None else f"  speed-up {t_cvx / t_bm:.1f}x"
        ws = result.warm_start
        ws = f"ADMM {ws['iterations']} its {ws['seconds']:.2f} s + " if ws else ""
        cvx = "-" if t_cvx is None else f"{t_cvx:7.2f} s"
        print(f"n={n:>6} P={bound.P:>3}  BM {t_bm:7.2f} s ({ws}{result.method} "
              f"{result.steps} steps, gap bound {gap:.1e})   CVXPY {cvx} [{status}]{sp}",
              flush=True)
    # rows of earlier runs at other sizes or modes are kept (each says when it was measured;
    # rows from before the warm start existed are BM-only runs)
    out = ROOT / "bench" / "results" / "time_to_certificate.json"
    old = json.loads(out.read_text()).get("rows", []) if out.exists() else []
    for r in old:
        r.setdefault("mode", "bm-only")
    key = lambda r: (r["n"], r["mode"])  # noqa: E731
    merged = {key(r): r for r in old if "measured" in r}
    merged.update({key(r): r for r in rows})
    out.write_text(json.dumps({"machine": describe(), "beta": args.beta,
                               "rows": [merged[n] for n in sorted(merged)]},
                              indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
