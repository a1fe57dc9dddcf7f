"""D-norm of eq. (15), its dual, bounds and the ReLU-cone dual norm (bmdsl/derive/dnorm.py)."""
import itertools

import cvxpy as cp
import numpy as np
import pytest

from bmdsl.derive.cone import _cone_sdp, cone_dual_norm, cone_dual_norm_lower
from bmdsl.derive.dnorm import (PAIR_TABLE, NormPair, d_norm, d_norm_cvxpy, d_norm_cvxpy_bounds,
                                dual_norm)
from bmdsl.atoms.norms import NORMS

NAMES = ["l1", "l2", "linf"]
PAIRS = list(itertools.product(NAMES, NAMES))
HARD = [("l2", "linf"), ("linf", "l2"), ("linf", "linf")]


def _ball(rng, name, n, k):
    """n random points of the unit C-ball in R^k (sphere and interior)."""
    X = rng.standard_normal((n, k)) * rng.exponential(size=(n, k)) ** 2
    X /= NORMS[name].numpy(X, axis=1)[:, None]
    X[: n // 2] *= rng.uniform(size=(n // 2, 1))
    return X


def _gauge_by_duality(Z, C, R):
    """||Z||_D = max <Z,G> s.t. ||G||_D* <= 1, with the dual-norm constraint written
    independently of d_norm (closed forms, or one constraint per sign vector)."""
    p, q = Z.shape
    G = cp.Variable((p, q))
    Cd, Rd = NORMS[NORMS[C].dual], NORMS[NORMS[R].dual]
    if C == "l1":
        cons = [Rd.cvxpy(G, axis=1) <= 1]
    elif R == "l1":
        cons = [Cd.cvxpy(G, axis=0) <= 1]
    elif (C, R) == ("l2", "l2"):
        cons = [cp.sigma_max(G) <= 1]
    elif R == "linf":   # max_s ||G s||_C* <= 1 over all sign vectors s
        cons = [Cd.cvxpy(G @ np.array(s)) <= 1 for s in itertools.product([-1, 1], repeat=q)]
    else:
        cons = [Rd.cvxpy(G.T @ np.array(s)) <= 1 for s in itertools.product([-1, 1], repeat=p)]
    prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(Z, G))), cons)
    prob.solve(solver="CLARABEL")
    return prob.value


def test_table_classification():
    assert len(PAIR_TABLE) == 9
    for C, R in PAIRS:
        assert NormPair(C, R).tractable == (C == "l1" or R == "l1" or (C, R) == ("l2", "l2"))
    with pytest.raises(KeyError, match="l1"):
        NormPair("l3", "l2")


@pytest.mark.parametrize("C,R", PAIRS)
def test_dual_norm_bounds_samples_and_is_attained(C, R):
    rng = np.random.default_rng(10)
    G = rng.standard_normal((4, 5))
    d = dual_norm(G, C, R)
    assert d.exactness == "exact"
    U, V = _ball(rng, C, 4000, 4), _ball(rng, R, 4000, 5)
    assert np.max(np.einsum("ni,ij,nj->n", U, G, V)) <= d.value + 1e-10
    assert NORMS[C].numpy(d.u) <= 1 + 1e-12 and NORMS[R].numpy(d.v) <= 1 + 1e-12
    np.testing.assert_allclose(d.u @ G @ d.v, d.value, rtol=1e-12)


@pytest.mark.parametrize("C,R", PAIRS)
def test_d_norm_duality_and_independent_gauge(C, R):
    rng = np.random.default_rng(11)
    p, q = 4, 3
    G, Z = rng.standard_normal((p, q)), rng.standard_normal((p, q))
    d, nz = dual_norm(G, C, R), d_norm(Z, C, R)
    assert np.sum(Z * G) <= nz * d.value + 1e-9                # Hoelder for the pair
    np.testing.assert_allclose(d_norm(np.outer(d.u, d.v), C, R), 1.0, rtol=1e-6)  # equality
    np.testing.assert_allclose(nz, _gauge_by_duality(Z, C, R), rtol=1e-6)
    Zv = cp.Variable((p, q))
    ne = d_norm_cvxpy(Zv, C, R)
    assert ne.exactness == "exact"
    prob = cp.Problem(cp.Minimize(ne.expr), [Zv == Z, *ne.constraints])
    prob.solve(solver="CLARABEL")
    np.testing.assert_allclose(prob.value, nz, rtol=1e-6)


def _solve(ne, Z):
    Zv = cp.Parameter(Z.shape, value=Z)
    expr = ne(Zv)
    prob = cp.Problem(cp.Minimize(expr.expr), list(expr.constraints))
    prob.solve(solver="CLARABEL")
    return prob.value


@pytest.mark.parametrize("C,R", HARD)
@pytest.mark.parametrize("lower", ["sdp", "cheap"])
def test_bounds_bracket_exact_on_enumerable(C, R, lower):
    rng = np.random.default_rng(12)
    for p, q in [(3, 5), (5, 3)]:
        Z = rng.standard_normal((p, q))
        exact = d_norm(Z, C, R)
        lo = _solve(lambda Zv: d_norm_cvxpy_bounds(Zv, C, R, lower=lower)[0], Z)
        up = _solve(lambda Zv: d_norm_cvxpy_bounds(Zv, C, R, lower=lower)[1], Z)
        assert lo <= exact * (1 + 1e-6) and exact <= up * (1 + 1e-6), (lo, exact, up)
        G = rng.standard_normal((p, q))
        ex = dual_norm(G, C, R).value
        for m in ("sdp", "bound"):
            b = dual_norm(G, C, R, method=m)
            assert b.exactness == "upper" and b.value >= ex * (1 - 1e-9)


