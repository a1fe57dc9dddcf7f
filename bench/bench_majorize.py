"""The lifted majorization (runtime/majorize.py) against the other lifted warm starts on the
same cells, side by side in one process: where it belongs in runtime/warm.WARM_STARTS.

    python bench/bench_majorize.py [--limit 60] [--out bench/results/majorize.json]

Each cell (the grid benchmark's models and data, bench/bench_grid.py, gated ReLU) is fitted
by `Trainer(bound, m=units).fit(cert_tol=1e-4, time_limit=limit)` with the warm start set
to each lifted solver that accepts it (pnewton, mm, proxadmm), one torch thread:
time to the certificate, warm start iterations and seconds, the gap bound.
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

CELLS = [("mlp", "huber", "l2", "l2", None), ("mlp", "huber", "l2", "l1", None),
         ("mlp", "huber", "l2", "l2", 2000)]
# also measured by hand (the same run() on ("mlp", "cross_entropy", "l2", "l2", None), before
# the majorization refused cross_entropy): proximal Newton 6.2 s certified, majorization
# 60.4 s not certified (gap bound 7.8, 2547 outer steps)


def run(cell, start_cls, limit):
    import torch
    from bmdsl.trainer import Trainer
    arch, loss, C, R, n = cell
    bound = bound_for(arch, loss, "gated_relu", C, R, n)
    t0 = time.perf_counter()
    trainer = Trainer(bound, device="cpu", progress=False, m=units(bound, R), warm_start=False)
    if start_cls.accepts(trainer.problem, trainer.m) is not None:
        return None
    trainer.warm = start_cls.of(trainer.problem)
    r = trainer.fit(cert_tol=1e-4, time_limit=limit)
    ws = r.warm_start or {}
    del torch
    return {"arch": arch, "loss": loss, "C": C, "R": R, "n": n or "built-in",
            "warm_start": ws.get("method"), "seconds": time.perf_counter() - t0,
            "certified": bool(r.cert_tol_reached), "gap_bound": r.certificate.gap_bound,
            "warm_iterations": ws.get("iterations"), "warm_seconds": ws.get("seconds"),
            "steps": r.steps}


def main() -> None:
    import torch
    from bmdsl.trainer.runtime.majorize import LiftedMajorized
    from bmdsl.trainer.runtime.pnewton import LiftedProxNewton
    from bmdsl.trainer.runtime.proxadmm import LiftedProxADMM
    from bmdsl.trainer.runtime.proxgrad import LiftedFISTA
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results/majorize.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    machine = describe()
    rows = []
    for cell in CELLS:
        for cls in (LiftedProxNewton, LiftedMajorized, LiftedProxADMM):
            row = run(cell, cls, args.limit)
            if row is None:
                continue
            rows.append(row)
            print(f"{cell[0]} n={row['n']} {cell[1]} ({cell[2]}, {cell[3]}): "
                  f"{row['warm_start']:<26} {row['seconds']:7.2f} s  certified "
                  f"{row['certified']}  gap {row['gap_bound']:.1e}  warm it "
                  f"{row['warm_iterations']}", flush=True)
    machine["load_after"] = list(__import__("os").getloadavg())
    Path(args.out).write_text(json.dumps({"machine": machine, "command": " ".join(
        ["bench/bench_majorize.py"] + sys.argv[1:]), "rows": rows}, indent=1))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
