"""Networks recovered from convex solutions, and the ReLU bracket for q > 1."""
import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from bmdsl.cvx import build_problem, recover
from model_texts import mlp as mlp_text, regularize


def mlp(act="gated_relu(patterns = 8, seed = 0)", C="l2", R="l2", scalar=False,
        loss="squared", beta=0.02):
    return bmdsl.parse(mlp_text(scalar=scalar, activation=act, loss=loss,
                                regularize=regularize(beta, C, R)))


def vector_data():
    return datasets.spiral(12, 3, seed=5)


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.mark.parametrize("act,C,R", [
    ("linear", "l2", "l2"),                       # SVD of Z
    ("gated_relu(patterns = 8, seed = 0)", "l2", "l2"),
    ("gated_relu(patterns = 8, seed = 0)", "l1", "l2"),    # row atoms
    ("gated_relu(patterns = 8, seed = 0)", "l2", "l1"),    # column atoms
    ("gated_relu(patterns = 8, seed = 0)", "linf", "l2"),  # NP-hard pair, enumerated (p = 2)
    ("relu(patterns = 8, seed = 0)", "l2", "l1"),          # exact ReLU split, (6a)/(6b)
])
def test_recovered_units_reproduce_predictions_and_attain_p_star(act, C, R):
    bound = mlp(act, C, R).derive().bind(vector_data())
    sol = build_problem(bound).solve()
    assert sol.status == "optimal" and sol.exactness == "exact"
    lifted = bound.predict_lifted(sol.Z)
    scale = np.abs(lifted).max()
    assert scale > 1e-3  # a non-trivial solution
    every = recover(bound, sol, tol=0)    # all atoms: equal up to rounding
    assert np.abs(every.predict(bound, relu=False) - lifted).max() <= 1e-10 * scale
    units = recover(bound, sol)           # solver-noise atoms dropped
    assert units.count <= every.count
    assert np.abs(units.predict(bound, relu=False) - lifted).max() <= 1e-6 * scale
    # atoms attain the norm: the non-convex objective (14) of the units is p*
    assert close(units.objective(bound, relu=False), sol.value)
    assert units.first.shape[1:] == bound.w1_shape and units.second.shape[1:] == bound.w2_shape


def test_relu_scalar_output_recovered_network_is_optimal():
    """q = 1, exact patterns: (6a)/(6b) units lie in their cones, so relu(A(u)) = D_k A(u);
    the plain ReLU network's objective F + beta/2 sum (||u||^2 + v^2) equals p*."""
    bound = mlp("relu(patterns = exact)", scalar=True, beta=0.05).derive().bind(
        datasets.spiral_scalar(10, seed=2))
    sol = build_problem(bound).solve()
    assert sol.exactness == "exact" and bound.patterns.source == "exact"
    units = recover(bound, sol)
    lifted = bound.predict_lifted(sol.Z)
    assert np.abs(units.predict(bound, relu=True) - lifted).max() <= 1e-6 * np.abs(lifted).max()
    assert units.count < recover(bound, sol, tol=0).count  # noise atoms are dropped
    assert close(units.objective(bound, relu=True), sol.value)
    assert units.objective(bound) == units.objective(bound, relu=True)  # ReLU is the default
    assert 0 < units.count <= 2 * bound.P
    # the network really is ReLU: the first layers lie in their cones up to the solver's
    # feasibility tolerance, measured on the convex variable a = sqrt(||a||) u of each unit
    slack = (2 * bound.masks[units.pattern] - 1) * bound.pre_activation(units.first)
    a_scale = np.linalg.norm(units.first.reshape(units.count, -1), axis=1)[:, None]
    assert (slack * a_scale).min() >= -1e-7 * np.abs(slack * a_scale).max()


def test_upper_solution_of_a_bracket_is_a_relu_network_worth_upper():
    bound = mlp("relu(patterns = 8, seed = 0)").derive().bind(vector_data())
    sol = build_problem(bound).solve()
    assert sol.exactness == "bracket" and sol.value is None
    units = recover(bound, sol)
    assert close(units.objective(bound, relu=True), sol.upper)


def _feasible_bm_points(bound, rng):
    """BM points satisfying the cones: u = t * gate_k (strictly inside K_k), v by ridge
    regression for those u (the best v for them), and random v; each as (U, V)."""
    points = []
    gates = bound.patterns.gates.reshape(bound.P, 1, bound.p)
    for t in (0.5, 1.0, 2.0):
        U = t * gates / np.linalg.norm(gates, axis=2, keepdims=True)
        H = bound.activate(bound.pre_activation(U))               # [P, 1, n]
        feats = H.reshape(bound.P, -1).T                          # [n, P]
        V = np.linalg.solve(feats.T @ feats + bound.beta * np.eye(bound.P), feats.T @ bound.Y)
        points.append((U, V.reshape(bound.P, 1, -1)))
        points.append((U, rng.standard_normal((bound.P, 1, bound.q))))
    return points


