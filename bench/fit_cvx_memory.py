"""Fit the CVXPY program's memory model to measured peaks, and check it on other sizes.

    python bench/fit_cvx_memory.py --fit bench/results/cvx_memory_n100.json \
        bench/results/cvx_memory_n200.json --check bench/results/cvx_memory_n400_loss.json

The measured quantity is what the program adds to the process: peak RSS minus the RSS
before the program was built (`rss_before_bytes`; a run recorded without it takes the mean
of the other runs at the same n). The model (bmdsl/core/cvxfootprint.py), linear in four
constants fitted by non-negative least squares on the --fit runs only:

    added = a * operator_nnz + K + b * loss rows + f * loss KKT triangle entries

(a: STRUCTURED_BYTES_PER_NNZ, K: the n-independent part, charged to the PSD blocks,
b: LOSS_BYTES_PER_ROW, f: LOSS_FILL_BYTES; the loss terms from each loss entry's
`cvxpy_size`). Prints fitted constants and predicted vs measured for every run, and writes
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


def features(run: dict) -> list[float]:
    from bmdsl.atoms.losses import get_loss
    from bmdsl.core import cvxfootprint as cf
    size = get_loss(run["loss"]).cvxpy_size
    outputs, lifted = run["ny"] // run["n"], run["patterns"] * run["p"] * run["q"]
    # the two loss terms separately: with one of the constants set to 1 and the other to 0
    saved = cf.LOSS_BYTES_PER_ROW, cf.LOSS_FILL_BYTES
    try:
        cf.LOSS_BYTES_PER_ROW, cf.LOSS_FILL_BYTES = 1, 0
        rows = cf.loss_program(run["ny"], outputs, lifted, size)[0]
        cf.LOSS_BYTES_PER_ROW, cf.LOSS_FILL_BYTES = 0, 1
        fill = cf.loss_program(run["ny"], outputs, lifted, size)[0]
    finally:
        cf.LOSS_BYTES_PER_ROW, cf.LOSS_FILL_BYTES = saved
    return [run["operator_nnz_bound"], 1.0, rows, fill]


def load(paths) -> list[dict]:
    runs = []
    for path in paths:
        got = [r for r in json.loads(Path(path).read_text())["runs"] if "error" not in r]
        for r in got:
            r["source"] = str(Path(path).relative_to(ROOT)) if Path(path).is_absolute() \
                else str(path)
        runs += got
    by_n: dict[int, list[int]] = {}
    for r in runs:
        if "rss_before_bytes" in r:
            by_n.setdefault(r["n"], []).append(r["rss_before_bytes"])
    for r in runs:
        if "rss_before_bytes" not in r:
            known = by_n.get(r["n"])
            r["rss_before_bytes"] = int(np.mean(known)) if known else None
            r["rss_before_from"] = "mean of the same n's other runs" if known else "unknown"
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
    A = np.array([features(r) for r in fit], dtype=float)
    b = np.array([r["added_bytes"] for r in fit], dtype=float)
    scale = A.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(A / scale, b)
    coef = coef / scale
    names = ["bytes_per_nnz", "fixed_bytes", "bytes_per_loss_row", "bytes_per_fill_entry"]
    print("fitted:", dict(zip(names, (float(c) for c in coef))))
    rows = []
    for tag, runs in (("fit", fit), ("check", load(args.check))):
        for r in runs:
            pred = float(np.dot(features(r), coef))
            rows.append({"set": tag, "n": r["n"], "loss": r["loss"], "source": r["source"],
                         "added_bytes": r["added_bytes"], "predicted_bytes": int(pred),
                         "peak_rss_bytes": r["peak_rss_bytes"],
                         "rss_before_bytes": r["rss_before_bytes"],
                         "rss_before_from": r.get("rss_before_from", "measured"),
                         "ratio": None if not r["added_bytes"] else
                         round(pred / r["added_bytes"], 3)})
            m = "-" if r["added_bytes"] is None else f"{r['added_bytes'] / 1e9:.3f}"
            print(f"{tag:5s} n={r['n']:5d} {r['loss']:14s} added {m} GB, predicted "
                  f"{pred / 1e9:.3f} GB, ratio {rows[-1]['ratio']}")
    Path(args.out).write_text(json.dumps({"model": names, "coefficients": list(map(float, coef)),
                                          "fit": args.fit, "check": args.check,
                                          "runs": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
