"""Running a CVXPY solver honestly: the solver's name, its settings and its exceptions.

* `check_solver`: the CVXPY name of an installed solver (DEFAULT_SOLVER when None).
* `check_solver_options`: settings tried on a one-variable program before any work; one the
  solver refuses is the user's mistake (SolverOptionError, a BmdslError: exit 1).
* `run_solver`: `problem.solve` with anything the solver raises -- an exception, or a Rust
  panic (pyo3's PanicException derives from BaseException) -- as a SolverError naming the
  solver, the program side and the cause (exit 3: the solver ran, no solution).
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings

from ..atoms.conic import DEFAULT_SOLVER  # noqa: F401 (bmdsl.cvx's name for it)
from ..core.errors import BmdslError, SolverError


class SolverOptionError(BmdslError):
    """A solver name or setting the solver refuses, found before the real solve."""

    kind = "solver option error"


def run_solver(problem, name, side, verbose, options, scale="") -> None:
    """problem.solve, with anything the solver raises as a SolverError naming the solver
    and the cause. Rust solvers (Clarabel) panic with pyo3's PanicException, which derives
    from BaseException, so only the interrupts are let through."""
    import cvxpy as cp
    try:
        with warnings.catch_warnings(), _quiet_stderr(not verbose):
            # cvxpy warns about inaccurate solutions; the status says it instead
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=name, verbose=verbose, **options)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 -- see the docstring
        cause = (str(exc) if isinstance(exc, cp.error.SolverError) else
                 f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
        raise SolverError(
            f"{name} failed on the {side} program: {cause}",
            hint=f"check the scale of the data and beta ({scale}); try another "
                 f"solver (installed: {_installed()}) or fewer patterns") from None


@contextlib.contextmanager
def _quiet_stderr(active: bool):
    """File descriptor 2 goes to a temporary file during the solve: a Rust panic prints its
    message and backtrace there, which the SolverError replaces. Anything else written
    (warnings) is passed on to stderr afterwards; the panic text is dropped."""
    try:
        fd = sys.stderr.fileno() if active else -1
    except (AttributeError, OSError, ValueError):  # stderr replaced by a non-file object
        fd = -1
    if fd < 0:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
            if "panicked at" not in text and text:
                sys.stderr.write(text)


# The probe: a one-variable LP every installed CVXPY solver accepts. A setting that fails
# on it is the user's (a name the solver does not know, a value out of its range).
def _probe():
    import cvxpy as cp
    x = cp.Variable()
    return cp.Problem(cp.Minimize(x), [x >= 1])


def check_solver_options(name: str, options: dict) -> None:
    """Refuse, before any work, the settings `name` rejects (SolverOptionError): they are
    tried on a trivial program; its status does not matter, only whether the solver raises."""
    if not options:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _probe().solve(solver=name, verbose=False, **options)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 -- pyo3 panics are BaseExceptions
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise SolverOptionError(
            f"{name} refuses the setting(s) {given}: {type(exc).__name__}: {exc}",
            hint=SETTINGS_HINTS.get(name, "see the solver's documentation for its settings "
                                          "(names and ranges)")) from None


SETTINGS_HINTS = {
    "CLARABEL": "Clarabel settings include max_iter (a whole number >= 0), time_limit "
                "(seconds), tol_gap_abs, tol_gap_rel, tol_feas (positive numbers)",
    "SCS": "SCS settings include max_iters (a whole number > 0), eps_abs, eps_rel "
           "(positive numbers), time_limit_secs",
}


def _installed() -> str:
    import cvxpy as cp
    return ", ".join(cp.installed_solvers())


def check_solver(solver: str | None) -> str:
    """The solver's CVXPY name; SolverError naming the installed ones if it is not."""
    import cvxpy as cp
    name = DEFAULT_SOLVER if solver is None else str(solver).upper()
    if name not in cp.installed_solvers():  # the CLI refuses it earlier (commands/options.py)
        raise SolverError(f"solver {solver!r} is not installed",
                          hint=f"installed solvers: {_installed()}")
    return name
