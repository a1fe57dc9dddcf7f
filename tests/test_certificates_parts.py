"""Pieces of the certificate: prox maps, subgradient selection, NNLS, cone dual norms,
pair combinations, other losses and norm pairs, theorem checks, the JSON form."""
import json

import cvxpy as cp
import numpy as np
import pytest

import bmdsl
from bmdsl.certificates import certify
from bmdsl.certificates.dual import pair_point, scaled_point
from bmdsl.certificates.dualnorms import DualNormOracle, cone_rows
from bmdsl.certificates.prox import d_norm_prox, prox_vector_norm
from bmdsl.certificates.conennls import cone_nnls
from bmdsl.certificates.stationarity import REG_SUBGRADIENT
from bmdsl.cvx import build_problem, recover
from bmdsl.certificates import stack_units
from bmdsl.bind.datasets import sequences, spiral
from bmdsl.derive.cone import cone_dual_norm, cone_dual_norm_lower
from bmdsl.derive.dnorm import dual_norm
from bmdsl.core.errors import DataError
from bmdsl.atoms.norms import NORMS
from model_texts import mlp, regularize

MLP = mlp(m="{m}", activation="{act}", loss="{loss}", regularize=regularize("{beta}", "{C}", "{R}"))


def _bound(act="linear", loss="squared", beta=0.05, C="l2", R="l2", m=3, data=None):
    text = MLP.format(m=m, act=act, loss=loss, beta=beta, C=C, R=R)
    return bmdsl.parse(text).derive().bind(data or spiral(n=10, classes=2, seed=7))


@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_prox_of_vector_norms_matches_cvxpy(name):
    rng = np.random.default_rng(0)
    x, tau = rng.standard_normal(6), 0.7
    z = cp.Variable(6)
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(z - x) + tau * NORMS[name].cvxpy(z))).solve()
    np.testing.assert_allclose(prox_vector_norm(x, name, tau), z.value, atol=1e-6)


@pytest.mark.parametrize("C,R", [("l2", "l2"), ("l1", "l2"), ("l1", "linf"), ("l2", "l1"),
                                 ("linf", "l1")])
def test_prox_of_d_norm_matches_cvxpy(C, R):
    rng = np.random.default_rng(1)
    Z, tau = rng.standard_normal((1, 3, 4)), 0.6
    W = cp.Variable((3, 4))
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(W - Z[0]) +
                           tau * {"l2": cp.normNuc(W)}.get(C if C == R else "", 0) +
                           (tau * cp.sum(NORMS[R].cvxpy(W, axis=1)) if C == "l1" else 0) +
                           (tau * cp.sum(NORMS[C].cvxpy(W, axis=0)) if R == "l1" else 0))).solve()
    np.testing.assert_allclose(d_norm_prox(C, R)(Z, tau)[0], W.value, atol=1e-5)
    assert d_norm_prox("l2", "linf") is None


@pytest.mark.parametrize("name", ["l1", "linf", "l2"])
def test_subgradient_selection_is_the_minimum_norm_one(name):
    """dist(0, a + c d(||x||^2/2)) against cvxpy, with ties / zeros in x."""
    rng = np.random.default_rng(2)
    x = np.array([1.5, -1.5, 0.0, 0.7]) if name == "linf" else np.array([1.2, 0.0, -0.4, 0.0])
    a, c = rng.standard_normal(4), 0.8
    got = np.linalg.norm(a + REG_SUBGRADIENT[NORMS[name].p](x[None], a[None], c)[0])
    s = cp.Variable(4)   # s in the subdifferential of the norm at x, scaled by ||x||
    n = NORMS[name].numpy(x)
    cons = {"l2": [s == x / n],
            "l1": [s[x != 0] == np.sign(x[x != 0]), cp.abs(s) <= 1],
            "linf": [cp.sum(cp.multiply(np.sign(x), s)) == 1, s[np.abs(x) < n] == 0,
                     cp.multiply(np.sign(x), s) >= 0]}[name]
    prob = cp.Problem(cp.Minimize(cp.norm(a + c * n * s)), cons)
    prob.solve()
    assert got == pytest.approx(prob.value, abs=1e-6)


def test_nnls_matches_cvxpy():
    """conennls: min ||A x - b||, x >= 0, as the cone rows M = A^T with signs +1, c = -b."""
    rng = np.random.default_rng(3)
    A, b = rng.standard_normal((4, 7)), rng.standard_normal(4)
    w, x = cone_nnls(A.T, np.ones((1, 7)), -b[None])
    x = x[0]
    y = cp.Variable(7, nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.norm(A @ y - b)))
    prob.solve()
    assert x.min() >= 0 and np.linalg.norm(A @ x - b) == pytest.approx(prob.value, abs=1e-7)
    assert np.allclose(w[0], A @ x - b, atol=1e-12)


def test_cone_columns_is_a_tight_upper_bound():
    bound = _bound("relu(patterns = 5, seed = 2)", R="l1")
    oracle = DualNormOracle(bound)
    M, signs = cone_rows(bound)
    G = np.random.default_rng(4).standard_normal((bound.P, bound.p, bound.q))
    for k in range(bound.P):
        ours = oracle.one(G[k], k)
        K = signs[k][:, None] * M
        low = cone_dual_norm_lower(G[k], K, bound.C, bound.R).value
        assert ours.value >= low - 1e-12
        assert ours.value == pytest.approx(cone_dual_norm(G[k], K, "l2", "l1").value, rel=1e-6)
        assert ours.value <= dual_norm(G[k], "l2", "l1").value + 1e-9   # cone only shrinks it


