"""`bmdsl solve FILE --data DATA [--solver NAME] [--output OUT.npz]`: the convex program
with CVXPY (docs/cvxpy.md).

Prints the status, p* (or the bracket lower <= p* <= upper with what was relaxed), the
solve time and the number of patterns in use, and saves the solution with its patterns
(`ConvexSolution.save`), so a later run can reuse them (`--patterns-from OUT.npz`) and the
emitted module can read its masks. Only an `optimal` status is a solution: any other
(`optimal_inaccurate`, `user_limit`, `infeasible`, ..., or the solver raising) prints the
status as it is with a hint, saves nothing and exits 3 (a SolverError);
`--accept-inaccurate` takes an `optimal_inaccurate` result, saved with that status.
Data and option mistakes exit 1 (2 for argparse); never a traceback.
"""
from __future__ import annotations

from .registry import add_model_options, command, load_model
from ..core.errors import SolverError
from . import options
from ..core import outputs
from .data_args import add_data_options, read_data, read_patterns  # noqa: F401 (re-exported)
from .options import add_solver_options

# Our programs are feasible (Z = 0) and bounded below (F >= 0) by construction, so any
# other status is numerical trouble, not a property of the model.
STATUS_HINTS = {
    "infeasible": "the program is feasible by construction (Z = 0): this is numerical "
                  "trouble; try --solver SCS, rescale the data or increase beta",
    "unbounded": "the program is bounded below by construction (F >= 0): check the targets "
                 "suit the loss, or try --solver SCS",
    "user_limit": "the solver stopped at an iteration or time limit: raise it, e.g. "
                  "--solver-opt max_iter=500 (Clarabel) or max_iters=100000 (SCS)",
    "optimal_inaccurate": "the solver stopped before full accuracy (often an iteration limit, "
                          "e.g. SCS max_iters): raise the limit, try --solver CLARABEL, or "
                          "pass --accept-inaccurate to keep this result with its status",
}
DEFAULT_HINT = "try another solver (--solver SCS), fewer patterns (--patterns) or a larger beta"


@command("solve", "solve the convex program with CVXPY for a data file")
def cmd_solve(args) -> int:
    from ..cvx import build_problem, check_solver
    from ..cvx.solver import check_solver_options
    # before any work (argparse checked the name, options.solver_name): the settings
    check_solver_options(check_solver(args.solver), args.solver_opt)
    model = load_model(args)
    out = outputs.npz_path(args.output or f"{model.name}_solution.npz")
    outputs.check_outputs([out], outputs.command_inputs(args), args.force)   # before work
    data = read_data(args.data, model, args.target)
    patterns = read_patterns(args.patterns_from) if args.patterns_from else None
    bound = model.derive().bind(data, patterns=patterns)
    what = bound.activation.name
    if bound.patterns is not None:
        ps = bound.patterns
        origin = f"{ps.requested} sampled, seed {ps.seed}" if ps.source == "sampled" else ps.source
        what += f", {bound.P} patterns ({origin}" + (
            f", from {args.patterns_from})" if args.patterns_from else ")")
    print(f"model {model.name}: {what}; p = {bound.p}, q = {bound.q}")
    problem = build_problem(bound, relu_bound=args.relu_bound, enum_cap=args.enum_cap)
    solution = problem.solve(solver=args.solver, verbose=args.verbose, **args.solver_opt)
    print(f"status:         {solution.status}"
          + ("" if len(solution.statuses) == 1 else
             " (" + ", ".join(f"{k} {v}" for k, v in solution.statuses.items()) + ")"))
    accepted = solution.optimal or (args.accept_inaccurate and _finite_inaccurate(solution))
    if not accepted:
        bad = next((s for s in solution.statuses.values() if s != "optimal"), solution.status)
        raise SolverError(
            f"{solution.describe()}; {solution.reason}; nothing was saved",
            hint=STATUS_HINTS.get(bad, DEFAULT_HINT))
    if solution.exactness == "bracket":
        print(f"bracket:        {solution.lower:.10g} <= p* <= {solution.upper:.10g}")
        print(f"note:           {solution.note}")
    else:
        print(f"optimal value:  p* = {solution.value:.10g}")
    if not solution.optimal:
        print(f"warning: {solution.reason} (accepted by --accept-inaccurate)")
    print(f"solve time:     {solution.solve_time:.3f} s ({solution.solver})")
    print(f"non-zero units: {solution.nonzero_units} of {bound.P} pattern(s)")
    outputs.write_atomic(out, solution.save)
    print(f"saved:          {out}" + ("" if solution.optimal else
                                      f" (status {solution.status})"))
    return 0


def _finite_inaccurate(solution) -> bool:
    """--accept-inaccurate: every program ended optimal or optimal_inaccurate, with values."""
    import math
    values = [solution.value] if solution.exactness == "exact" else [solution.lower, solution.upper]
    return (all(s in ("optimal", "optimal_inaccurate") for s in solution.statuses.values())
            and all(v is not None and math.isfinite(v) for v in values))


def _configure(p) -> None:
    add_model_options(p)
    add_data_options(p)
    add_solver_options(p)
    p.add_argument("--output", "-o", help="where to save the solution (.npz; default "
                                          "<model>_solution.npz)")
    outputs.add_force_option(p)
    p.add_argument("--patterns-from", metavar="NPZ",
                   help="reuse the patterns saved with an earlier solution")
    p.add_argument("--relu-bound", choices=["auto", "sdp", "nocone"], default="auto",
                   help="lower bound for NP-hard ReLU programs (q > 1, R != l1)")
    p.add_argument("--enum-cap", type=options.enum_cap, default=12,
                   help="enumerate NP-hard norm pairs exactly up to this l_inf dimension "
                        f"(0 to {options.MAX_ENUM_CAP}; default 12)")
    p.add_argument("--accept-inaccurate", action="store_true",
                   help="take an optimal_inaccurate result as the answer (saved with that "
                        "status, exit 0) instead of exit 3")
    p.add_argument("--verbose", action="store_true", help="show the solver's log")


cmd_solve.configure = _configure
