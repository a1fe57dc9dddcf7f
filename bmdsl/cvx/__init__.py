"""The CVXPY backend (docs/cvxpy.md): the convex program of a bound model, its solution,
a network recovered from it, and a stand-alone emitted module.

    >>> problem = bmdsl.load("models/mlp.bm").derive().bind(data).to_cvxpy()
    >>> solution = problem.solve()              # Clarabel by default
    >>> units = recover(problem.bound, solution)

Modules: program.py and relu.py assemble the program from numbers (numpy + cvxpy only,
pasted into emitted modules); problem.py lowers a `BoundModel` to them; solution.py holds the
result; recovery.py the network; emit.py writes the stand-alone source from those two and
runtime_forms.py, runtime_data.py, runtime_main.py (bmdsl-free: the loss and the D-norm
from the kernel's entries, data binding and pattern sampling, and the command line).
"""
from .problem import ConvexProblem, build_problem, check_solver
from .recovery import Units, recover
from .solution import ConvexSolution

__all__ = ["build_problem", "ConvexProblem", "ConvexSolution", "check_solver", "recover",
           "Units", "emit_cvxpy"]


def emit_cvxpy(derivation, **options) -> str:
    """Source of a stand-alone module rebuilding this program from data (see emit.py)."""
    from .emit import emit_cvxpy as _emit
    return _emit(derivation, **options)
