"""`bmdsl solve FILE --data DATA [--solver NAME] [--output OUT.npz]`: the convex program
with CVXPY (design.md sec. 5).

Prints the status, p* (or the bracket lower <= p* <= upper with what was relaxed), the
solve time and the number of patterns in use, and saves the solution with its patterns
(`ConvexSolution.save`), so a later run can reuse them (`--patterns-from OUT.npz`) and the
emitted module can read its masks. Failed solves print the solver status and a hint
(exit 1); data mistakes print the DataError (exit 1); never a traceback.
"""
from __future__ import annotations

import re
import sys

from ..cli import add_model_options, command, load_model
from ..errors import DataError, SolverError

# Our programs are feasible (Z = 0) and bounded below (F >= 0) by construction, so any
# other status is numerical trouble, not a property of the model.
STATUS_HINTS = {
    "infeasible": "the program is feasible by construction (Z = 0): this is numerical "
                  "trouble; try --solver SCS, rescale the data or increase beta",
    "unbounded": "the program is bounded below by construction (F >= 0): check the targets "
                 "suit the loss, or try --solver SCS",
    "user_limit": "the solver stopped at an iteration or time limit: raise it, e.g. "
                  "--solver-opt max_iter=500 (Clarabel) or max_iters=100000 (SCS)",
}
DEFAULT_HINT = "try another solver (--solver SCS), fewer patterns (--patterns) or a larger beta"
_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


def read_data(items) -> dict:
    """Arrays from `--data FILE` (.npz/.csv, arrays by name) or `--data NAME=FILE` (.npy,
    or one array of a .npz/.csv), repeatable."""
    from ..datasets import load_data
    data = {}
    for item in items:
        named = _NAMED.match(item)
        if not named and item.lower().endswith(".npy"):
            raise DataError(f"{item} holds one unnamed array: name it, e.g. --data X={item}")
        arrays = load_data(named.group(2), names=named.group(1)) if named else load_data(item)
        if named:
            arrays = {named.group(1): arrays[named.group(1)]}
        clash = sorted(set(arrays) & set(data))
        if clash:
            raise DataError(f"array(s) {', '.join(clash)} given twice (in {item})")
        data.update(arrays)
    return data


def solver_options(items) -> dict:
    """KEY=VALUE pairs; values become int, float or bool when they read as one."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise SolverError(f"--solver-opt expects KEY=VALUE, not {item!r}")
        value = {"true": True, "false": False}.get(text.lower(), text)
        for kind in (int, float):
            if isinstance(value, str):
                try:
                    value = kind(text)
                except ValueError:
                    pass
        out[key] = value
    return out


def read_patterns(path):
    """The PatternSet saved with a solution (or any .npz with masks, gates, source, seed)."""
    import numpy as np
    from ..patterns import PatternSet
    try:
        with np.load(path, allow_pickle=False) as f:
            d = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read patterns from {path}: {exc}") from None
    missing = [k for k in ("masks", "gates", "source", "seed") if k not in d]
    if missing:
        raise DataError(f"{path} holds no saved patterns (missing {', '.join(missing)})",
                        hint="use the .npz written by `bmdsl solve`")
    try:
        return PatternSet.from_npz_dict(d)
    except ValueError as exc:
        raise DataError(f"bad patterns in {path}: {exc}") from None


@command("solve", "solve the convex program with CVXPY for a data file")
def cmd_solve(args) -> int:
    from ..cvx import build_problem, check_solver
    from ..cvx.solution import OPTIMAL
    check_solver(args.solver)  # before any work: names the installed solvers
    model = load_model(args)
    data = read_data(args.data)
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
    solution = problem.solve(solver=args.solver, verbose=args.verbose,
                             **solver_options(args.solver_opt or []))
    print(f"status:         {solution.status}"
          + ("" if len(solution.statuses) == 1 else
             " (" + ", ".join(f"{k} {v}" for k, v in solution.statuses.items()) + ")"))
    if not solution.ok:
        bad = next(s for s in solution.statuses.values() if s not in OPTIMAL)
        print(f"the solver {solution.solver} did not reach an optimum (status {bad}); hint: "
              f"{STATUS_HINTS.get(str(bad).replace('_inaccurate', ''), DEFAULT_HINT)}",
              file=sys.stderr)
        return 1
    if solution.kind == "bracket":
        print(f"bracket:        {solution.lower:.10g} <= p* <= {solution.upper:.10g}")
        print(f"note:           {solution.note}")
    else:
        print(f"optimal value:  p* = {solution.value:.10g}")
    if solution.status == "optimal_inaccurate":
        print("warning: the solver reports reduced accuracy")
    print(f"solve time:     {solution.solve_time:.3f} s ({solution.solver})")
    print(f"non-zero units: {solution.nonzero_units} of {bound.P} pattern(s)")
    out = args.output or f"{model.name}_solution.npz"
    out = out if out.endswith(".npz") else out + ".npz"  # np.savez would append it anyway
    solution.save(out)
    print(f"saved:          {out}")
    return 0


def _configure(p) -> None:
    add_model_options(p)
    p.add_argument("--data", action="append", required=True, metavar="DATA",
                   help="data file: .npz/.csv with arrays by tensor name, or NAME=FILE "
                        "(e.g. X=x.npy); repeatable")
    p.add_argument("--solver", help="an installed CVXPY solver (default CLARABEL)")
    p.add_argument("--output", "-o", help="where to save the solution (.npz; default "
                                          "<model>_solution.npz)")
    p.add_argument("--patterns-from", metavar="NPZ",
                   help="reuse the patterns saved with an earlier solution")
    p.add_argument("--relu-bound", choices=["auto", "sdp", "nocone"], default="auto",
                   help="lower bound for NP-hard ReLU programs (q > 1, R != l1)")
    p.add_argument("--enum-cap", type=int, default=12,
                   help="enumerate NP-hard norm pairs exactly up to this l_inf dimension")
    p.add_argument("--solver-opt", action="append", metavar="KEY=VALUE",
                   help="a solver setting passed to cvxpy, e.g. max_iter=500; repeatable")
    p.add_argument("--verbose", action="store_true", help="show the solver's log")


cmd_solve.configure = _configure
