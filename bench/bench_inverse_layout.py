"""The explicit inverse (G_F + rho I)^{-1} of the lifted ADMM's z-step stored by rows or by
columns, side by side on the grid's cells (bench/bench_grid.py's `Trainer(bound,
m=...).fit(cert_tol=1e-4)`):

    python bench/bench_inverse_layout.py [--cells cnn:squared:l2:2000,cnn:huber:l1:0]
                                         [--repeats 1] [--out bench/results/inverse_layout.json]
    python bench/bench_inverse_layout.py --product 2592,2      # one product K @ r alone

torch's cholesky_inverse returns its result by columns (strides (1, N)); the z-step's
product with a few right-hand sides [N/c, c] was 7x slower so at N/c = 2592. Both
users are forced to one layout here, whatever the code does by default: lifted.py's
`LiftedADMM._inverse` (the squared loss, and the proximal Newton's subproblems) and
proxadmm.py's `regularized_inverse` (the prox ADMM, and the majorization's KronMetric).
The same values either way (the inverse is exactly symmetric), so the iterates and the gap
bounds must agree; each run is a fresh process, rows and columns alternating, the load
recorded before each. A cell is arch:loss:R:n (n = 0: the built-in size; gated ReLU).
--product N,c times the z-step's product alone: K = cholesky_inverse of a random SPD
[N, N] matrix (by columns, as torch returns it) and its transpose (by rows) times r [N, c].
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.child import PREAMBLE, run_code  # noqa: E402
from bench.machine import write_results  # noqa: E402

CHILD = PREAMBLE + r'''
from bench.bench_grid import bound_for, units
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime import lifted, majorize, proxadmm
args = json.loads({args!r})


def laid(K):
    """K stored by rows or by columns, as asked (the same values)."""
    if K is None:
        return K
    return K.contiguous() if args["layout"] == "rows" else K.T.contiguous().T


inverse = lifted.LiftedADMM._inverse
lifted.LiftedADMM._inverse = lambda self: laid(inverse(self))
regularized = proxadmm.regularized_inverse


def regularized_laid(G, eta, who="lifted prox ADMM"):
    K, eta = regularized(G, eta, who)
    return laid(K), eta


proxadmm.regularized_inverse = majorize.regularized_inverse = regularized_laid
bound = bound_for(**args["bound"])
start = time.perf_counter()
r = Trainer(bound, device="cpu", progress=False, m=units(bound, args["bound"]["R"])).fit(
    cert_tol=1e-4, time_limit=args["limit"])
ws = r.warm_start or {{}}
print("RESULT " + json.dumps(dict(
    seconds=time.perf_counter() - start, gap_bound=r.certificate.gap_bound,
    certified=bool(r.cert_tol_reached), objective=r.objective, warm_start=ws.get("method"),
    iterations=ws.get("iterations"), inner_iterations=ws.get("inner_iterations"),
    warm_seconds=ws.get("seconds"),
    peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''


def product(N: int, c: int, repeats: int = 20) -> None:
    """Medians of K @ r with K by columns and by rows, one thread, in this process."""
    import time
    import torch
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(N, N, generator=gen, dtype=torch.float64)
    K = torch.cholesky_inverse(torch.linalg.cholesky(A @ A.T / N + torch.eye(N, dtype=A.dtype)))
    r = torch.randn(N, c, generator=gen, dtype=torch.float64)
    times = {"columns": [], "rows": []}
    for _ in range(repeats):
        for name, M in (("columns", K), ("rows", K.T)):
            t = time.perf_counter()
            M @ r
            times[name].append(time.perf_counter() - t)
    med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
    print(f"K {tuple(K.stride())} strides; K @ r [{N}, {c}]: by columns {med['columns']:.1f} ms, "
          f"by rows {med['rows']:.1f} ms (medians of {repeats}); equal: "
          f"{torch.equal(K @ r, K.T @ r)}; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--product", help="N,c: time the product K @ r alone")
    ap.add_argument("--cells", default="cnn:squared:l2:2000,cnn:squared:l1:2000,"
                                        "cnn:huber:l2:0,cnn:huber:l1:0")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--limit", type=float, default=300.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results/inverse_layout.json"))
    args = ap.parse_args()
    if args.product:
        product(*(int(v) for v in args.product.split(",")))
        return
    rows = []
    for cell in args.cells.split(","):
        arch, loss, R, n = cell.split(":")
        spec = dict(arch=arch, loss=loss, act="gated_relu", C="l2", R=R, n=int(n) or None)
        for _ in range(args.repeats):
            for layout in ("rows", "columns"):
                load = os.getloadavg()
                child = {"bound": spec, "layout": layout, "limit": args.limit}
                out = run_code(CHILD.format(root=str(ROOT), args=json.dumps(child)),
                               args.limit + 120, ROOT)
                row = dict(spec, layout=layout, load_before=list(load), **out)
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