def test_pair_point_is_feasible_and_no_worse():
    bound = _bound("gated_relu(patterns = 4, seed = 0)")
    oracle = DualNormOracle(bound)
    rng = np.random.default_rng(5)
    a = scaled_point(bound, oracle, rng.standard_normal(bound.Y.shape), "a")
    b = scaled_point(bound, oracle, bound.loss.grad(np.zeros(bound.Y.shape), bound.Y), "b")
    c = pair_point(bound, a, b)
    assert c.value >= max(a.value, b.value)
    assert oracle(bound.adjoint(c.v)).max <= bound.beta * (1 + 1e-9)
    assert c.value == pytest.approx(-bound.loss.conjugate(c.v, bound.Y))


def _check_valid(bound, points, p_star, tol=1e-6):
    for U, V in points:
        cert = certify(bound, U, V, refine_iters=100)
        gap = (cert.objective - p_star) / p_star
        assert cert.gap_bound >= gap - tol and cert.thm34_any_point >= gap - tol
        if cert.thm34_applicable:
            assert cert.thm34_bound >= gap - tol
    return cert


@pytest.mark.parametrize("C,R", [("l1", "l2"), ("l2", "l1"), ("l2", "linf"), ("linf", "linf")])
def test_other_norm_pairs(C, R):
    bound = _bound(C=C, R=R, m=4, beta=0.2)
    sol = build_problem(bound).solve()
    U0, V0 = stack_units(bound, recover(bound, sol), m=4)
    rng = np.random.default_rng(6)
    Uf, Vf = rng.standard_normal(U0.shape), rng.standard_normal(V0.shape)
    cert = _check_valid(bound, [(U0 + t * (Uf - U0), V0 + t * (Vf - V0)) for t in (1, .1, 0)],
                        sol.value)
    assert cert.gap_bound <= 1e-3
    hard = (C, R) in (("l2", "linf"), ("linf", "linf"))
    assert ("not available" in cert.refinement) == hard


@pytest.mark.parametrize("loss", ["cross_entropy", "huber"])
def test_other_losses(loss):
    bound = _bound("gated_relu(patterns = 4, seed = 0)", loss=loss, beta=0.1)
    sol = build_problem(bound).solve()
    U0, V0 = stack_units(bound, recover(bound, sol), m=3)
    rng = np.random.default_rng(7)
    Uf, Vf = rng.standard_normal(U0.shape), rng.standard_normal(V0.shape)
    cert = _check_valid(bound, [(U0 + t * (Uf - U0), V0 + t * (Vf - V0)) for t in (1, .1, 0)],
                        sol.value)
    assert cert.gap_bound <= 1e-3


def test_vacuous_certificate_and_json():
    data = spiral(n=6, classes=2, seed=0)
    data["Y"] = np.zeros_like(data["Y"])          # p* = 0: no relative bound exists
    bound = _bound(data=data)
    U = np.ones((1, 3, 2))
    cert = certify(bound, U, U, refine_iters=0)
    assert cert.vacuous and cert.dual_value <= 0
    d = json.loads(json.dumps(cert.to_dict()))
    assert d["vacuous"] and d["gap_bound"] is None and d["P"] == 1
    assert "vacuous" in cert.text()


def test_bad_factors_raise_data_errors():
    bound = _bound()
    with pytest.raises(DataError, match="expected"):
        certify(bound, np.zeros((1, 3, 5)), np.zeros((1, 3, 2)))
    with pytest.raises(DataError, match="units"):
        certify(bound, np.zeros((1, 3, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="cone_method"):
        certify(bound, np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), cone_method="exact")


def test_theorem_3_3_and_corollary_3_10_statuses():
    att = open("models/selfattention.bm").read().split("activation")[0]
    data = sequences(n=2, tokens=3, features=2, outputs=1, seed=0)   # p + q = 4 + 2
    for m, status in ((7, "hypothesis holds"), (2, "hypothesis fails")):
        text = att.replace("units  m = 4", f"units  m = {m}") + \
            "activation linear\nloss squared\nregularize beta = 0.1, C = l2, R = l2\n"
        bound = bmdsl.parse(text).derive().bind(data)
        U = np.random.default_rng(0).standard_normal((1, m, 2, 2))
        V = np.random.default_rng(1).standard_normal((1, m, 2, 1))
        cert = certify(bound, U, V, refine_iters=0)
        refs = {t.reference: t for t in cert.theorems}
        assert refs["Theorem 3.3"].status == status
        assert refs["Corollary 3.10"].status == status
        assert ("rank-deficient" in refs["Corollary 3.10"].detail) == (m == 7)   # 7 > p + q
        assert refs["Theorem 3.4"].status == "hypothesis fails"


@pytest.mark.parametrize("patterns,needle", [("exact", "among ReLU networks of any width"),
                                             ("4", "NOT a certificate of global optimality")])
def test_scope_depends_on_the_patterns(patterns, needle):
    text = MLP.format(m=2, act=f"relu(patterns = {patterns}, seed = 0)", loss="squared",
                      beta=0.1, C="l2", R="l1")
    bound = bmdsl.parse(text).derive().bind(spiral(n=6, classes=2, seed=1))
    assert bound.patterns.source == ("exact" if patterns == "exact" else "sampled")
    U = bound.patterns.gates.reshape(bound.P, 1, -1).repeat(2, axis=1)   # inside the cones
    V = np.random.default_rng(0).standard_normal((bound.P, 2, 2))
    cert = certify(bound, U, V, refine_iters=0)
    assert needle in cert.scope and cert.cone_violation == 0.0 and "WARNING" not in cert.scope
    bad = certify(bound, -U, V, refine_iters=0)        # -u leaves the cone of its pattern
    assert bad.cone_violation > 0.1 and "WARNING" in bad.scope
