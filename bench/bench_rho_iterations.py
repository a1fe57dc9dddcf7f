"""Iterations of the lifted ADMM to its tolerance: fixed rho against the balanced one.

    python bench/bench_rho_iterations.py [--cells mlp:0:l2,selfattention:2000:l2,...]
                                         [--fixed 0.03,0.3,3,10] [--max-iter 5000]
                                         [--out bench/results/rho_iterations.json]

Each cell (`arch:n:R`, bench_grid's data and models, squared loss, gated ReLU, C = l2; n = 0
the built-in size) builds the trainer's Gram (G_F, B) once and runs `LiftedADMM` on it from
zero: with rho = k beta fixed for each k of --fixed, and with the default (RHO_BETA * beta,
then balanced). Recorded: iterations until both relative residuals are <= 1e-8 (or the
cap), the objective there, seconds, and for the balanced run its final rho and changes.
Iteration counts do not depend on the machine's load; seconds do.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402


def run(gram, beta, norm, rho, max_iter):
    from bmdsl.trainer.runtime.lifted import LiftedADMM
    admm = LiftedADMM(gram, beta, rho=rho, norm=norm)
    start = time.perf_counter()
    done = admm.run(max_iter)
    X = admm.solution()
    value = float(gram.loss(X)) + beta * float(norm.value(X))
    return {"converged": bool(done), "iterations": admm.iterations, "objective": value,
            "seconds": time.perf_counter() - start, "rho_over_beta": admm.rho / beta,
            "rho_changes": admm.changes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="mlp:0:l2,mlp:2000:l2,selfattention:0:l2,"
                                        "selfattention:2000:l2,mlp:0:l1,mlp:2000:l1,"
                                        "selfattention:0:l1,selfattention:2000:l1")
    ap.add_argument("--fixed", default="0.03,0.3,3,10")
    ap.add_argument("--max-iter", type=int, default=5000)
    ap.add_argument("--out", default=str(ROOT / "bench/results/rho_iterations.json"))
    args = ap.parse_args()
    import torch
    from bench.bench_grid import bound_for, units
    from bmdsl.trainer import Trainer
    from bmdsl.trainer.runtime.dprox import DNorm
    torch.set_num_threads(1)
    record = {"command": " ".join(sys.argv), "machine": describe(), "rows": []}
    for spec in args.cells.split(","):
        arch, n, R = spec.split(":")
        bound = bound_for(arch, "squared", "gated_relu", "l2", R, n=int(n) or None)
        pb = Trainer(bound, device="cpu", progress=False, m=units(bound, R)).problem
        norm = DNorm(pb.spec["prox"], pb.C, pb.R)
        row = {"cell": spec, "P": pb.P, "p": pb.p, "q": pb.q, "block": pb.gram.GF.shape[0],
               "beta": pb.beta, "fixed": {}}
        for k in args.fixed.split(","):
            row["fixed"][k] = run(pb.gram, pb.beta, norm, float(k) * pb.beta, args.max_iter)
        row["balanced"] = run(pb.gram, pb.beta, norm, None, args.max_iter)
        record["rows"].append(row)
        fixed = ", ".join(f"{k} beta: {r['iterations']}{'' if r['converged'] else ' (cap)'}"
                          for k, r in row["fixed"].items())
        b = row["balanced"]
        print(f"{spec}: fixed {fixed}; balanced {b['iterations']}"
              f"{'' if b['converged'] else ' (cap)'} (rho {b['rho_over_beta']:.3g} beta, "
              f"{b['rho_changes']} changes)", flush=True)
        Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
