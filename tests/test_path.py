"""Regularization paths (bmdsl/workflow/path.py): beta_max from the dual norm, each point against an
independent CVXPY solve, and warm starts against cold starts (iteration counts)."""
import numpy as np
import pytest

import bmdsl
from bmdsl.bind.defaults import default_data
from bmdsl.workflow.path import beta_grid, beta_max, regularization_path


@pytest.fixture(scope="module")
def gated():
    model = bmdsl.load("models/mlp.bm").with_activation("gated_relu", 6, 0)
    data, _ = default_data(model)
    data = {k: v[::3] for k, v in data.items()}            # n = 50
    return model, data


def test_beta_max_is_the_smallest_beta_with_a_zero_solution(gated, one_torch_thread):
    model, data = gated
    bound = model.derive().bind(data)
    b_max, exact = beta_max(bound)
    assert exact and b_max > 0
    at = model.with_beta(b_max).derive().bind(data, patterns=bound.patterns)
    below = model.with_beta(0.99 * b_max).derive().bind(data, patterns=bound.patterns)
    zero = at.to_cvxpy().solve()
    assert zero.value == pytest.approx(0.5 * np.sum(data["Y"] ** 2), rel=1e-7)
    nonzero = below.to_cvxpy().solve()
    assert nonzero.value < zero.value * (1 - 1e-7)          # Z = 0 is no longer optimal
    assert np.abs(nonzero.Z).max() > 10 * np.abs(zero.Z).max()


def test_each_point_matches_cvxpy(gated, one_torch_thread):
    model, data = gated
    path = regularization_path(model, data, n_betas=4, ratio=1e-2, cert_tol=1e-8)
    assert path.points[0].active_units == 0 and path.points[0].steps == 0
    bound = model.derive().bind(data)
    for point in path.points:
        b = model.with_beta(point.beta).derive().bind(data, patterns=bound.patterns)
        p_star = b.to_cvxpy().solve().value
        assert point.objective == pytest.approx(p_star, rel=1e-6)
        assert point.gap_bound <= 1e-6
        assert point.gap_bound >= (point.objective - p_star) / p_star - 1e-9
    objectives = [p.objective for p in path.points]
    assert objectives == sorted(objectives, reverse=True)   # less regularization, lower value
    assert "beta_max" in path.table() and len(path.to_dict()["points"]) == 4


def test_warm_starts_take_fewer_iterations(gated, one_torch_thread):
    model, data = gated
    # Newton asked for by name: no convex warm start on either side, so both count BM steps
    kw = dict(n_betas=4, ratio=0.03, cert_tol=1e-6, certificate_every=5, max_steps=2000,
              method="newton")
    warm = regularization_path(model, data, warm=True, **kw)
    cold = regularization_path(model, data, warm=False, **kw)
    assert [p.warm for p in warm.points] == [False, False, True, True]
    assert not any(p.warm for p in cold.points)
    assert all(p.gap_bound <= 1e-6 for p in warm.points + cold.points)
    assert sum(p.steps for p in warm.points[2:]) < sum(p.steps for p in cold.points[2:])
    for w, c in zip(warm.points, cold.points):
        assert w.objective == pytest.approx(c.objective, rel=1e-5)


def test_grid_validation():
    assert beta_grid(2.0, 3, 0.25).tolist() == pytest.approx([2.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="n_betas"):
        beta_grid(1.0, 0)
    with pytest.raises(ValueError, match="ratio"):
        beta_grid(1.0, 3, 2.0)


def test_path_command(tmp_path, capsys, one_torch_thread):
    import json

    from bmdsl.cli import main
    pdf, record = tmp_path / "path.pdf", tmp_path / "path.json"
    code = main(["path", "models/mlp.bm", "--patterns", "6", "--n-betas", "3", "--ratio",
                 "0.1", "--test-fraction", "0.3", "--plot", str(pdf), "--json", str(record)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "beta_max" in out and "test mse" in out
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    points = json.loads(record.read_text())["points"]
    assert len(points) == 3 and points[0]["active_units"] == 0
    assert all("test mse" in p["metrics"] for p in points)
    assert main(["path", "models/mlp.bm", "--betas", "1,x"]) == 1
    assert "comma-separated list of numbers" in capsys.readouterr().err


def test_cvxpy_beta_parameter_reuses_one_compiled_problem(gated):
    model, data = gated
    bound = model.derive().bind(data)
    shared = bound.to_cvxpy(beta_parameter=True)
    problem = shared.problem
    for beta in (1.0, 0.1, 0.01):
        value = shared.solve(beta=beta).value
        assert shared.problem is problem                    # the same cvxpy.Problem
        fresh = model.with_beta(beta).derive().bind(data, patterns=bound.patterns)
        assert value == pytest.approx(fresh.to_cvxpy().solve().value, rel=1e-6)
    with pytest.raises(bmdsl.BmdslError, match="beta_parameter=True"):
        bound.to_cvxpy().solve(beta=0.5)