@pytest.mark.parametrize("C,R", HARD)
def test_beyond_cap_is_upper_and_refuses_exact(C, R):
    rng = np.random.default_rng(13)
    G = rng.standard_normal((6, 7))
    ex = dual_norm(G, C, R).value
    for cap in (3, 12):
        b = dual_norm(G, C, R, enum_cap=2, sdp_cap=cap)
        assert b.exactness == "upper" and b.u is None and b.value >= ex * (1 - 1e-9)
    with pytest.raises(ValueError, match="NP-hard"):
        d_norm(G, C, R, enum_cap=2)
    Zv = cp.Variable((6, 7))
    with pytest.raises(ValueError):
        d_norm_cvxpy(Zv, C, R, enum_cap=2)
    assert d_norm_cvxpy(Zv, C, R, enum_cap=2, allow_bound="lower").exactness == "lower"
    assert d_norm_cvxpy(Zv, C, R, enum_cap=2, allow_bound="upper").exactness == "upper"


# ------------------------------------------------------------------ ReLU cone
def _cone(rng, N, p):
    X = rng.standard_normal((N, p))
    h = rng.standard_normal(p)               # a gate: h is inside its own cone
    return np.sign(X @ h)[:, None] * X


@pytest.mark.parametrize("C,R,q", [("l2", "l1", 3), ("l1", "l1", 2), ("linf", "l1", 2),
                                   ("l2", "l2", 1), ("linf", "linf", 1), ("l1", "l2", 1)])
def test_cone_exact_against_brute_force(C, R, q):
    rng = np.random.default_rng(14)
    p = 3
    G, K = rng.standard_normal((p, q)), _cone(rng, 4, p)
    d = cone_dual_norm(G, K, C, R)
    assert d.exactness == "exact"
    assert np.min(K @ d.u) >= -1e-7 and NORMS[C].numpy(d.u) <= 1 + 1e-9
    np.testing.assert_allclose(d.u @ G @ d.v, d.value, rtol=1e-6, atol=1e-9)
    U = _ball(rng, C, 200_000, p)
    U = U[np.all(U @ K.T >= 0, axis=1)]
    sampled = np.max(NORMS[NORMS[R].dual].numpy(U @ G, axis=1))
    assert sampled <= d.value + 1e-7
    assert sampled >= 0.97 * d.value


def test_cone_l2_sdp_between_lower_and_spectral():
    rng = np.random.default_rng(15)
    for p, N, q in [(4, 12, 3), (6, 20, 2)]:
        G, K = rng.standard_normal((p, q)), _cone(rng, N, p)
        spec = cone_dual_norm(G, K, "l2", "l2", method="spectral")
        sdp = cone_dual_norm(G, K, "l2", "l2", method="sdp")
        kkt = cone_dual_norm(G, K, "l2", "l2", method="kkt")
        auto = cone_dual_norm(G, K, "l2", "l2")
        low = cone_dual_norm_lower(G, K, "l2", "l2")
        assert sdp.method == "sdp" and spec.method == "spectral"
        assert sdp.value <= spec.value * (1 + 1e-9) and kkt.value <= spec.value * (1 + 1e-9)
        for b in (sdp, kkt, auto):
            assert low.value <= b.value * (1 + 1e-7)
        assert auto.value <= min(sdp.value, kkt.value) * (1 + 1e-6)
        assert np.min(K @ low.u) >= -1e-7 and np.linalg.norm(low.u) <= 1 + 1e-9
        np.testing.assert_allclose(low.u @ G @ low.v, low.value, rtol=1e-10)
        for b in (sdp, kkt, auto):
            if b.exactness == "exact":
                assert np.min(K @ b.u) >= -1e-7 and np.linalg.norm(b.u) <= 1 + 1e-9
                np.testing.assert_allclose(b.u @ G @ b.v, b.value, rtol=1e-5)


def test_cone_sdp_constraint_generation_matches_dense():
    rng = np.random.default_rng(16)
    G, K = rng.standard_normal((5, 3)), _cone(rng, 25, 5)
    dense, _ = _cone_sdp(G @ G.T, K)
    gen, _ = _cone_sdp(G @ G.T, K, dense_budget=0)
    np.testing.assert_allclose(gen, dense, rtol=1e-5)


def test_cone_exact_when_top_singular_vector_is_in_cone():
    rng = np.random.default_rng(17)
    G = rng.standard_normal((4, 3))
    u = np.linalg.svd(G)[0][:, 0]
    K = rng.uniform(0.1, 1.0, (6, 4)) * np.sign(u)[None, :]   # K u > 0 entrywise
    d = cone_dual_norm(G, K, "l2", "l2", method="spectral")
    assert d.exactness == "exact"
    np.testing.assert_allclose(d.value, np.linalg.norm(G, 2))


@pytest.mark.parametrize("C,R", [("l1", "l2"), ("l2", "linf"), ("linf", "l2")])
def test_cone_other_pairs_upper(C, R):
    rng = np.random.default_rng(18)
    G, K = rng.standard_normal((3, 2)), _cone(rng, 5, 3)
    d = cone_dual_norm(G, K, C, R)
    low = cone_dual_norm_lower(G, K, C, R)
    assert d.method.startswith("drop-cone")
    assert low.value <= d.value * (1 + 1e-7)
    U = _ball(rng, C, 50_000, 3)
    U = U[np.all(U @ K.T >= 0, axis=1)]
    assert np.max(NORMS[NORMS[R].dual].numpy(U @ G, axis=1)) <= d.value + 1e-9
