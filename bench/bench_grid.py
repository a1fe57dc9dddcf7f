"""The grid benchmark of issue 13: the default trainer against CVXPY + Clarabel.

    python bench/bench_grid.py [--n 0] [--cells mlp,cnn,selfattention] [--trainer-limit 60]
                               [--cvxpy-limit 120] [--out bench/results/grid.json] [--other DIR]
                               [--no-trainer] [--cvxpy-from GRID.json,...]

Cells: {mlp, cnn, selfattention} (the shipped models/*.bm) x {squared, cross_entropy,
logistic, huber} x {gated_relu, relu} x {(l2, l2), (l2, l1)}, on the built-in data
(bmdsl.bind.datasets at their default sizes; --n N sets the sample count instead). Targets are
one-hot classes for cross_entropy, a scalar +-1 for logistic (its target check), the
generators' for squared and huber. Each run is a fresh process (so its peak resident
memory is its own), bounded by a wall-clock limit:

* trainer: `Trainer(bound, m=...).fit(cert_tol=1e-4, time_limit=...)`, the default method
  and warm start, m = the model's units raised to what a factored convex solution needs
  (q for R = l1, min(p, q) for (l2, l2)); time to the first certificate <= 1e-4 (the fit stops there), its gap bound,
  steps, which warm start ran, peak RSS;
* CVXPY: `bound.to_cvxpy().solve()` (Clarabel), time, p*, peak RSS; a run over the limit is
  killed and reported as skipped with that reason. --cvxpy-from reuses the CVXPY results of
  earlier runs for the same cells (marked `reused_from`; their load is that run's), and
  --no-trainer runs CVXPY alone (the long cells once, in the background).

Cells the default trainer cannot certify by design are skipped with the reason (ReLU
with q > 1: its convex program is only bracketed; out of scope here). Writes the JSON
with the machine's description and load (bench/machine.py), each row with the load average
before it (other jobs on the cores slow every timing). bench/grid_table.py prints a
run's status table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import write_results  # noqa: E402

ARCHS = {"mlp": "models/mlp.bm", "cnn": "models/cnn.bm", "selfattention":
         "models/selfattention.bm"}
LOSSES = ("squared", "cross_entropy", "logistic", "huber")
ACTS = ("gated_relu", "relu")
PAIRS = (("l2", "l2"), ("l2", "l1"))

CHILD = r'''
import json, os, resource, sys, time
import numpy as np
import torch
sys.path.insert(0, {root!r})
import bmdsl
from bench.bench_grid import bound_for, units
torch.set_num_threads(1)
cell = json.loads({cell!r})
bound = bound_for(**cell["bound"])
out = {{"P": bound.P, "p": bound.p, "q": bound.q}}
start = time.perf_counter()
if cell["who"] == "cvxpy":
    sol = bound.to_cvxpy().solve()
    out.update(seconds=time.perf_counter() - start, ok=bool(sol.ok), value=sol.value,
               status=str(sol.status))
else:
    from bmdsl.trainer import Trainer
    trainer = Trainer(bound, device="cpu", progress=False, m=units(bound, cell["bound"]["R"]))
    r = trainer.fit(cert_tol=1e-4, time_limit=cell["limit"])
    ws = r.warm_start or {{}}
    out.update(seconds=time.perf_counter() - start, objective=r.objective,
               gap_bound=r.certificate.gap_bound, certified=bool(r.cert_tol_reached),
               steps=r.steps, stopped=r.stopped, method=r.method,
               warm_start=ws.get("method"), warm_iterations=ws.get("iterations"),
               warm_seconds=ws.get("seconds"), load=os.getloadavg())
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
'''


def data_for(arch: str, loss: str, n: int | None):
    """The built-in data of the architecture (default sizes unless n), targets per loss."""
    import numpy as np
    from bmdsl.bind.datasets import images, sequences, spiral
    if arch == "mlp":
        d = dict(spiral(n or 150, 3, seed=0))
    elif arch == "cnn":
        d = dict(images(n=n or 16, seed=0))
    else:
        d = dict(sequences(n=n or 8, seed=0))
    Y = d["Y"]
    if loss == "cross_entropy":
        d["Y"] = np.eye(Y.shape[-1])[np.argmax(Y, axis=-1)]
    if loss == "logistic":    # a scalar +-1 per sample (per token for attention)
        d["Y"] = np.where(Y[..., :1] > np.median(Y[..., :1]), 1.0, -1.0)
    return d


def model_text(arch: str, loss: str, act: str, C: str, R: str) -> str:
    import re
    text = (ROOT / ARCHS[arch]).read_text()
    text = re.sub(r"^loss\s+\w+.*$", f"loss {loss}", text, flags=re.M)
    text = re.sub(r"regularize beta = ([^,]+), C = \w+, R = \w+",
                  rf"regularize beta = \1, C = {C}, R = {R}", text)
    return re.sub(r"activation\s+gated_relu", f"activation {act}", text)


def bound_for(arch, loss, act, C, R, n=None):
    import bmdsl
    d = data_for(arch, loss, n)
    return bmdsl.parse(model_text(arch, loss, act, C, R)).derive().bind(d)


def units(bound, R: str) -> int:
    """The model's m, raised to what one factored convex solution needs: a unit per
    non-zero column for R = l1 (q), per singular value for (l2, l2) (min(p, q))."""
    need = bound.q if R == "l1" else min(bound.p, bound.q)
    return max(bound.m, need)


def run_child(cell: dict, limit: float, root: Path = ROOT) -> dict:
    code = CHILD.format(root=str(root), cell=json.dumps(cell))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=limit, cwd=root)
    except subprocess.TimeoutExpired:
        return {"skipped": f"did not finish within the {limit:g} s limit of this run "
                           "(killed)", "seconds": time.perf_counter() - start}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"skipped": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}


def skip_reason(arch, loss, act, q: int):
    if act == "relu" and q > 1:
        return ("ReLU with q > 1: the convex program is NP-hard to state exactly (a "
                "bracket only); out of scope of this benchmark")
    return None


def _cell_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("arch", "loss", "act", "C", "R", "n"))


def _cvxpy_rows(files: str | None) -> dict:
    """CVXPY results of earlier runs by cell (a later file wins), marked as reused."""
    rows = {}
    for name in (files or "").split(","):
        if name:
            for row in json.loads(Path(name).read_text())["rows"]:
                if "cvxpy" in row and "skipped" not in row["cvxpy"]:
                    rows[_cell_key(row)] = dict(row["cvxpy"], reused_from=name)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=0, help="samples (0: the built-in sizes)")
    ap.add_argument("--cells", default=",".join(ARCHS))
    ap.add_argument("--losses", default=",".join(LOSSES))
    ap.add_argument("--acts", default=",".join(ACTS))
    ap.add_argument("--trainer-limit", type=float, default=60.0)
    ap.add_argument("--cvxpy-limit", type=float, default=120.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results/grid.json"))
    ap.add_argument("--other", help="another checkout (e.g. a copy of main) whose trainer runs "
                    "each cell too, right after this one's: side by side in one run")
    ap.add_argument("--no-trainer", action="store_true", help="CVXPY only (its times, to "
                    "reuse with --cvxpy-from)")
    ap.add_argument("--cvxpy-from", help="comma-separated grid JSONs whose CVXPY rows are "
                    "reused for the same cells instead of solving again")
    args = ap.parse_args()
    reuse = _cvxpy_rows(args.cvxpy_from)
    n = args.n or None
    rows = []
    for arch in args.cells.split(","):
        for loss in args.losses.split(","):
            for act in args.acts.split(","):
                for C, R in PAIRS:
                    spec = dict(arch=arch, loss=loss, act=act, C=C, R=R, n=n)
                    bound = bound_for(**spec)
                    row = dict(spec, P=bound.P, p=bound.p, q=bound.q,
                               samples=int(bound.Y.shape[0]), load_before=list(os.getloadavg()))
                    reason = skip_reason(arch, loss, act, bound.q)
                    if reason:
                        row["skipped"] = reason
                    else:
                        row["trainer"] = {"skipped": "--no-trainer"} if args.no_trainer \
                            else run_child({"who": "trainer", "bound": spec,
                                            "limit": args.trainer_limit},
                                           args.trainer_limit + 60)
                        if args.other:
                            row["trainer_other"] = run_child(
                                {"who": "trainer", "bound": spec, "limit": args.trainer_limit},
                                args.trainer_limit + 60, Path(args.other).resolve())
                            row["other"] = str(Path(args.other).resolve())
                        row["cvxpy"] = reuse.get(_cell_key(spec)) or run_child(
                            {"who": "cvxpy", "bound": spec, "limit": args.cvxpy_limit},
                            args.cvxpy_limit)
                        tr, cv = row["trainer"], row["cvxpy"]
                        if "objective" in tr and cv.get("ok"):
                            row["rel_to_pstar"] = (tr["objective"] - cv["value"]) / \
                                abs(cv["value"])
                            row["speedup"] = cv["seconds"] / tr["seconds"]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
