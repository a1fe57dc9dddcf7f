"""Build, solve and run the convex program from a SPEC and data, without bmdsl.

`build_from_spec` is what an emitted module's `build_problem` calls; `main` is its command
line: python <model>_cvxpy.py DATA.npz [PATTERNS.npz] [--solver NAME] [--memory GIB].
"""
import argparse
import sys
import time

import numpy as np
import cvxpy as cp

from .program import build_programs
from .relu import cone_matrices
from .runtime_data import DataError, check_arrays, layer_matrix, pattern_masks, stacked_operator
from .runtime_forms import standalone_forms
from ..kernel.npz import read_npz


def build_from_spec(spec, data, masks=None, gates=None):
    """(exactness, {side: Program}, note, masks) for `data` (arrays by tensor name)."""
    arrays, sizes = check_arrays(spec, data)
    shapes = {key: tuple(sizes[d] for d in spec[key]) for key in ("w1", "w2", "a", "y")}
    D = pattern_masks(spec, arrays, shapes, masks, gates)
    P = 1 if D is None else D.shape[0]
    p, q = int(np.prod(shapes["w1"])), int(np.prod(shapes["w2"]))
    cones = cone_matrices(layer_matrix(spec, arrays, shapes), D) if spec["activation"]["cone"] \
        else None
    exactness, programs, note = build_programs(
        stacked_operator(spec, arrays, shapes, D), arrays[spec["target"][0]], P, p, q,
        spec["beta"], spec["C"], spec["R"], standalone_forms(spec, shapes), cones,
        relu_bound=spec["relu_bound"], enum_cap=spec["enum_cap"], sdp_budget=spec["sdp_budget"])
    return exactness, programs, note, D


def problem_from_spec(spec, arrays, masks=None, side=None):
    """(cvxpy.Problem, [Z_k expressions]) of one side: the exact program, or for a bracket
    side="lower" (relaxation, optimum <= p*) or side="upper" (restriction, >= p*)."""
    exactness, programs, note, _ = build_from_spec(spec, arrays, masks)
    if exactness == "exact":
        prog = programs["exact"]
    elif side in ("lower", "upper"):
        prog = programs[side]
    else:
        raise ValueError(f"this program is only bracketed ({note}); pass side='lower' or "
                         "side='upper'")
    return prog.problem, prog.Z


def solve_from_spec(spec, arrays, masks=None, gates=None, solver="CLARABEL", verbose=False):
    """{side: (status, value)}, note, pattern count and seconds, every side solved."""
    exactness, programs, note, D = build_from_spec(spec, arrays, masks, gates)
    out, t0 = {}, time.perf_counter()
    for side, prog in programs.items():
        prog.problem.solve(solver=solver, verbose=verbose)
        out[side] = (prog.problem.status, prog.problem.value)
    return out, note, (1 if D is None else D.shape[0]), time.perf_counter() - t0


def main(spec, argv=None):
    """Solve for DATA.npz [PATTERNS.npz]; exit 1 on an error, 3 if the solver stopped short."""
    names = [n for n, _ in spec["inputs"]] + [spec["target"][0]]
    cli = argparse.ArgumentParser(description=f"Solve model {spec['model']}'s convex program.")
    cli.add_argument("data", help=".npz with arrays named " + ", ".join(names))
    cli.add_argument("patterns", nargs="?", help=".npz with 'masks' or 'gates' (bmdsl solve's)")
    cli.add_argument("--solver", default="CLARABEL", type=str.upper,
                     help="a CVXPY solver installed here (default CLARABEL)")
    cli.add_argument("--memory", type=float, help="GiB the dense operator may take")
    cli.add_argument("--verbose", action="store_true")
    args = cli.parse_args(argv)
    try:
        data = read_npz(args.data)
        # masks or gates: from PATTERNS.npz, or DATA.npz arrays that are not tensors
        extra = read_npz(args.patterns, "patterns", ("masks", "gates")) if args.patterns \
            else {k: v for k, v in data.items() if k not in names}
        if args.solver not in cp.installed_solvers():
            raise DataError(f"solver {args.solver!r} is not installed: {cp.installed_solvers()}")
        budget = {"memory_budget": int(args.memory * 2**30)} if args.memory else {}
        results, note, P, seconds = solve_from_spec(
            dict(spec, **budget), data, extra.get("masks"),
            None if "masks" in extra else extra.get("gates"), args.solver, args.verbose)
    except (ValueError, cp.error.SolverError) as exc:           # DataError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"model {spec['model']}: {P} pattern(s), solved in {seconds:.3f} s")
    status = {side: s for side, (s, _) in results.items()}
    if set(status.values()) - {"optimal", "optimal_inaccurate"}:
        print(f"solver status {status}; try --solver with another solver", file=sys.stderr)
        return 1
    for side, (s, value) in results.items():
        label = {"exact": "optimal value", "lower": "lower bound", "upper": "upper bound"}[side] \
            if s == "optimal" else f"{side} program's value, NOT certified optimal"
        print(f"{label}: {float(value)!r} (status {s})")
    if "exact" not in results:
        print(f"note: {note}")
    if set(status.values()) != {"optimal"}:
        print(f"solver status {status}: not a solution; raise the solver's iteration limit or "
              "try another --solver", file=sys.stderr)
        return 3
    return 0