@pytest.mark.parametrize("relu_bound", ["sdp", "nocone"])
def test_relu_bracket_lower_is_below_every_feasible_bm_point(relu_bound):
    bound = mlp("relu(patterns = 8, seed = 0)").derive().bind(vector_data())
    problem = build_problem(bound, relu_bound=relu_bound)
    assert problem.exactness == "bracket" and set(problem.programs) == {"lower", "upper"}
    sol = problem.solve()
    assert sol.lower <= sol.upper * (1 + 1e-8)
    rng = np.random.default_rng(0)
    values = []
    for U, V in _feasible_bm_points(bound, rng):
        assert bound.cone_slack(U).min() >= 0                   # really feasible
        values.append(bound.objective_bm(U, V))
    values.append(recover(bound, sol).objective(bound))       # the upper network
    assert sol.lower <= min(values) * (1 + 1e-8)
    assert min(values[:-1]) > sol.lower                        # the points are not trivial
    assert relu_bound in sol.note or ("SDP" if relu_bound == "sdp" else "cone dropped") in sol.note


def test_sdp_lower_bound_is_at_least_the_cone_free_one():
    bound = mlp("relu(patterns = 8, seed = 0)").derive().bind(vector_data())
    sdp = build_problem(bound, relu_bound="sdp").solve()
    plain = build_problem(bound, relu_bound="nocone").solve()
    assert sdp.lower >= plain.lower * (1 - 1e-7)
    assert close(sdp.upper, plain.upper)
    # auto picks the SDP when it is small, and the cone-free bound over budget; the size
    # counts the extreme cone rows (p = 2: two per pattern), not all n(n-1)/2 row pairs
    raw = bound.P * (12 * 11 // 2) * bound.p ** 2
    reduced = bound.P * 1 * bound.p ** 2
    assert "SDP" in build_problem(bound).note
    assert "SDP" in build_problem(bound, sdp_budget=reduced).note and reduced < raw
    assert "cone dropped" in build_problem(bound, sdp_budget=reduced - 1).note


def test_np_hard_pair_beyond_the_cap_is_bracketed_around_the_enumerated_optimum():
    bound = mlp(C="l2", R="linf").derive().bind(vector_data())    # q = 3: enumerable
    exact = build_problem(bound).solve()
    bracket = build_problem(bound, enum_cap=2).solve()
    assert exact.exactness == "exact" and bracket.exactness == "bracket"
    assert bracket.lower <= exact.value * (1 + 1e-7)
    assert exact.value <= bracket.upper * (1 + 1e-7)
    assert bracket.lower < bracket.upper
    units = recover(bound, bracket, tol=0)                      # balanced SVD of the upper Z
    lifted = bound.predict_lifted(bracket.Z)
    assert np.abs(units.predict(bound) - lifted).max() <= 1e-10 * np.abs(lifted).max()
    assert units.objective(bound) <= bracket.upper * (1 + 1e-7)


def test_linear_activation_has_one_pattern_and_matches_nuclear_norm_value():
    data = vector_data()
    bound = mlp("linear").derive().bind(data)
    sol = build_problem(bound).solve()
    assert bound.P == 1 and sol.Z.shape == (1, 2, 3) and sol.patterns is None
    s = np.linalg.svd(sol.Z[0], compute_uv=False)
    F = bound.loss.value(data["X"] @ sol.Z[0], data["Y"])
    assert close(F + bound.beta * s.sum(), sol.value)         # the objective at Z is p*


def test_other_losses_lower_to_their_cvxpy_forms():
    data = datasets.spiral(12, 3, seed=5)
    bound = mlp("gated_relu(patterns = 6, seed = 0)", loss="cross_entropy").derive().bind(data)
    sol = build_problem(bound).solve()
    units = recover(bound, sol)
    assert close(units.objective(bound), sol.value)
    scalar = datasets.spiral_scalar(10, seed=2)
    bound = mlp("relu(patterns = 6, seed = 0)", scalar=True, loss="logistic").derive().bind(scalar)
    sol = build_problem(bound).solve()
    assert close(recover(bound, sol).objective(bound), sol.value)
    assert sol.value < bound.loss.value(np.zeros(10), scalar["Y"])


def test_cross_entropy_targets_are_checked():
    data = datasets.spiral(12, 3, seed=5)
    data["Y"] = 2 * data["Y"]
    with pytest.raises(bmdsl.DataError, match="sum to 1"):  # checked when data is bound
        mlp(loss="cross_entropy").derive().bind(data)


def test_nonzero_units_counts_patterns_in_use():
    bound = mlp(beta=0.5).derive().bind(vector_data())
    sol = build_problem(bound).solve()
    norms = np.linalg.norm(sol.Z.reshape(bound.P, -1), axis=1)
    assert sol.nonzero_units == int(np.sum(norms > 1e-6 * norms.max()))
    assert 0 < sol.nonzero_units < bound.P   # a large beta leaves some patterns unused
