"""Honest CVXPY solves and validated options (issue 18, items 2, 3, 6): each reproducer.

Exit codes (docs/cli.md): 0 a solution, 1 a user's mistake, 2 argparse usage, 3 the solver
ran without producing a solution (nothing saved as if it were one).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from bmdsl.cli import exit_code, main
from bmdsl.commands import options
from bmdsl.cvx import ConvexSolution, build_problem
from bmdsl.cvx.solver import SolverOptionError
from bmdsl.bind.datasets import save_data
from bmdsl.core.errors import DataError, SolverError
from bmdsl.trainer.errors import TrainingInterrupted

MLP = "models/mlp.bm"

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.fixture(scope="module")
def small():
    return datasets.spiral(10, 3, seed=0)


@pytest.fixture
def data_file(tmp_path, small):
    path = tmp_path / "s.npz"
    save_data(path, small)
    return path


@pytest.fixture(scope="module")
def bound(small):
    return bmdsl.load(MLP).with_activation("gated_relu", 8).derive().bind(small)


def cli(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def usage(capsys, *argv):
    """An argparse refusal: SystemExit(2) with the message on stderr."""
    with pytest.raises(SystemExit) as info:
        main([*map(str, argv)])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and "Traceback" not in out + err
    return err


# -- 1. an inaccurate or limit-stopped solve is not a solution ------------------------------
def test_inaccurate_scs_solve_is_not_called_optimal(bound):
    solution = build_problem(bound).solve("SCS", max_iters=2)
    assert solution.status == "optimal_inaccurate" and not solution.optimal
    assert not solution.ok and "reduced accuracy" in solution.reason
    assert "p* =" not in solution.describe() and "optimal_inaccurate" in solution.describe()
    record = solution.to_dict()
    assert record["optimal"] is False and record["status"] == "optimal_inaccurate"
    exact = build_problem(bound).solve()
    assert exact.optimal and exact.status == "optimal" and exact.reason == ""
    assert exact.describe() == f"p* = {exact.value:.10g}"


def test_limit_stopped_solve_has_no_value(bound):
    solution = build_problem(bound).solve("CLARABEL", max_iter=1)
    assert solution.status == "user_limit" and not solution.optimal
    assert solution.value is None and solution.Z is None and "user_limit" in solution.reason


def test_cli_inaccurate_solve_exits_3_and_saves_nothing(capsys, tmp_path, data_file):
    out_path = tmp_path / "sol.npz"
    code, out, err = cli(capsys, "solve", MLP, "--data", data_file, "--patterns", 8,
                         "--solver", "SCS", "--solver-opt", "max_iters=2", "-o", out_path)
    assert code == 3 and "status:         optimal_inaccurate" in out
    assert "optimal value" not in out and "nothing was saved" in err and "hint" in err
    assert not out_path.exists()


def test_cli_accept_inaccurate_saves_with_the_honest_status(capsys, tmp_path, data_file):
    out_path = tmp_path / "sol.npz"
    code, out, _ = cli(capsys, "solve", MLP, "--data", data_file, "--patterns", 8,
                       "--solver", "SCS", "--solver-opt", "max_iters=2", "-o", out_path,
                       "--accept-inaccurate")
    assert code == 0 and "warning:" in out and "(status optimal_inaccurate)" in out
    saved = ConvexSolution.load(out_path)
    assert saved.status == "optimal_inaccurate" and not saved.optimal


# -- 2. solver exceptions -----------------------------------------------------------------
def test_invalid_solver_setting_is_a_user_error_found_up_front(capsys, bound, data_file):
    with pytest.raises(SolverOptionError, match="max_iter") as info:
        build_problem(bound).solve(max_iter=-5)           # OverflowError inside Clarabel
    assert not isinstance(info.value, SolverError) and "OverflowError" in info.value.message
    code, out, err = cli(capsys, "solve", MLP, "--data", data_file,
                         "--solver-opt", "max_iter=-5")
    assert code == 1 and "solver option error" in err and "CLARABEL" in err
    assert "model mlp" not in out                         # refused before any work
    code, _, err = cli(capsys, "solve", MLP, "--data", data_file, "--solver", "SCS",
                       "--solver-opt", "no_such_setting=3")
    assert code == 1 and "SCS" in err and "no_such_setting" in err


def test_a_solver_panic_becomes_a_solver_error(bound, small):
    # beta = 1e300 makes Clarabel panic (pyo3 PanicException, a BaseException); the front
    # end refuses such a beta now, so it is set on a bound directly
    huge = bmdsl.load(MLP).with_activation("gated_relu", 8).derive().bind(small)
    object.__setattr__(huge, "beta", 1e300)
    with pytest.raises(SolverError, match="CLARABEL failed on the exact program") as info:
        build_problem(huge).solve()
    assert "PanicException" in info.value.message and "beta" in info.value.hint
    assert exit_code(info.value) == 3


def test_cli_solver_exception_exits_3(capsys, monkeypatch, data_file):
    import cvxpy as cp

    class PanicException(BaseException):   # what pyo3 raises for a Rust panic
        pass

    def panic(self, *args, **kwargs):
        raise PanicException("Eigval error: Eigen(1)")
    monkeypatch.setattr(cp.Problem, "solve", panic)
    code, _, err = cli(capsys, "solve", MLP, "--data", data_file, "--patterns", 8)
    assert code == 3 and "CLARABEL failed" in err and "PanicException: Eigval error" in err


def test_exit_code_table():
    assert exit_code(SolverError("x")) == 3
    assert exit_code(DataError("x")) == 1
    assert exit_code(SolverOptionError("x")) == 1
    assert exit_code(TrainingInterrupted("x")) == 130


# -- 3. every option checked before any work ----------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["run", MLP, "--method", "bogus"], "unknown training method 'bogus'; accepted: auto"),
    (["run", MLP, "--solver", "NOPE"], "solver 'NOPE' is not installed; installed solvers"),
    (["run", MLP, "--steps", "-1"], "--steps: must be a whole number >= 0"),
    (["run", MLP, "--certificate-every", "-1"], "--certificate-every: must be a whole number"),
    (["run", MLP, "--max-convex-vars", "-1"], "--max-convex-vars"),
    (["run", MLP, "--data-seed", "x"], "--data-seed: must be a whole number"),
    (["train", MLP, "--data", "s.npz", "--epochs", "-3"], "--epochs: must be a whole number >= 1"),
    (["train", MLP, "--data", "s.npz", "--lr", "-1"], "--lr: must be a finite number > 0"),
    (["train", MLP, "--data", "s.npz", "--lr", "nan"], "--lr: must be a finite number > 0"),
    (["train", MLP, "--data", "s.npz", "--lr", "inf"], "--lr: must be a finite number > 0"),
    (["train", MLP, "--data", "s.npz", "--time-limit", "0"], "--time-limit"),
    (["train", MLP, "--data", "s.npz", "--batch-size", "0"], "--batch-size"),
    (["train", MLP, "--data", "s.npz", "--cert-tol", "-1"], "--cert-tol"),
    (["train", MLP, "--data", "s.npz", "--certificate-every", "-1"], "--certificate-every"),
    (["train", MLP, "--data", "s.npz", "--method", "bogus"], "unknown training method"),
    (["solve", MLP, "--data", "s.npz", "--solver-opt", "max_iter"], "expects KEY=VALUE"),
    (["solve", MLP, "--data", "s.npz", "--solver-opt", "=3"], "expects KEY=VALUE"),
    (["solve", MLP, "--data", "s.npz", "--solver-opt", "verbose=true"], "use --verbose"),
    (["solve", MLP, "--data", "s.npz", "--solver-opt", "a=1", "--solver-opt", "a=2"],
     "a given twice"),
    (["solve", MLP, "--data", "s.npz", "--enum-cap", "99"], "from 0 to 16"),
    (["certify", MLP, "--data", "s.npz", "--weights", "w.npz", "--stationarity-tol", "-1"],
     "--stationarity-tol"),
    (["certify", MLP, "--data", "s.npz", "--weights", "w.npz", "--refine-iters", "-1"],
     "--refine-iters"),
])
def test_bad_option_values_are_refused_by_argparse(capsys, argv, needle):
    err = usage(capsys, *argv)
    assert needle in err


def test_cert_tol_without_certificate_every_is_refused_before_work(capsys, tmp_path):
    code, out, err = cli(capsys, "train", MLP, "--data", tmp_path / "missing.npz",
                         "--cert-tol", "1e-3")
    # the option combination is refused before the (missing) data file is even read
    assert code == 1 and "--cert-tol needs --certificate-every" in err and out == ""


def test_solver_option_values_are_typed():
    assert options.solver_option("max_iter=500") == ("max_iter", 500)
    assert options.solver_option("eps_abs=1e-6") == ("eps_abs", 1e-6)
    assert options.solver_option("equilibrate_enable=False") == ("equilibrate_enable", False)
    assert options.solver_option("direct_solve_method=qdldl") == ("direct_solve_method", "qdldl")
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        options.solver_option("eps=nan")


def test_number_ranges():
    assert options.positive_real("0.5") == 0.5 and options.count("0") == 0
    for kind, text in ((options.positive_real, "0"), (options.positive_int, "0"),
                       (options.count, "1.5"), (options.enum_cap, "17")):
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            kind(text)
    assert options.method_name("auto") == "auto" and options.method_name("adam") == "adam"
    assert options.solver_name("scs") == "SCS"


# -- 4. run goes on without p* when the CVXPY solve fails ---------------------------------
def test_run_reports_a_failed_convex_solve_and_trains_on(capsys, tmp_path, data_file):
    out_dir = tmp_path / "out"
    code, out, _ = cli(capsys, "run", MLP, "--data", data_file, "--patterns", 8,
                       "--solver-opt", "max_iter=1", "--no-warm-start", "--steps", 5,
                       "--certificate-every", 0, "--no-plot", "--no-progress",
                       "--output", out_dir)
    assert code == 3
    assert "user_limit" in out and "p* unavailable, training goes on" in out
    assert "[2/3] Burer-Monteiro training" in out and "p_BM (BM objective)" in out
    record = json.loads((out_dir / "mlp_run.json").read_text())
    convex = record["convex"]
    assert convex["status"] == "user_limit" and convex["optimal"] is False
    assert convex["p_star"] is None and record["true_gap"] is None
    assert np.isfinite(record["bm"]["objective"])


def test_emitted_cvxpy_main_never_calls_an_inaccurate_value_optimal(tmp_path, monkeypatch,
                                                                     capsys):
    import numpy as np

    from bmdsl.cvx import runtime_main
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((2, 2)), Y=np.ones(2))
    spec = {"model": "m", "inputs": [("X", ("n", "d"))], "target": ("Y", ("n",))}
    for status, code in (("optimal_inaccurate", 3), ("optimal", 0)):
        monkeypatch.setattr(runtime_main, "solve_from_spec",
                            lambda *a, s=status: ({"exact": (s, 23261.46)}, "", 1, 0.1))
        assert runtime_main.main(spec, [str(path)]) == code
        out = capsys.readouterr()
        assert ("NOT certified optimal" in out.out) == (code == 3)
        assert ("optimal value: 23261.46" in out.out) == (code == 0)
