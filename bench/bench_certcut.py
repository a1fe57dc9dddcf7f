"""Time spent in the certificate outside the solver, at n = 2000 (issue 13):

    OMP_NUM_THREADS=1 python bench/bench_certcut.py [--n 2000] [--out bench/results/certcut.json]

For the squared-loss gated-ReLU CNN and self-attention cells (bench_grid.py's models and
data, (l2, l2)), one certified fit (cert_tol 1e-4) gives the factors; then the certificate
of those very factors, as the fit computes it (100 refinement iterations, the Gram
statistics, the warm start's hints), is timed four ways in this one process:
the predictions and adjoints by numpy's einsum or by torch.einsum on the same arrays
(certificates/samples.Samples.backend), and with or without the fit's target (no
refinement once the unrefined bound is <= 1e-4). Every row reports its gap bound: all are valid bounds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_grid import bound_for, units  # noqa: E402
from bench.machine import describe  # noqa: E402


def cell(arch: str, n: int, repeats: int = 3) -> dict:
    import numpy as np
    from bmdsl.certificates import samples
    from bmdsl.trainer import Trainer
    from bmdsl.trainer.certificate import certify
    bound = bound_for(arch, "squared", "gated_relu", "l2", "l2", n=n)
    t = Trainer(bound, device="cpu", progress=False, m=units(bound, "l2"))
    start = time.perf_counter()
    r = t.fit(cert_tol=1e-4, time_limit=60)
    out = {"arch": arch, "n": n, "P": bound.P, "p": bound.p, "q": bound.q,
           "fit_seconds": time.perf_counter() - start, "stopped": r.stopped, "rows": []}
    hints = tuple(h.detach().cpu().double().numpy() for h in getattr(t, "hints", ()))
    dirs = tuple(d.detach().cpu().double().numpy() for d in getattr(t, "directions", ()))
    for backend in ("numpy", "numpy_by_torch"):
        for target in (None, 1e-4):
            samples.Samples.backend = backend
            times = []
            for _ in range(repeats):
                s = time.perf_counter()
                c = certify(bound, np.asarray(r.U), np.asarray(r.V), refine_iters=100,
                            gram=t.problem.gram, hints=hints, directions=dirs, target=target)
                times.append(time.perf_counter() - s)
            out["rows"].append({"backend": backend, "target": target, "seconds": min(times),
                                "gap_bound": c.gap_bound, "refinement": c.refinement})
            print(arch, backend, target, f"{min(times):.3f} s", f"gap {c.gap_bound:.3e}",
                  c.refinement, flush=True)
    samples.Samples.backend = "numpy_by_torch"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--cells", default="selfattention,cnn")
    ap.add_argument("--out", default=str(ROOT / "bench/results/certcut.json"))
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    res = {"machine": describe(), "cells": [cell(c, a.n) for c in a.cells.split(",")]}
    res["machine_after"] = describe()
    Path(a.out).write_text(json.dumps(res, indent=1))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
