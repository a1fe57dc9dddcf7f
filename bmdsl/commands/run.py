"""`bmdsl run FILE`: the main job. Solve the convex program (CVXPY), train the BM
factorization (torch), certify it, print one table and write a convergence plot.

Without `--data` the model's built-in default data is used (`bmdsl.bind.defaults`). The CVXPY
solve is skipped, with the reason printed, when the lifted program is too large for an
interior-point method at this size (`--max-convex-vars`) or when its memory estimate exceeds
the memory budget (bmdsl.core.memory: the estimate is printed and the trainer goes on alone); a
trainer that would not fit is refused, with its estimate, before anything is solved.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..core import memory
from .registry import add_model_options, command, load_model
from ..core.cvxfootprint import cvxpy_for
from ..core.footprint import require_model
from ..core.errors import SolverError
from . import options
from ..core import outputs
from .data_args import add_data_options
from . import distributed_args as dist_args
from ..workflow.metrics import rows as metric_rows
from .heldout import add_test_options, check_test_data
from .report import table


def _data(args, model):
    """(in-memory data or None: read from --data by read_and_bind, its description)."""
    if args.data:
        return None, f"file {', '.join(args.data)}"
    from ..bind.defaults import default_data
    data, rule = default_data(model, seed=args.data_seed)
    return data, f"built-in {rule}"


def _convex(bound, args) -> tuple[object | None, str, float, bool]:
    """(solution or None, status text, seconds, failed). A solve that ran but produced no
    solution (solver error, any status but optimal) is reported and training goes on;
    run then exits 3 (docs/cli.md)."""
    size = bound.P * bound.p * bound.q
    if args.max_convex_vars is not None and size > args.max_convex_vars:
        return None, f"skipped: {size} lifted variables > --max-convex-vars {args.max_convex_vars}", 0.0, False
    estimate = cvxpy_for(bound)      # nothing of the program is built when it cannot fit
    if not memory.fits(estimate):
        return None, (f"skipped: {estimate.what} would need about {memory.human(estimate.nbytes)} "
                      f"(estimate), above the memory budget of {memory.human(memory.budget())} "
                      f"({memory.resolve()[1]}); the trainer goes on alone"), 0.0, False
    t = time.perf_counter()
    try:
        sol = bound.to_cvxpy().solve(solver=args.solver, **args.solver_opt)
    except SolverError as exc:
        return None, f"failed: {exc.message}", time.perf_counter() - t, True
    if not sol.optimal:
        return sol, sol.status, time.perf_counter() - t, True
    return sol, sol.status, time.perf_counter() - t, False


@command("run", "the main job: solve (CVXPY), train (BM), certify and report; built-in data by default")
def cmd_run(args) -> int:
    from ..cvx import check_solver
    from ..cvx.solver import check_solver_options
    check_solver_options(check_solver(args.solver), args.solver_opt)  # before any work
    code = dist_args.launch(args, args.device)     # --nproc N: N processes run this command
    if code is not None:
        return code
    model = load_model(args)
    require_model(model)     # what no data can make fit is refused before data is made
    out = Path(args.output)
    record_path = out / f"{model.name}_run.json"
    figure = None if args.no_plot else out / f"{model.name}_run.{args.plot_format}"
    outputs.check_outputs([record_path] + ([figure] if figure else []),   # before any work
                          outputs.command_inputs(args), args.force, make_dirs=True)
    default, source = _data(args, model)
    # --nproc: each rank reads and binds only its rows (distributed_args.py)
    bound, data, test, test_note = dist_args.read_and_bind(args, model, default=default)
    if test is not None:
        check_test_data(model, bound, test)   # before training, not after
    # the trainer must fit (it is the one stage run cannot skip): refused before CVXPY runs
    from ..trainer.trainer import estimate     # (torch: imported when a model is run)
    memory.require(estimate(bound, bound.m, args.dtype, args.method))
    reg = model.regularizer
    print(f"model {model.name}: {model.activation.name}, loss {model.loss}, beta = {reg.beta:g}, "
          f"C = {reg.C}, R = {reg.R}")
    print(f"data: {source}; sizes {', '.join(f'{k} = {v}' for k, v in bound.sizes.items() if not k.endswith(('_rows', '_cols')))}")
    if test_note:
        print(f"test: {test_note}")
    print(f"lifted Z_k: {bound.p} x {bound.q}, P = {bound.P} pattern(s), m = {bound.m} unit(s) "
          f"per pattern")

    print("[1/3] convex program (CVXPY) ...", flush=True)
    # with --nproc no process holds all samples: the convex program is not solved
    sol, status, t_cvx, convex_failed = (None, SHARDED_SKIP, 0.0, False) \
        if dist_args.sharded() else _convex(bound, args)
    p_star = lower = upper = None
    if sol is not None and sol.optimal:     # an inaccurate value is not shown as p*
        if sol.exactness == "exact":
            p_star = sol.value
        else:
            lower, upper = sol.lower, sol.upper
    print(f"      {status} in {t_cvx:.2f} s")
    if convex_failed:
        why = f"not a solution: {sol.reason}; " if sol is not None else ""
        print(f"      {why}p* unavailable, training goes on (exit status 3)")

    print("[2/3] Burer-Monteiro training (torch) ...", flush=True)
    outputs.make_directory(out)        # Ctrl-C's checkpoint goes there (a free name)
    trainer = dist_args.trainer(bound, device=args.device, dtype=args.dtype, method=args.method,
                             progress=_progress(args), certificate_every=args.certificate_every,
                             warm_start=False if args.no_warm_start else "auto",
                             interrupt_checkpoint=out / f"{model.name}_run.interrupted.pt")
    result = trainer.fit(max_steps=args.steps)
    # train (and test) metrics on every rank (--nproc: sums all-reduced)
    reports = dist_args.reports(trainer, model, bound, data, test)
    if not dist_args.writer():
        return 0                                 # rank 0 reports and writes
    cert = result.certificate
    print(f"      {_warm_note(result)}{result.method} on {result.device} ({result.dtype}): "
          f"{result.steps} steps in {result.seconds:.2f} s, stopped by {result.stopped}")

    print("[3/3] certificate")
    true_gap = None if p_star is None else (result.objective - p_star) / abs(p_star)
    rows = []
    if p_star is not None:
        rows.append(("p* (convex optimum)", p_star, f"CVXPY, {t_cvx:.2f} s"))
    elif convex_failed:
        rows.append(("p* (convex optimum)", None, "unavailable: CVXPY " +
                     (sol.status if sol is not None else "failed")))
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
    rows += metric_rows(reports)
    print(table(rows))
    if cert is not None and true_gap is not None and true_gap > cert.gap_bound * (1 + 1e-9) + 1e-12:
        print("  WARNING: the true gap exceeds the duality-gap bound; please report this run")
    if true_gap is not None and true_gap < -TRUE_GAP_ROUNDING:
        print(f"  WARNING: p_BM is below the CVXPY optimum p* by {-true_gap:.1e} (relative), "
              "beyond both solvers' accuracy: one of the two values is wrong (check the "
              "CVXPY status and the scale of the data and of the loss's parameters)")
    for warning in getattr(cert, "warnings", ()):
        print(f"  WARNING: {warning}")
    if cert is not None:
        print(f"  certified: {cert.scope}")

    record = {"model": model.name, "data": source, "sizes": bound.sizes, "P": bound.P,
              "convex": {"status": status, "p_star": p_star, "lower": lower, "upper": upper,
                         "seconds": t_cvx, "optimal": sol is not None and sol.optimal,
                         "details": None if sol is None else sol.to_dict()},
              "bm": result.to_dict(), "true_gap": true_gap, "metrics": reports,
              "test": test_note}
    outputs.write_text_atomic(record_path, json.dumps(record, indent=2, default=str))
    if figure is not None:
        outputs.write_atomic(figure, lambda tmp: _plot(tmp, model.name, result, p_star))
        print(f"plot: {figure}")
    print(f"record: {record_path}")
    return 3 if convex_failed else 0


SHARDED_SKIP = ("skipped: with --nproc each process holds only its samples, and the convex "
                "program needs all of them in one (run without --nproc to compare with CVXPY)")
# p_BM below p* is possible only by the solvers' tolerances (Clarabel's relative gap
# tolerance is 1e-8; the trainer ends within ~1e-9): below -1e-6 a value is wrong
TRUE_GAP_ROUNDING = 1e-6


def _progress(args):
    """The trainer's progress setting: off for --no-progress or --quiet, forced on for
    --progress, else None (a bar when stderr is a terminal)."""
    if args.no_progress or getattr(args, "quiet", False):
        return False
    return args.progress


def _warm_note(result) -> str:
    ws = result.warm_start
    failed = f", failed: {ws['failed']}" if ws and ws.get("failed") else ""
    return "" if ws is None else (f"{ws['method']} warm start ({ws['iterations']} iterations, "
                                  f"{ws['seconds']:.2f} s{failed}), then ")


def _plot(path, name, result, p_star) -> None:
    """Objective and bounds against iterations: the warm start's iterations first
    (its chunks), then the BM steps counted on from there."""
    from ..workflow.plot import convergence_plot
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
        history["duality-gap bound (Fenchel)"] = ([c[0] for c in points], [c[1] for c in points])
    what = f"{ws['method']} iterations, then BM steps" if ws else "BM steps"
    convergence_plot(path, history, f"{name}: BM training ({what})")


def _configure(p) -> None:
    add_model_options(p)
    add_test_options(p)
    add_data_options(p, required=False, default_note="; default: the model's built-in data")
    p.add_argument("--data-seed", type=options.seed, default=0, help="seed of the built-in data")
    p.add_argument("--output", default="runs", help="directory for the plot and record (default: runs)")
    outputs.add_force_option(p)
    options.add_solver_options(p)
    p.add_argument("--max-convex-vars", type=options.count, default=200_000,
                   help="skip the CVXPY solve above this many lifted variables P*p*q")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    options.add_method_option(p, "BM method: auto or a method of docs/trainer.md (default: "
                              "auto)")
    p.add_argument("--steps", type=options.count, default=None,
                   help="BM steps, >= 0 (default: by method)")
    p.add_argument("--no-warm-start", action="store_true",
                   help="BM from random factors only (no convex warm start)")
    p.add_argument("--certificate-every", type=options.count, default=50,
                   help="certify every N steps for the plot (default 50; 0: only at the end)")
    p.add_argument("--progress", action="store_true", default=None,
                   help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: shown when stderr is a terminal)")
    p.add_argument("--no-plot", action="store_true", help="do not write the figure")
    p.add_argument("--plot-format", choices=["png", "pdf", "svg"], default="png",
                   help="the figure's format (default png)")
    dist_args.add_distributed_options(p)


cmd_run.configure = _configure
