"""`build_problem(bound)`: the convex program of a bound model as CVXPY problem(s).

    minimize  F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||_D        (2), (5), (23), (104), (127),
                                                              (130), (135); Lemma 3.1
with L_k from `bound.operator()` (dense) or built sparse from the lifted tensor network
(structured.py; whichever cvxfootprint.cvxpy_plan estimates smaller) and the D-norm from
`dnorm.d_norm_cvxpy` (15), the nuclear norm in small PSD blocks where CVXPY's one
(p+q)-square block would be large (structured.column_nuclear); ReLU adds
the cones K_k = diag(2 D_k - 1) * layer_matrix (3), (23), (136), see relu.py. Exactly when
the norm-pair table (docs/theory.md sec. 4) says so; otherwise a bracket of two programs (program.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .program import Forms, build_programs
from .relu import cone_matrices
from ..core.errors import BmdslError
from .solution import OPTIMAL, ConvexSolution
# the solver's side (names, settings, exceptions) lives in solver.py; re-exported here
from .solver import (DEFAULT_SOLVER, SolverOptionError, check_solver, check_solver_options,
                     run_solver)

SPARSE_DENSITY = 0.5  # below this fraction of non-zeros the operator goes to CVXPY sparse


def bmdsl_forms(bound, nuclear: str = "full") -> Forms:
    """The loss and norms from bmdsl's registries (losses.py, norms.py, dnorm.py);
    nuclear="column": the euclidean pair's D-norm (the nuclear norm) by column_nuclear."""
    from ..derive.dnorm import NormExpression, NormPair, d_norm_cvxpy, d_norm_cvxpy_bounds
    from ..atoms.norms import get_norm
    from .structured import column_nuclear

    def dnorm(Z, C, R, enum_cap=12, **options):
        if nuclear == "column" and NormPair(C, R).euclidean:
            expr, cons = column_nuclear(Z)
            return NormExpression(expr, "exact", "nuclear norm in min(p, q)+1-square PSD "
                                  "blocks", tuple(cons))
        return d_norm_cvxpy(Z, C, R, enum_cap=enum_cap, **options)

    def is_exact(C, R, p, q, enum_cap):
        pair = NormPair(C, R)
        return pair.tractable or pair.enum_side(p, q)[1] <= enum_cap

    return Forms(loss=bound.loss.cvxpy, vnorm=lambda name: get_norm(name).cvxpy,
                 dnorm=dnorm, dnorm_bounds=d_norm_cvxpy_bounds, dnorm_is_exact=is_exact,
                 relu_exact=lambda C, R, q: NormPair(C, R).relu_exact(q),
                 euclidean=lambda C, R: NormPair(C, R).euclidean)


def stacked_operator(bound):
    """L = [L_1 ... L_P] as one [|y|, P p q] matrix; scipy.sparse when mostly zeros (the
    output-index structure makes L_k block-sparse: about 1/c of it is non-zero)."""
    import scipy.sparse as sp
    L = bound.operator()  # [P, |y|, p q]
    L = np.ascontiguousarray(L.transpose(1, 0, 2)).reshape(L.shape[1], -1)
    if np.count_nonzero(L) < SPARSE_DENSITY * L.size:
        return sp.csr_matrix(L)
    return L


def _sparse_operator(bound):
    from .structured import sparse_operator
    return sparse_operator(bound)


OPERATORS = {"dense": stacked_operator, "structured": _sparse_operator}
# lowering -> the nuclear norm's form (cvxfootprint.nuclear_blocks)
LOWERINGS = {"auto": "auto", "dense": "full", "structured": "column"}


