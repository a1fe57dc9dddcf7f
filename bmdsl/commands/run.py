"""`bmdsl run FILE`: the main job. Solve the convex program (CVXPY), train the BM
factorization (torch), certify it, print one table and write a convergence plot.

Without `--data` the model's built-in default data is used (`bmdsl.defaults`). The CVXPY
solve is skipped, with the reason printed, when the lifted program is too large for an
interior-point method at this size (`--max-convex-vars`).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..cli import add_model_options, command, load_model
from ..errors import BmdslError, SolverError


def _data(args, model):
    if args.data:
        from ..datasets import load_data
        return load_data(args.data), f"file {args.data}"
    from ..defaults import default_data
    data, rule = default_data(model, seed=args.data_seed)
    return data, f"built-in {rule}"


def _convex(bound, args) -> tuple[object | None, str, float]:
    size = bound.P * bound.p * bound.q
    if args.max_convex_vars is not None and size > args.max_convex_vars:
        return None, f"skipped: {size} lifted variables > --max-convex-vars {args.max_convex_vars}", 0.0
    t = time.perf_counter()
    try:
        sol = bound.to_cvxpy().solve(solver=args.solver)
    except SolverError as exc:
        return None, f"failed: {exc.message}", time.perf_counter() - t
    return sol, sol.status, time.perf_counter() - t


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf (vacuous)"
    return f"{x:.6e}" if isinstance(x, float) else str(x)


def table(rows) -> str:
    width = max(len(k) for k, _, _ in rows)
    return "\n".join(f"  {k:<{width}}  {_fmt(v):>16}  {note}" for k, v, note in rows)


@command("run", "the main job: solve (CVXPY), train (BM), certify and report; built-in data by default")
def cmd_run(args) -> int:
    model = load_model(args)
    data, source = _data(args, model)
    bound = model.derive().bind(data)
    reg = model.regularizer
    print(f"model {model.name}: {model.activation.name}, loss {model.loss}, beta = {reg.beta:g}, "
          f"C = {reg.C}, R = {reg.R}")
    print(f"data: {source}; sizes {', '.join(f'{k} = {v}' for k, v in bound.sizes.items() if not k.endswith(('_rows', '_cols')))}")
    print(f"lifted Z_k: {bound.p} x {bound.q}, P = {bound.P} pattern(s), m = {bound.m} unit(s) "
          f"per pattern")

    print("[1/3] convex program (CVXPY) ...", flush=True)
    sol, status, t_cvx = _convex(bound, args)
    p_star = lower = upper = None
    if sol is not None:
        if sol.kind == "exact":
            p_star = sol.value
        else:
            lower, upper = sol.lower, sol.upper
    print(f"      {status} in {t_cvx:.2f} s")

    print("[2/3] Burer-Monteiro training (torch) ...", flush=True)
    trainer = bound.to_torch(device=args.device, dtype=args.dtype, method=args.optimizer,
                             progress=args.progress, certificate_every=args.certificate_every,
                             warm_start=False if args.no_warm_start else "auto")
    result = trainer.fit(max_steps=args.steps)
    cert = result.certificate
    print(f"      {_warm_note(result)}{result.method} on {result.device} ({result.dtype}): "
          f"{result.steps} steps in {result.seconds:.2f} s, stopped by {result.stopped}")

    print("[3/3] certificate")
    true_gap = None if p_star is None else (result.objective - p_star) / abs(p_star)
    rows = []
    if p_star is not None:
        rows.append(("p* (convex optimum)", p_star, f"CVXPY, {t_cvx:.2f} s"))
    elif lower is not None:
        rows.append(("p* lower bound", lower, "relaxation (" + (sol.note or "") [:60] + ")"))
        rows.append(("p* upper bound", upper, "restriction"))
    how = (f"{result.warm_start['method']} + " if result.warm_start else "") + result.method
    rows.append(("p_BM (BM objective)", result.objective, f"{how}, {result.seconds:.2f} s"))
    rows.append(("true relative gap", true_gap, "(p_BM - p*)/p*" if true_gap is not None else
                 "no exact p* at this size"))
    if cert is not None:
        rows.append(("duality-gap bound", cert.gap_bound, "valid at every point (Fenchel dual)"))
        rows.append(("Theorem 3.4 bound", cert.thm34_bound,
                     "applicable" if cert.thm34_applicable else
                     f"NOT applicable: stationarity residual {cert.stationarity:.1e} > "
                     f"{cert.stationarity_tol:g}"))
        rows.append(("dual lower bound on p*", cert.dual_value, "-F*(v)"))
    if result.violation is not None:
        rows.append(("max cone violation", result.violation, "ReLU cones (19)"))
    print(table(rows))
    if cert is not None and true_gap is not None and true_gap > cert.gap_bound * (1 + 1e-9) + 1e-12:
        print("  WARNING: the true gap exceeds the duality-gap bound; please report this run")
    if cert is not None:
        print(f"  certified: {cert.scope}")

    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BmdslError(f"cannot create output directory {out}: {exc.strerror}") from None
    record = {"model": model.name, "data": source, "sizes": bound.sizes, "P": bound.P,
              "convex": {"status": status, "p_star": p_star, "lower": lower, "upper": upper,
                         "seconds": t_cvx},
              "bm": result.to_dict(), "true_gap": true_gap}
    (out / f"{model.name}_run.json").write_text(json.dumps(record, indent=2, default=str))
    if not args.no_plot:
        _plot(out / f"{model.name}_run.png", model.name, result, p_star)
        print(f"plot: {out / (model.name + '_run.png')}")
    print(f"record: {out / (model.name + '_run.json')}")
    return 0


def _warm_note(result) -> str:
    ws = result.warm_start
    return "" if ws is None else (f"{ws['method']} warm start ({ws['iterations']} iterations, "
                                  f"{ws['seconds']:.2f} s), then ")


def _plot(path, name, result, p_star) -> None:
    """Objective and bounds against iterations: the warm start's iterations first
    (its chunks), then the BM steps counted on from there."""
    from ..plot import convergence_png
    ws = result.warm_start
    trace = ws["history"] if ws else []
    offset = ws["iterations"] if ws else 0
    bm = [h for h in result.history if h[0] > 0 or not ws]
    steps = [h[0] for h in trace] + [offset + h[0] for h in bm]
    values = [h[1] for h in trace] + [h[1] for h in bm]
    history = {"step": steps, "objective": values}
    if p_star is not None:
        history["true gap"] = [(v - p_star) / abs(p_star) for v in values]
    points = [(h[0], h[3]) for h in trace if h[3] is not None]
    points += [(offset + c[0], c[1]) for c in result.certificates if c[0] > 0 or not ws]
    if result.certificate is not None:  # the final certificate, at the returned factors
        points.append((offset + result.steps, result.certificate.gap_bound))
    if points:
        history["gap bound (fenchel)"] = ([c[0] for c in points], [c[1] for c in points])
    what = f"{ws['method']} iterations, then BM steps" if ws else "BM steps"
    convergence_png(path, {k: v for k, v in history.items()}, f"{name}: bm training ({what})")


def _configure(p) -> None:
    add_model_options(p)
    p.add_argument("--data", help="data file (.npz or .csv); default: the model's built-in data")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the built-in data")
    p.add_argument("--output", default="runs", help="directory for the plot and record (default: runs)")
    p.add_argument("--solver", default=None, help="CVXPY solver (default: Clarabel)")
    p.add_argument("--max-convex-vars", type=int, default=200_000,
                   help="skip the CVXPY solve above this many lifted variables P*p*q")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--optimizer", default="auto", help="BM method (default: auto)")
    p.add_argument("--steps", type=int, default=None, help="BM steps (default: by method)")
    p.add_argument("--no-warm-start", action="store_true",
                   help="BM from random factors only (no convex warm start)")
    p.add_argument("--certificate-every", type=int, default=50,
                   help="certify every N steps for the plot (default 50)")
    p.add_argument("--progress", action="store_true", default=None, help="show a progress line")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")


cmd_run.configure = _configure
