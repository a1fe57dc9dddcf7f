"""An independent correctness grid on fresh data: CVXPY's p* against the BM trainer.

    python bench/check_grid.py [--out bench/results/check_grid_s11.json] [--models mlp,...]
                               [--seeds 101,102,103,104,105] [--limit 10]

Cells: the shipped models (models/*.bm but mlp_builtin, the same network as mlp.bm from
`architecture mlp`) x every registered activation x every registered loss x every
tractable norm pair (C, R), each asked of its registry (ACTIVATIONS, LOSSES, PAIR_TABLE's
`tractable`), on random data of non-round sizes (n = 37, d = 5, c = 3, s = 4, 5 x 5
images; CNN n = 23, self-attention n = 13, d = 3), a fresh seed per cell (101..105 in turn),
7 sampled patterns. Targets: the first of (Gaussian, one-hot rows of its argmax, its
signs) that the loss's own `target_check` accepts. Per cell, in float64:

* CVXPY: `bound.to_cvxpy().solve()` (Clarabel): p*; where bmdsl builds only a bracket
  (ReLU with q > 1 and R != l1, NP-hard) the cell is "refused" with bmdsl's note, and a
  `BmdslError` (e.g. the solver failed, said so) is a "clear error": neither is a failure;
* BM: `bound.to_torch(m=p + q).fit(cert_tol=1e-6, time_limit=--limit)` (Theorem 3.3's
  m >= p + q; the default method and warm start);
* the BM objective recomputed outside the trainer: the network's own forward pass
  (`trainer.network(prune=False)`), the loss's `value` and the norms of the factors;
* checks: objective >= p* - tol, the certificate's bound >= the true relative gap
  (objective - p*)/p* - tol, tol = 1e-6 (Clarabel's accuracy; Sahiner et al. 2024,
  eq. (20) and its Fenchel form (112)-(113) bound (p - p*)/p*), the recomputed objective
  equal to the reported one, no certificate warnings; a run that did not reach cert_tol
  must say so in its `status`. Any other exception is a failure, with its last line.
  Where the BM objective is below CVXPY's "optimal" value, CVXPY's point is certified too
  (`certify_lifted`) to show which of the two is off.

Writes the JSON (bench/machine.py: the machine and its load) with one row per cell.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import write_results  # noqa: E402

SIZES = dict(n=37, d=5, c=3, s=4, ch=1, height=5, width=5)
SMALLER = {"selfattention": dict(n=13, d=3),   # p = d^2: keeps CVXPY's PSD blocks small
           "cnn": dict(n=23)}                 # its ReLU cone programs: 10-25 s at n = 37
SEEDS = (101, 102, 103, 104, 105)
PATTERNS = 7
TOL = 1e-6          # relative; 100x Clarabel's default stopping tolerances (1e-8)
CERT_TOL = 1e-6


def random_data(model, seed: int, sizes: dict, loss) -> dict:
    """Gaussian inputs of the declared shapes; the target the loss's own check accepts
    (none: the one-hot candidate, for bmdsl to refuse with its own message)."""
    rng = np.random.default_rng(seed)
    out = {t.name: rng.standard_normal([sizes[d] for d in t.dims]) for t in model.inputs}
    z = rng.standard_normal([sizes[d] for d in model.target.dims])
    hot = (z == z.max(axis=-1, keepdims=True)).astype(float)
    for y in (z, hot, np.sign(z)):
        if loss.target_check(y) is None:
            out[model.target.name] = y
            return out
    out[model.target.name] = hot
    return out


def with_pair(model, C: str, R: str):
    from dataclasses import replace
    return replace(model, regularizer=replace(model.regularizer, C=C, R=R))


def factor_objective(trainer, bound, U, V) -> float:
    """F(network(inputs)) + (beta/2) sum ||u||_C^2 + ||v||_R^2, outside the trainer."""
    import torch
    from bmdsl.atoms.norms import get_norm
    net = trainer.network(prune=False)
    inputs = [torch.as_tensor(bound.arrays[t.name]) for t in bound.derivation.model.inputs]
    with torch.no_grad():
        Yhat = net(*inputs).double().numpy()
    u = U.reshape(U.shape[0], U.shape[1], -1)
    v = V.reshape(V.shape[0], V.shape[1], -1)
    reg = (get_norm(bound.C).numpy(u, axis=-1) ** 2).sum() + \
        (get_norm(bound.R).numpy(v, axis=-1) ** 2).sum()
    return float(bound.loss.value(Yhat, bound.Y) + 0.5 * bound.beta * reg)


def verdict(row: dict) -> str:
    """pass | uncertified (its status says so) | refused / clear error / no p* (bmdsl's own
    message) | fail: <what> (a traceback, a wrong certificate, a silent wrong value)."""
    for key in ("refused", "clear_error", "no_p_star"):
        if key in row:
            return key.replace("_", " ")
    if row.get("error"):
        return "fail: " + row["error"]
    bad, obj, p = [], row["objective"], row["p_star"]
    if abs(row["recomputed"] - obj) > TOL * max(1.0, abs(obj)):
        bad.append("reported objective != the network's")
    if row["cert_warnings"]:
        bad.append("certificate warnings")
    if obj < p - TOL * max(1.0, abs(p)):     # CVXPY's own certificate says which is off
        bad.append("BM objective below p* (CVXPY's point: gap bound "
                   f"{row.get('cvxpy_gap_bound', float('nan')):.1e})")
    if row["gap_bound"] < row["rel_diff"] - TOL:
        bad.append("gap bound below the true gap")
    if not row["certified"] and row["status"] == "finished":
        bad.append("not certified, status silent")
    return "fail: " + "; ".join(bad) if bad else \
        ("pass" if row["certified"] else "uncertified")


def run_cell(model, act, loss_name, C, R, seed, sizes, limit, beta=None,
             target=None) -> dict:
    """One cell; `beta` replaces the model's, `target(Y, loss)` the generated target."""
    from bmdsl.atoms.activations import get_activation
    from bmdsl.atoms.losses import get_loss
    from bmdsl.core.errors import BmdslError
    row = dict(model=model.name, act=act, loss=loss_name, C=C, R=R, seed=seed)
    try:
        act_patterns = PATTERNS if get_activation(act).uses_patterns else None
        m = with_pair(model, C, R).with_activation(act, act_patterns, seed).with_loss(loss_name)
        m = m if beta is None else m.with_beta(beta)
        data = random_data(m, seed, sizes, get_loss(loss_name))
        if target is not None:
            data[m.target.name] = target(data[m.target.name], get_loss(loss_name))
        bound = m.derive().bind(data)
        row.update(P=bound.P, p=bound.p, q=bound.q)
        start = time.perf_counter()
        problem = bound.to_cvxpy()
        if problem.exactness != "exact":     # bmdsl's documented refusal: only a bracket
            row.update(refused=problem.note)
            return row
        sol = problem.solve()
        row.update(cvxpy_seconds=time.perf_counter() - start, cvxpy_status=str(sol.status),
                   p_star=sol.value)
        if not sol.optimal:                  # said by bmdsl (status, reason): no p* here
            row["no_p_star"] = f"CVXPY {sol.status}: {sol.reason}"
            return row
        start = time.perf_counter()
        trainer = bound.to_torch(device="cpu", m=bound.p + bound.q, progress=False)
        r = trainer.fit(cert_tol=CERT_TOL, time_limit=limit)
        cert = r.certificate
        row.update(bm_seconds=time.perf_counter() - start, objective=r.objective,
                   dual_value=cert.dual_value, gap_bound=cert.gap_bound,
                   certified=bool(r.cert_tol_reached), status=r.status, stopped=r.stopped,
                   method=r.method, warm_start=(r.warm_start or {}).get("method"),
                   steps=r.steps, cert_warnings=list(cert.warnings),
                   recomputed=factor_objective(trainer, bound, r.U, r.V),
                   rel_diff=(r.objective - sol.value) / abs(sol.value) if sol.value
                   else r.objective - sol.value)     # p* = 0: the absolute difference
        if r.objective < sol.value - TOL * max(1.0, abs(sol.value)):
            from bmdsl.certificates import certify_lifted
            row["cvxpy_gap_bound"] = certify_lifted(bound, sol.Z).gap_bound
    except BmdslError as exc:             # a clear, documented refusal of the input
        row["clear_error"] = f"{type(exc).__name__}: {exc.message}"[:300]
    except Exception as exc:   # a traceback is a failure of the cell, recorded
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        row["traceback"] = traceback.format_exc()[-2000:]
    return row