@dataclass
class ConvexProblem:
    """The program(s) for one bound model. `programs` maps side -> program.Program
    ("exact", or "lower" and "upper" for a bracket); `exactness` and `note` as in ConvexSolution."""

    bound: object
    exactness: str
    programs: dict
    note: str
    beta: object = None     # the cvxpy.Parameter of beta (build_problem(beta_parameter=True))
    lowering: str = "dense"  # "dense" (bound.operator()) or "structured" (structured.py)

    @property
    def problem(self):
        """The cvxpy.Problem: the exact one, or for a bracket the upper (restricted) one."""
        return self.programs["exact" if self.exactness == "exact" else "upper"].problem

    def solve(self, solver: str | None = None, verbose: bool = False, *, beta=None,
              **solver_options) -> ConvexSolution:
        """Solve every program; the solution carries CVXPY's status as it is (see
        solution.py: only `optimal` is a solution). SolverOptionError (a user mistake) for an
        unknown solver or a setting the solver refuses; SolverError when the solver itself
        raises (a numerical breakdown, a program class it cannot handle)."""
        name = check_solver(solver)
        check_solver_options(name, solver_options)
        if beta is not None:
            if self.beta is None:
                raise BmdslError("solve(beta=...) needs the problem built with "
                                 "to_cvxpy(beta_parameter=True)")
            if not (isinstance(beta, (int, float)) and 0 < beta < float("inf")):
                raise BmdslError(f"beta must be a positive finite number, not {beta!r}")
            self.beta.value = float(beta)
        statuses, values, times = {}, {}, 0.0
        for side, prog in self.programs.items():
            t0 = time.perf_counter()
            run_solver(prog.problem, name, side, verbose, solver_options,
                       scale=f"beta = {self.bound.beta:g}")
            times += time.perf_counter() - t0
            statuses[side] = prog.problem.status
            value = prog.problem.value if prog.problem.status in OPTIMAL else None
            values[side] = None if value is None else float(value)
        bad = [s for s in statuses.values() if s not in OPTIMAL]
        status = bad[0] if bad else ("optimal_inaccurate" if "optimal_inaccurate" in
                                     statuses.values() else "optimal")
        main = self.programs["exact" if self.exactness == "exact" else "upper"]
        Z = _blocks(main.Z) if values.get(main.side) is not None else None
        split = None
        if main.split is not None and Z is not None:
            split = np.stack([_blocks([a for a, _ in main.split]),
                              _blocks([b for _, b in main.split])])
        b = self.bound
        return ConvexSolution(
            status=status, value=values.get("exact"), Z=Z, solve_time=times, exactness=self.exactness,
            lower=values.get("lower", values.get("exact")),
            upper=values.get("upper", values.get("exact")), note=self.note,
            patterns=b.patterns, model=b.model.name, solver=name, split=split,
            statuses=statuses)


def _blocks(exprs) -> np.ndarray:
    return np.stack([np.asarray(e.value, dtype=np.float64) for e in exprs])


def build_problem(bound, *, relu_bound: str = "auto", enum_cap: int = 12,
                  sdp_budget: int = 2_000_000, memory_budget=None,
                  beta_parameter: bool = False, lowering: str = "auto") -> ConvexProblem:
    """The convex program(s) of `bound` (a `bmdsl.bind.bound.BoundModel`).

    relu_bound: the lower bound used when the ReLU program is NP-hard (q > 1, R != l1):
    "sdp" (relaxation with the cone, see relu.sdp_cone_norm), "nocone" (plain D-norm) or
    "auto" (sdp when its size P * pairs of cone rows * p^2 <= sdp_budget; see program.plan).
    enum_cap: NP-hard (C, R) pairs are exact by enumerating 2^(k-1) sign vectors when the
    l_inf side has dimension k <= enum_cap, else bracketed (dnorm.d_norm_cvxpy_bounds).
    memory_budget: bytes or a size such as "2G" (default: bmdsl.core.memory's budget); the
    program's estimate (cvxfootprint.cvxpy_for) is checked against it before anything is
    built, and a MemoryBudgetError says so with the estimate.
    beta_parameter: beta enters as a `cvxpy.Parameter` (`ConvexProblem.beta`), so that
    `solve(beta=...)` re-solves the same compiled problem at another beta (a path).
    lowering: "dense" (the dense operator, CVXPY's nuclear norm), "structured" (L sparse
    from the tensor network, the nuclear norm by columns) or "auto" (each by the smaller
    estimate, cvxfootprint.cvxpy_plan and nuclear_blocks). The same program either way."""
    import cvxpy as cp
    from ..core import memory
    from ..core.cvxfootprint import cvxpy_plan_for, nuclear_blocks
    if lowering not in LOWERINGS:
        raise BmdslError(f"lowering must be one of {', '.join(LOWERINGS)}, not {lowering!r}")
    path, estimate = cvxpy_plan_for(bound, lowering, LOWERINGS[lowering])
    memory.require(estimate, memory_budget)
    nuclear = nuclear_blocks(bound.p, bound.q, LOWERINGS[lowering])[0]
    # the target was checked against the loss when the data was bound (bound.BoundModel)
    with memory.limit(memory_budget):     # the operator's own check sees the same budget
        cones = cone_matrices(bound.layer_matrix(), bound.masks) if bound.cone else None
        beta = cp.Parameter(nonneg=True, value=bound.beta, name="beta") if beta_parameter \
            else bound.beta
        exactness, programs, note = build_programs(
            OPERATORS[path](bound), bound.Y, bound.P, bound.p, bound.q, beta, bound.C,
            bound.R, bmdsl_forms(bound, nuclear), cones, relu_bound=relu_bound, enum_cap=enum_cap,
            sdp_budget=sdp_budget)
    return ConvexProblem(bound, exactness, programs, note,
                         beta if beta_parameter else None, path)
