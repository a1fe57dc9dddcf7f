"""The emitted stand-alone CVXPY module: same patterns, same operator, same optimum as
`build_problem(...).solve()`, run where bmdsl cannot be imported; and emission safety."""
import ast
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from bmdsl.cvx import build_problem, emit_cvxpy
from bmdsl.cvx.emit import _literal, model_spec
from bmdsl.cvx.problem import stacked_operator
from bmdsl.cvx.runtime_data import check_arrays, layer_matrix, pattern_masks
from bmdsl.cvx.runtime_data import stacked_operator as standalone_operator
from bmdsl.cvx.solution import ConvexSolution
from model_texts import mlp, regularize

MODELS = "models"
GATES = """model gates
input X[n, d], H[g, d]
target Y[n, c]
size g = 5
units m = 2
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(gates = H)
loss cross_entropy
regularize beta = 0.01, C = linf, R = l2
"""
SCALAR = mlp("scalar", m=2, scalar=True, activation="relu(patterns = exact)", loss="logistic",
             regularize=regularize("0.05"))


def cnn_data():
    return datasets.images(3, 1, 4, 4, seed=1)


def seq_data():
    return datasets.sequences(3, 3, 2, 2, seed=2)


def gates_data():
    d = datasets.spiral(9, 3, seed=1)
    d["H"] = np.random.default_rng(3).standard_normal((5, 2))
    return d


