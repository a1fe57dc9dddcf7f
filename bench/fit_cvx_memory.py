"""Fit the CVXPY program's memory model to measured peaks, and check it on other sizes.

    python bench/fit_cvx_memory.py --fit bench/results/cvx_memory_n100.json \
        bench/results/cvx_memory_n200.json --check bench/results/cvx_memory_n400_loss.json

The measured quantity is what the program adds to the process: peak RSS minus the RSS
before the program was built (`rss_before_bytes`; a run recorded without it, by an earlier
version of bench_cvx_memory.py, takes the mean of the measured ones: ~179 MB, the same at
every n). The model (bmdsl/core/cvxfootprint.py), linear in four
constants fitted by non-negative least squares on the --fit runs only:

    added = a * operator_nnz + k * Z-side triangle entries + b * loss rows
            + f * loss KKT triangle entries + PSD blocks

(a: STRUCTURED_BYTES_PER_NNZ, k: KKT_Z_BYTES, the n-independent part, the KKT factor's Z
side, c triangles [P p q / c], b: LOSS_BYTES_PER_ROW, f: KKT_FILL_BYTES; the loss terms
from each loss entry's `cvxpy_size`), plus the PSD blocks' term as the estimator has it.
Each multiplier is read off the planner itself (cvxfootprint.cvxpy_plan with one constant
at 1, the others at 0). "predicted" is the estimate with the constants the code uses (the
fitted ones rounded). Prints fitted constants and predicted vs measured for every run, and writes
bench/results/cvx_memory_fit.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


CONSTANTS = ["STRUCTURED_BYTES_PER_NNZ", "KKT_Z_BYTES", "LOSS_BYTES_PER_ROW", "KKT_FILL_BYTES"]


def estimate(run: dict, values) -> int:
    """The planner's structured estimate (cvxfootprint.cvxpy_plan) of this run's program
    with the four constants set to `values` (the PSD blocks' term as it is)."""
    from bmdsl.atoms.losses import get_loss
    from bmdsl.core import cvxfootprint as cf
    saved = [getattr(cf, name) for name in CONSTANTS]
    try:
        for name, value in zip(CONSTANTS, values):
            setattr(cf, name, value)
        return cf.cvxpy_plan(run["patterns"], run["ny"], run["p"], run["q"], None,
                             run["operator_nnz_bound"], "auto", "structured",
                             get_loss(run["loss"]).cvxpy_size, run["ny"] // run["n"])[1].nbytes
    finally:
        for name, value in zip(CONSTANTS, saved):
            setattr(cf, name, value)


def features(run: dict) -> tuple[list[float], float]:
    """(the four terms' multipliers, the rest: the PSD blocks) of the run's estimate."""
    rest = estimate(run, [0, 0, 0, 0])
    return [estimate(run, [int(i == j) for j in range(4)]) - rest for i in range(4)], rest


KNOWN: list[dict] = []     # every run read, for the RSS before the program


def load(paths) -> list[dict]:
    runs = []
    for path in paths:
        got = [r for r in json.loads(Path(path).read_text())["runs"] if "error" not in r]
        for r in got:
            r["source"] = str(path)
        runs += got
    KNOWN.extend(runs)
    for r in runs:
        if "rss_before_bytes" not in r:    # an older run: the mean of the measured ones
            known = [k["rss_before_bytes"] for k in KNOWN if "rss_before_bytes" in k]
            r["rss_before_bytes"] = int(np.mean(known)) if known else None
            r["rss_before_from"] = (f"mean of {len(known)} measured runs" if known
                                    else "unknown")
        r["added_bytes"] = None if r["rss_before_bytes"] is None else \
            r["peak_rss_bytes"] - r["rss_before_bytes"]
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", nargs="+", required=True)
    ap.add_argument("--check", nargs="*", default=[])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cvx_memory_fit.json"))
    args = ap.parse_args()
    fit = [r for r in load(args.fit) if r["added_bytes"] is not None]
    load(args.check)                  # their measured RSS-before count for older runs too
    A = np.array([features(r)[0] for r in fit], dtype=float)
    b = np.array([r["added_bytes"] - features(r)[1] for r in fit], dtype=float)
    scale = A.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(A / scale, b)
    coef = coef / scale
    names = CONSTANTS
    from bmdsl.core import cvxfootprint as cf
    used = [getattr(cf, name) for name in CONSTANTS]
    print("fitted:", dict(zip(names, (round(float(c), 2) for c in coef))), "used:",
          dict(zip(names, used)))
    rows = []
    for tag, runs in (("fit", fit), ("check", load(args.check))):
        for r in runs:
            pred, fitted = estimate(r, used), estimate(r, coef)
            rows.append({"set": tag, "n": r["n"], "loss": r["loss"], "source": r["source"],
                         "added_bytes": r["added_bytes"], "predicted_bytes": int(pred),
                         "fitted_model_bytes": int(fitted),
                         "peak_rss_bytes": r["peak_rss_bytes"],
                         "rss_before_bytes": r["rss_before_bytes"],
                         "rss_before_from": r.get("rss_before_from", "measured"),
                         "ratio": None if not r["added_bytes"] else
                         round(pred / r["added_bytes"], 3)})
            m = "-" if r["added_bytes"] is None else f"{r['added_bytes'] / 1e9:.3f}"
            print(f"{tag:5s} n={r['n']:5d} {r['loss']:14s} added {m} GB, predicted "
                  f"{pred / 1e9:.3f} GB, ratio {rows[-1]['ratio']}")
    Path(args.out).write_text(json.dumps({"constants": names, "fitted": list(map(float, coef)),
                                          "used": used,
                                          "fit": args.fit, "check": args.check,
                                          "runs": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
