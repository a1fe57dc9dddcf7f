"""`bmdsl solve`, solution files, pattern reuse and data errors of the CVXPY backend."""
import pathlib
import re

import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from bmdsl.cli import main
from bmdsl.cvx import ConvexSolution, build_problem
from bmdsl.bind.datasets import save_data
from bmdsl.derive.patterns import PatternSet

MLP = "models/mlp.bm"
GATES = """model gates
input X[n, d], H[g, d]
target Y[n, c]
size g = 4
units m = 2
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(gates = H)
loss squared
regularize beta = 0.01, C = l2, R = l2
"""


@pytest.fixture
def spiral_file(tmp_path):
    path = tmp_path / "spiral.npz"
    save_data(path, datasets.spiral(12, 3, seed=0))
    return path


def run(capsys, *argv):
    code = main(["solve", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def field(out, name):
    return next(ln for ln in out.splitlines() if ln.startswith(name)).split(":", 1)[1].strip()


def test_solve_prints_and_saves_a_reloadable_solution(capsys, tmp_path, spiral_file):
    out_path = tmp_path / "sol.npz"
    code, out, _ = run(capsys, MLP, "--data", spiral_file, "--output", out_path,
                       "--patterns", 12)
    assert code == 0
    saved = ConvexSolution.load(out_path)
    bound = bmdsl.load(MLP).with_activation("gated_relu", 12).derive().bind(
        datasets.spiral(12, 3, seed=0))
    expected = build_problem(bound).solve()
    assert field(out, "status") == "optimal"
    value = float(field(out, "optimal value").split("=")[1])
    assert value == pytest.approx(expected.value, rel=1e-9)
    assert field(out, "non-zero units") == f"{expected.nonzero_units} of {bound.P} pattern(s)"
    assert field(out, "saved") == str(out_path)
    assert "solve time" in out
    assert saved.value == pytest.approx(expected.value, rel=1e-9) and saved.model == "mlp"
    np.testing.assert_array_equal(saved.patterns.masks, bound.masks)
    assert saved.Z.shape == (bound.P, 2, 3) and saved.exactness == "exact"
    # a file written before `kind` was renamed `exactness` still reads
    with np.load(out_path) as f:
        old = {("kind" if k == "exactness" else k): f[k] for k in f.files}
    np.savez(tmp_path / "old.npz", **old)
    older = ConvexSolution.load(tmp_path / "old.npz")
    assert older.exactness == "exact" and older.value == saved.value


def test_saved_patterns_are_reused(capsys, tmp_path, spiral_file):
    first = tmp_path / "first.npz"
    assert run(capsys, MLP, "--data", spiral_file, "-o", first, "--activation", "relu",
               "--patterns", 10, "--seed", 3)[0] == 0
    data = datasets.spiral(12, 3, seed=0)
    # Python API: a different seed, but the saved PatternSet overrides it
    derivation = bmdsl.load(MLP).with_activation("relu", 10, 99).derive()
    with np.load(first) as f:
        reused = derivation.bind(data, patterns=PatternSet.from_npz_dict(f))
    again = build_problem(reused).solve()
    saved = ConvexSolution.load(first)
    np.testing.assert_array_equal(reused.masks, saved.patterns.masks)
    assert again.lower == pytest.approx(saved.lower, rel=1e-7)
    assert again.upper == pytest.approx(saved.upper, rel=1e-7)
    # CLI: --patterns-from
    code, out, _ = run(capsys, MLP, "--data", spiral_file, "--activation", "relu",
                       "--patterns-from", first, "-o", tmp_path / "second.npz")
    assert code == 0 and "bracket" in out and "<= p* <=" in out
    second = ConvexSolution.load(tmp_path / "second.npz")
    assert second.upper == pytest.approx(saved.upper, rel=1e-7)


def test_solve_reads_npy_and_csv(capsys, tmp_path):
    data = datasets.spiral(12, 3, seed=0)
    np.save(tmp_path / "x.npy", data["X"])
    np.save(tmp_path / "y.npy", data["Y"])
    save_data(tmp_path / "d.csv", data)
    a = run(capsys, MLP, "--data", f"X={tmp_path / 'x.npy'}", "--data", f"Y={tmp_path / 'y.npy'}",
            "--activation", "linear", "-o", tmp_path / "a")
    b = run(capsys, MLP, "--data", tmp_path / "d.csv", "--activation", "linear",
            "-o", tmp_path / "b")
    assert a[0] == b[0] == 0
    assert field(a[1], "optimal value") == field(b[1], "optimal value")
    code, _, err = run(capsys, MLP, "--data", tmp_path / "x.npy")
    assert code == 1 and "--data X=" in err


def _bad(kind):
    d = datasets.spiral(12, 3, seed=0)
    if kind == "nan":
        d["X"][3, 1] = np.nan
    elif kind == "shape":
        d["Y"] = d["Y"][:7]
    elif kind == "empty":
        d = {"X": np.zeros((0, 2)), "Y": np.zeros((0, 3))}
    elif kind == "inf":
        d["Y"][0, 0] = np.inf
    return d


@pytest.mark.parametrize("kind,message", [("nan", "NaN or infinite"), ("inf", "NaN or infinite"),
                                          ("shape", "has length 7"), ("empty", "is empty")])
def test_bad_data_is_a_data_error_and_exit_1(capsys, tmp_path, kind, message):
    data = _bad(kind)
    with pytest.raises(bmdsl.DataError, match=message):
        build_problem(bmdsl.load(MLP).derive().bind(data))
    np.savez(tmp_path / "bad.npz", **data)
    code, out, err = run(capsys, MLP, "--data", tmp_path / "bad.npz")
    assert code == 1 and message in err and "data error" in err


def test_declared_sizes_and_gate_counts_are_checked(capsys, tmp_path):
    rng = np.random.default_rng(0)
    good = dict(datasets.spiral(10, 3, seed=0), H=rng.standard_normal((4, 2)))
    assert build_problem(bmdsl.parse(GATES).derive().bind(good)).solve().ok
    for bad, message in ((rng.standard_normal((3, 2)), "g = 4"),       # wrong number of gates
                         (rng.standard_normal((4, 3)), "has length 3")):  # wrong gate size
        data = dict(good, H=bad)
        with pytest.raises(bmdsl.DataError, match=message):
            bmdsl.parse(GATES).derive().bind(data)
        (tmp_path / "gates.bm").write_text(GATES)
        np.savez(tmp_path / "g.npz", **data)
        code, _, err = run(capsys, tmp_path / "gates.bm", "--data", tmp_path / "g.npz")
        assert code == 1 and message in err


def test_patterns_of_another_model_are_refused(capsys, tmp_path, spiral_file):
    other = tmp_path / "other.npz"
    np.savez(other, **PatternSet(np.ones((2, 5)), np.ones((2, 2)), "sampled", 0, 2).to_npz_dict())
    code, _, err = run(capsys, MLP, "--data", spiral_file, "--patterns-from", other)
    assert code == 1 and "given patterns have shape" in err
    code, _, err = run(capsys, MLP, "--data", spiral_file, "--patterns-from", spiral_file)
    assert code == 1 and "no saved patterns" in err


def test_unknown_solver_names_the_installed_ones(capsys, spiral_file):
    import cvxpy as cp
    with pytest.raises(bmdsl.SolverError, match="not installed") as info:
        build_problem(bmdsl.load(MLP).derive().bind(datasets.spiral(12, 3))).solve("NO_SUCH")
    assert "CLARABEL" in info.value.hint
    with pytest.raises(SystemExit) as usage:  # refused by argparse, before any work: exit 2
        main(["solve", MLP, "--data", str(spiral_file), "--solver", "no_such"])
    err = capsys.readouterr().err
    assert usage.value.code == 2 and all(s in err for s in cp.installed_solvers())


def test_failed_solve_prints_status_and_hint(capsys, spiral_file, tmp_path):
    code, out, err = run(capsys, MLP, "--data", spiral_file, "--solver-opt", "max_iter=1",
                         "-o", tmp_path / "x.npz")
    assert code == 3 and "user_limit" in out + err and "hint" in err  # exit 3: no solution
    assert not (tmp_path / "x.npz").exists()
    code, _, err = run(capsys, MLP, "--data", spiral_file, "--solver", "osqp")
    assert code == 3 and "OSQP" in err and "solver error" in err


def test_other_installed_solver_by_name(capsys, spiral_file, tmp_path):
    code, out, _ = run(capsys, MLP, "--data", spiral_file, "--activation", "linear",
                       "--solver", "scs", "--solver-opt", "eps=1e-9", "-o", tmp_path / "s")
    ref = build_problem(bmdsl.load(MLP).with_activation("linear").derive().bind(
        datasets.spiral(12, 3, seed=0))).solve()
    assert code == 0 and "(SCS)" in out
    assert float(field(out, "optimal value").split("=")[1]) == pytest.approx(ref.value, rel=1e-5)


def test_docs_worked_example_runs(tmp_path, monkeypatch, capsys):
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "cvxpy.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/cvxpy.md", "exec"), {"__name__": "example"})  # noqa: S102
    out = capsys.readouterr().out
    assert out.startswith("exact optimal p* = 7.96") and "P = 40" in out
    objective = float(out.split("ReLU network objective:")[1].split()[0])
    assert objective == pytest.approx(float(out.split("p* = ")[1].split()[0]), rel=1e-5)
    assert (tmp_path / "relu1_cvxpy.py").exists() and (tmp_path / "relu1_solution.npz").exists()