CASES = {  # name -> (model, data)
    "cnn_gated": (lambda: bmdsl.load(f"{MODELS}/cnn.bm").with_activation("gated_relu", 6, 2),
                  cnn_data),
    "attention_relu_l1": (lambda: bmdsl.parse(open(f"{MODELS}/selfattention.bm").read()
                                              .replace("R = l2", "R = l1")
                                              ).with_activation("relu", 5, 1), seq_data),
    "mlp_relu_bracket": (lambda: bmdsl.load(f"{MODELS}/mlp.bm").with_activation("relu", 6, 0),
                         lambda: datasets.spiral(10, 3, seed=4)),
    "gates_hard_pair": (lambda: bmdsl.parse(GATES), gates_data),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_standalone_runtime_rebuilds_masks_operator_and_cones(name):
    model, data = CASES[name][0](), CASES[name][1]()
    derivation = model.derive()
    bound = derivation.bind(data)
    spec = model_spec(derivation)
    arrays, sizes = check_arrays(spec, data)
    shapes = {k: tuple(sizes[d] for d in spec[k]) for k in ("w1", "w2", "a", "y")}
    assert shapes == {"w1": bound.w1_shape, "w2": bound.w2_shape, "a": bound.a_shape,
                      "y": bound.y_shape}
    masks = pattern_masks(spec, arrays, shapes)
    assert np.array_equal(masks, bound.masks)  # same draws, same de-duplication
    L = stacked_operator(bound)
    L = L.toarray() if hasattr(L, "toarray") else L
    np.testing.assert_allclose(standalone_operator(spec, arrays, shapes, masks), L,
                               rtol=1e-12, atol=1e-12 * np.abs(L).max())
    np.testing.assert_allclose(layer_matrix(spec, arrays, shapes), bound.layer_matrix(),
                               rtol=1e-12, atol=1e-13)


def test_standalone_operator_is_refused_over_its_memory_budget():
    """The emitted module keeps the dense lowering: it estimates L (as core.cvxfootprint
    prices it) and refuses before allocating when that exceeds the SPEC's budget."""
    from bmdsl.core import cvxfootprint
    from bmdsl.cvx import runtime_data
    assert runtime_data.CVXPY_COPIES == cvxfootprint.CVXPY_COPIES
    model, data = CASES["cnn_gated"][0](), CASES["cnn_gated"][1]()
    spec = model_spec(model.derive())
    arrays, sizes = check_arrays(spec, data)
    shapes = {k: tuple(sizes[d] for d in spec[k]) for k in ("w1", "w2", "a", "y")}
    masks = pattern_masks(spec, arrays, shapes)
    ny, cols = int(np.prod(shapes["y"])), len(masks) * int(np.prod(shapes["w1"] + shapes["w2"]))
    need = 8 * ny * (ny + cvxfootprint.CVXPY_COPIES * cols)
    L = standalone_operator(dict(spec, memory_budget=need), arrays, shapes, masks)
    assert L.shape == (ny, cols)                          # at the budget: built
    with pytest.raises(ValueError, match=r"dense operator L .* GiB, over the budget"):
        standalone_operator(dict(spec, memory_budget=need - 1), arrays, shapes, masks)


DRIVER = r"""
import contextlib, io, json, runpy, sys
sys.modules["bmdsl"] = None          # importing bmdsl must fail in here
results = []
for path, argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [path] + argv
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(path, run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


def run_isolated(tmp_path, jobs):
    """Run emitted modules' __main__ in one python -I process without bmdsl on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-c", DRIVER, json.dumps(jobs)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def printed(out, label):
    line = next(ln for ln in out.splitlines() if ln.startswith(label + ":"))
    return float(line.split(":")[1].split("(")[0])


def test_emitted_modules_give_the_same_optimum_without_bmdsl(tmp_path):
    jobs, expected = [], []
    for name in sorted(CASES):
        model, data = CASES[name][0](), CASES[name][1]()
        derivation = model.derive()
        path = tmp_path / f"{name}_cvxpy.py"
        path.write_text(emit_cvxpy(derivation))
        np.savez(tmp_path / f"{name}.npz", **data)
        jobs.append((str(path), [f"{name}.npz"]))
        expected.append(build_problem(derivation.bind(data)).solve())
    # exact enumeration: refused without masks, same optimum with the solution's masks
    model, data = bmdsl.parse(SCALAR), datasets.spiral_scalar(8, seed=3)
    bound = model.derive().bind(data)
    solution = build_problem(bound).solve()
    solution.save(tmp_path / "scalar_solution.npz")
    (tmp_path / "scalar_cvxpy.py").write_text(emit_cvxpy(model.derive()))
    np.savez(tmp_path / "scalar.npz", **data)
    jobs += [(str(tmp_path / "scalar_cvxpy.py"), ["scalar.npz"]),
             (str(tmp_path / "scalar_cvxpy.py"), ["scalar.npz", "scalar_solution.npz"]),
             (str(tmp_path / "cnn_gated_cvxpy.py"), ["cnn_gated.npz", "--memory", "1e-6"])]
    results = run_isolated(tmp_path, jobs)
    # the dense operator over the budget: refused before it is built, with the way out
    too_big = results.pop()
    assert too_big["code"] == 1 and "Traceback" not in too_big["err"]
    assert "the dense operator L" in too_big["err"] and "bmdsl solve" in too_big["err"]
    for res, sol in zip(results, expected):
        assert res["code"] == 0, res["err"]
        if sol.exactness == "exact":
            assert printed(res["out"], "optimal value") == pytest.approx(sol.value, rel=1e-6)
        else:
            assert printed(res["out"], "lower bound") == pytest.approx(sol.lower, rel=1e-6)
            assert printed(res["out"], "upper bound") == pytest.approx(sol.upper, rel=1e-6)
    refused, solved = results[-2:]
    assert refused["code"] == 1 and "masks" in refused["err"] and "Traceback" not in refused["err"]
    assert solved["code"] == 0
    assert printed(solved["out"], "optimal value") == pytest.approx(solution.value, rel=1e-6)
    assert ConvexSolution.load(tmp_path / "scalar_solution.npz").value == solution.value


def test_emitted_build_problem_is_importable_and_matches(tmp_path):
    model, data = CASES["cnn_gated"][0](), CASES["cnn_gated"][1]()
    src = emit_cvxpy(model.derive())
    namespace = {"__name__": "cnn_cvxpy"}
    exec(compile(src, "cnn_cvxpy.py", "exec"), namespace)  # noqa: S102 (our own output)
    problem, Z = namespace["build_problem"](data)
    problem.solve(solver="CLARABEL")
    expected = build_problem(model.derive().bind(data)).solve()
    assert problem.value == pytest.approx(expected.value, rel=1e-6)
    assert np.stack([z.value for z in Z]).shape == expected.Z.shape
    with pytest.raises(ValueError, match="bracketed"):
        bracket = CASES["mlp_relu_bracket"]
        ns = {"__name__": "m"}
        exec(compile(emit_cvxpy(bracket[0]().derive()), "m.py", "exec"), ns)  # noqa: S102
        ns["build_problem"](bracket[1]())


def test_emitted_source_imports_only_numpy_cvxpy_and_stdlib():
    src = emit_cvxpy(bmdsl.load(f"{MODELS}/cnn.bm").derive())
    modules = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            modules.add(node.module.split(".")[0])
    assert modules <= {"numpy", "cvxpy", "argparse", "sys", "time", "collections", "functools",
                       "dataclasses", "typing", "zipfile"}
    assert "bmdsl" not in modules


@pytest.mark.parametrize("field,value", [
    ("name", 'x"""\nimport os'),
    ("name", "a b"),
])
def test_bad_names_are_never_pasted(field, value):
    model = dataclasses.replace(bmdsl.load(f"{MODELS}/mlp.bm"), **{field: value})
    with pytest.raises(bmdsl.SemanticError, match="names in emitted code"):
        emit_cvxpy(model.derive())


def test_bad_tensor_name_and_loss_are_rejected():
    model = bmdsl.load(f"{MODELS}/mlp.bm")
    target = dataclasses.replace(model.target, name="Y; import os")
    with pytest.raises(bmdsl.SemanticError):
        emit_cvxpy(dataclasses.replace(model, target=target).derive())
    loss = dataclasses.replace(model.loss, name="squared(); import os")
    with pytest.raises(bmdsl.SemanticError, match="no stand-alone"):
        model_spec(dataclasses.replace(model, loss=loss).derive())


def test_literal_accepts_only_plain_values():
    text = _literal({"a": (1, 2.5, None, True, ["x"])})
    assert text == "{\n    'a': (1, 2.5, None, True, ['x']),\n}"
    for bad in ["x'); import os; ('", float("nan"), float("inf"), object(), b"x"]:
        with pytest.raises(bmdsl.SemanticError):
            _literal(bad)


@pytest.mark.parametrize("path", ["mlp.bm", "cnn.bm", "selfattention.bm"])
def test_einsum_specs_are_letter_strings(path):
    spec = model_spec(bmdsl.load(f"{MODELS}/{path}").derive())
    for coef, names, subscripts in spec["layer"] + spec["adjoint"]:
        assert isinstance(coef, float) and all(n.isidentifier() for n in names)
        assert set(subscripts) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,->")


@pytest.mark.parametrize("C,R", [("l2", "linf"), ("linf", "l2"), ("linf", "linf"), ("l1", "l2")])
def test_standalone_forms_match_dnorm_including_brackets(C, R):
    """runtime_forms copies dnorm's cvxpy forms: same optima, exact and bracketed
    (enum_cap = 1 forces the bounds of d_norm_cvxpy_bounds)."""
    from bmdsl.cvx.runtime_main import solve_from_spec
    text = open(f"{MODELS}/mlp.bm").read().replace("C = l2, R = l2", f"C = {C}, R = {R}")
    derivation = bmdsl.parse(text).with_activation("gated_relu", 4, 0).derive()
    data = datasets.spiral(8, 3, seed=6)
    for cap in (12, 1):
        sol = build_problem(derivation.bind(data), enum_cap=cap).solve()
        results, _, _, _ = solve_from_spec(model_spec(derivation, enum_cap=cap), data)
        assert set(results) == ({"exact"} if sol.exactness == "exact" else {"lower", "upper"})
        for side, (status, value) in results.items():
            expected = sol.value if side == "exact" else getattr(sol, side)
            assert status == "optimal" and value == pytest.approx(expected, rel=1e-6)