def cells(models, seeds):
    from bmdsl.atoms.activations import ACTIVATIONS
    from bmdsl.atoms.losses import LOSSES
    from bmdsl.atoms.pairs import PAIR_TABLE, NormPair
    i = 0
    for model in models:
        for act in ACTIVATIONS:
            for loss in LOSSES:
                for C, R in (pair for pair in PAIR_TABLE if NormPair(*pair).tractable):
                    yield model, act, loss, C, R, seeds[i % len(seeds)]
                    i += 1


def table(rows, key=("model", "act")) -> str:
    """The markdown summary: per group, the verdicts, the worst |objective - p*|/p* among
    the certified cells and among all, and the slowest cell (CVXPY + BM seconds)."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in key), []).append(row)
    kinds = ("pass", "uncertified", "refused", "clear error", "no p star", "fail")
    out = ["| " + " | ".join(key) + " | cells | " + " | ".join(kinds) +
           " | worst rel. diff (certified) | worst rel. diff (all) | slowest cell |",
           "|" + "---|" * (len(key) + len(kinds) + 4)]
    for name, group in groups.items():
        count = [sum(r["verdict"].split(":")[0] == k for r in group) for k in kinds]

        def worst(rs):
            vals = [abs(r["rel_diff"]) for r in rs if "rel_diff" in r]
            return f"{max(vals):.1e}" if vals else "-"
        slow = max(r.get("cvxpy_seconds", 0) + r.get("bm_seconds", 0) for r in group)
        out.append(f"| {' | '.join(name)} | {len(group)} | " + " | ".join(map(str, count)) +
                   f" | {worst([r for r in group if r.get('certified')])} | {worst(group)} "
                   f"| {slow:.1f} s |")
    return "\n".join(out)


def main(argv=None) -> int:
    import torch
    import bmdsl
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/check_grid_s11.json"))
    ap.add_argument("--models", default=None, help="comma-separated stems of models/*.bm")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--limit", type=float, default=10.0, help="the trainer's time_limit")
    ap.add_argument("--table", help="print the summary of a results JSON and exit")
    args = ap.parse_args(argv)
    if args.table:
        import json
        print(table(json.loads(Path(args.table).read_text())["rows"]))
        return 0
    paths = sorted((ROOT / "models").glob("*.bm"))
    wanted = args.models.split(",") if args.models else [p.stem for p in paths
                                                          if p.stem != "mlp_builtin"]
    paths = [p for p in paths if p.stem in wanted]
    models = [bmdsl.load(str(p)) for p in paths]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, start = [], time.perf_counter()
    for model, act, loss, C, R, seed in cells(models, seeds):
        sizes = {**SIZES, **SMALLER.get(model.name, {})}
        load = os.getloadavg()
        row = run_cell(model, act, loss, C, R, seed, sizes, args.limit)
        row.update(load=load, verdict=verdict(row))
        rows.append(row)
        print(f"{row['model']:13s} {act:10s} {loss:13s} ({C}, {R}) seed {seed}: "
              f"{row['verdict']}  rel {row.get('rel_diff', float('nan')):+.1e} "
              f"gap {row.get('gap_bound', float('nan')):.1e} "
              f"cvx {row.get('cvxpy_seconds', 0):.1f}s bm {row.get('bm_seconds', 0):.1f}s",
              flush=True)
    write_results(args.out, rows, seconds=time.perf_counter() - start, sizes=SIZES,
                  smaller=SMALLER, patterns=PATTERNS, tol=TOL, cert_tol=CERT_TOL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
