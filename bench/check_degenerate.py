"""Degenerate data a user will hit, on every shipped model, activation and loss: each must
give the right answer (checked as in bench/check_grid.py: CVXPY's p* against the certified
BM objective) or a clear error (a `BmdslError` with its message, never a traceback).

    python bench/check_degenerate.py [--out bench/results/check_degenerate_s11.json]
                                     [--models mlp,...] [--limit 30] [--table JSON]

Cases: n = 1, n = 2, d = 1, c = 1, an all-zero target (p* = 0 at Z = 0), a target with a
constant column, beta = 1e6 (every unit pruned: Z = 0 is optimal) and beta = 1e-8; the
model's own norm pair, 7 sampled patterns, seed 101 (bench/check_grid.py's sizes
otherwise). ReLU only where its program is exact (bmdsl says which).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.check_grid import SIZES, SMALLER, run_cell, table, verdict  # noqa: E402
from bench.machine import write_results  # noqa: E402


def _constant_column(Y, loss):
    """The last column made constant: its first entry everywhere, or (one-hot rows, the
    loss refuses that) class 0 taking the last class's samples, a column of zeros."""
    first = np.array(Y, dtype=float)
    cols = first if first.ndim > 1 else first[:, None]    # Y[n]: the one column, a view
    cols[..., -1] = cols.reshape(-1, cols.shape[-1])[0, -1]
    moved = np.array(Y, dtype=float)
    moved[..., 0] += moved[..., -1]
    moved[..., -1] = 0.0
    return first if loss.target_check(first) is None else moved


CASES = {   # name -> (sizes, beta, target)
    "n = 1": (dict(n=1), None, None),
    "n = 2": (dict(n=2), None, None),
    "d = 1": (dict(d=1), None, None),
    "c = 1": (dict(c=1), None, None),
    "Y = 0": ({}, None, lambda Y, loss: np.zeros_like(Y)),
    "constant column": ({}, None, _constant_column),
    "beta = 1e6": ({}, 1e6, None),
    "beta = 1e-8": ({}, 1e-8, None),
}


def main(argv=None) -> int:
    import torch
    import bmdsl
    from bmdsl.atoms.activations import ACTIVATIONS
    from bmdsl.atoms.losses import LOSSES
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/check_degenerate_s11.json"))
    ap.add_argument("--models", default="mlp,relu,cnn,selfattention")
    ap.add_argument("--limit", type=float, default=30.0, help="the trainer's time_limit")
    ap.add_argument("--table", help="print the summary of a results JSON by case and exit")
    args = ap.parse_args(argv)
    if args.table:
        import json
        print(table(json.loads(Path(args.table).read_text())["rows"], key=("case",)))
        return 0
    rows, start = [], time.perf_counter()
    for name in args.models.split(","):
        model = bmdsl.load(str(ROOT / "models" / f"{name}.bm"))
        C, R = model.regularizer.C, model.regularizer.R
        for act in ACTIVATIONS:
            for loss in LOSSES:
                for case, (change, beta, target) in CASES.items():
                    sizes = {**SIZES, **SMALLER.get(model.name, {}), **change}
                    load = os.getloadavg()
                    row = run_cell(model, act, loss, C, R, 101, sizes, args.limit, beta,
                                   target)
                    row.update(case=case, load=load, verdict=verdict(row))
                    rows.append(row)
                    what = row.get("clear_error") or row.get("refused", "")[:60]
                    print(f"{name:13s} {act:10s} {loss:13s} {case:16s} {row['verdict']:12s} "
                          f"p* {row.get('p_star', float('nan')):.6g} "
                          f"bm {row.get('objective', float('nan')):.6g} "
                          f"gap {row.get('gap_bound', float('nan')):.1e} {what}", flush=True)
    write_results(args.out, rows, seconds=time.perf_counter() - start,
                  cases=list(CASES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
