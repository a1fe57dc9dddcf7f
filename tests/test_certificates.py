"""Certificates (bmdsl/certificates): validity against the true gap on all 9 architecture x
activation cases, tightness at the optimum, cone bounds, and Theorem 2.1 (Mardani)."""
import numpy as np
import pytest

import bmdsl
from bmdsl.certificates import certify, certify_lifted, stack_units
from bmdsl.cvx import build_problem, recover
from bmdsl.bind.datasets import images, sequences, spiral
from model_texts import attention, cnn, mlp

TOL = 1e-6   # relative accuracy of p* from Clarabel, with margin

MLP = mlp()
MLP_SCALAR = mlp("mlp1", m=2, scalar=True)
CNN = cnn(align=8)
ATTENTION = attention(align=7)


def _text(base, act, R="l2", beta=0.05):
    a = "linear" if act == "linear" else f"{act}(patterns = 6, seed = 1)"
    return base + f"activation {a}\nloss squared\nregularize beta = {beta}, C = l2, R = {R}\n"


def _data(name):
    if name == "mlp":
        return spiral(n=12, classes=2, seed=3)
    if name == "mlp1":
        d = spiral(n=12, classes=2, seed=3)
        return {"X": d["X"], "Y": d["Y"] @ np.array([1.0, -1.0])}
    if name == "cnn":
        return images(n=4, height=4, width=4, seed=2)
    return sequences(n=3, tokens=3, features=2, outputs=2, seed=4)


# ReLU is exact (the tractable program) with q = 1 (scalar MLP) or R = l1 (CNN, attention).
CASES = {(arch, act): (_text(base, act, "l1" if act == "relu" and arch != "mlp" else "l2"),
                       "mlp1" if (arch, act) == ("mlp", "relu") else arch)
         for arch, base in (("mlp", MLP), ("cnn", CNN), ("attention", ATTENTION))
         for act in ("linear", "gated_relu", "relu")}
for _act in ("relu",):
    CASES[("mlp", _act)] = (_text(MLP_SCALAR, _act), "mlp1")


def _solved(case):
    text, data = CASES[case]
    bound = bmdsl.parse(text).derive().bind(_data(data))
    sol = build_problem(bound).solve()
    assert sol.exactness == "exact" and sol.ok
    return bound, sol


def _far_factors(bound, m, rng):
    """Random factors; for ReLU positive multiples of each pattern's gate (inside its cone)."""
    if bound.cone:
        U = rng.uniform(0.2, 1.0, (bound.P, m, 1)) * bound.patterns.gates.reshape(bound.P, 1, -1)
    else:
        U = rng.standard_normal((bound.P, m, bound.p))
    V = rng.standard_normal((bound.P, m, bound.q))
    return U.reshape((bound.P, m) + bound.w1_shape), V.reshape((bound.P, m) + bound.w2_shape)


def _true_gap(value, p_star):
    return (value - p_star) / p_star


@pytest.mark.parametrize("case", sorted(CASES))
def test_bounds_hold_far_and_near_and_vanish_at_optimum(case):
    bound, sol = _solved(case)
    U0, V0 = stack_units(bound, recover(bound, sol))
    Uf, Vf = _far_factors(bound, U0.shape[1], np.random.default_rng(0))
    assert abs(bound.objective_bm(U0, V0) - sol.value) <= TOL * sol.value
    for theta in (1.0, 0.1, 0.01, 0.0):   # convex combinations stay inside the cones
        cert = certify(bound, U0 + theta * (Uf - U0), V0 + theta * (Vf - V0), refine_iters=200)
        gap = _true_gap(cert.objective, sol.value)
        assert cert.gap_bound >= gap - TOL, (theta, cert.gap_bound, gap)
        assert cert.plain_gap_bound >= cert.gap_bound - 1e-12   # improvements never hurt
        assert cert.thm34_any_point >= gap - TOL
        if cert.thm34_applicable:
            assert cert.thm34_bound >= gap - TOL
        if theta == 1.0:
            assert not cert.thm34_applicable and gap > 1e-2
    assert cert.gap_bound <= 1e-3 and cert.thm34_applicable and cert.thm34_bound <= 1e-3
    assert cert.cone_violation <= 1e-6
    assert (cert.cone_method is not None) == bound.cone


@pytest.mark.parametrize("case", sorted(CASES))
def test_lifted_points(case):
    bound, sol = _solved(case)
    Zf = np.random.default_rng(1).standard_normal(sol.Z.shape) * np.abs(sol.Z).max()
    for theta in (1.0, 0.3, 0.0):
        cert = certify_lifted(bound, sol.Z + theta * (Zf - sol.Z), refine_iters=100)
        gap = _true_gap(cert.objective, sol.value)
        assert cert.gap_bound >= gap - TOL and cert.thm34_any_point >= gap - TOL
    assert abs(cert.objective - sol.value) <= TOL * sol.value
    assert cert.gap_bound <= 1e-3


def test_cone_sdp_is_below_spectral():
    bound = bmdsl.parse(_text(MLP, "relu")).derive().bind(spiral(n=8, classes=2, seed=5))
    assert bound.q == 2 and bound.cone           # constrained nuclear norm: bounds only
    U, V = _far_factors(bound, 2, np.random.default_rng(2))
    sdp = certify(bound, U, V, cone_method="sdp")
    spec = certify(bound, U, V, cone_method="spectral")
    assert set(spec.dual_norm_methods) == {"spectral"} and spec.cone_method == "spectral"
    assert "sdp" in sdp.cone_method
    assert np.all(np.array(sdp.dual_norms) <= np.array(spec.dual_norms) + 1e-9)
    assert np.any(np.array(sdp.dual_norms) < np.array(spec.dual_norms) - 1e-6)  # the cone bites
    assert sdp.thm34_bound <= spec.thm34_bound + 1e-12
    assert sdp.gap_bound <= spec.gap_bound + 1e-12
    for cert in (sdp, spec):   # "exact" only where the maximizer was found inside the cone
        assert (cert.exact_or_bounded == "exact") == all(k == "exact" for k in cert.dual_norm_kinds)


def _mardani(beta, Y, keep):
    """Linear MLP with X = I, squared loss: a stationary point of (12) keeping the singular
    values in `keep` (each > beta): U = A sqrt(S - beta), V = B sqrt(S - beta)."""
    d, c = Y.shape
    text = _text(MLP, "linear", beta=beta).replace("units m = 4", f"units m = {d}")
    bound = bmdsl.parse(text).derive().bind({"X": np.eye(d), "Y": Y})
    A, s, Bt = np.linalg.svd(Y, full_matrices=False)
    U, V = np.zeros((1, d, d)), np.zeros((1, d, c))
    for r in keep:
        U[0, r], V[0, r] = A[:, r] * np.sqrt(s[r] - beta), Bt[r] * np.sqrt(s[r] - beta)
    return bound, U, V, s


def test_theorem_2_1_mardani():
    Y = np.random.default_rng(3).standard_normal((4, 3))
    s = np.linalg.svd(Y, compute_uv=False)
    beta = 0.5 * (s[1] + s[2])           # s[0], s[1] > beta > s[2]
    # p* in closed form: singular value soft-thresholding of Y (prox of the nuclear norm)
    shrunk = np.maximum(s - beta, 0.0)
    p_star = 0.5 * np.sum((s - shrunk) ** 2) + beta * shrunk.sum()
    seen = set()
    for keep in ((), (0,), (1,), (0, 1)):
        bound, U, V, _ = _mardani(beta, Y, keep)
        cert = certify(bound, U, V, refine_iters=0)
        assert cert.thm34_applicable and cert.stationarity <= 1e-12
        gap = _true_gap(cert.objective, p_star)   # saddles have a real gap: (20) must cover it
        assert cert.thm34_bound >= gap - 1e-12 and cert.gap_bound >= gap - 1e-12
        holds = np.linalg.norm(Y - U[0].T @ V[0], 2) <= beta * (1 + 1e-12)
        assert (cert.thm34_bound <= 1e-12) == holds
        if not holds:
            assert cert.thm34_bound > 0.1
        seen.add(holds)
    assert seen == {True, False}
    # Theorem 3.5: at the global point, is U full rank min(p, q)? only when all 3 kept.
    bound, U, V, s = _mardani(0.5 * s[2], Y, (0, 1, 2))
    cert = certify(bound, U, V, refine_iters=0)
    thm35 = next(t for t in cert.theorems if t.reference == "Theorem 3.5")
    assert thm35.status == "certifies global optimum" and cert.thm34_bound <= 1e-12
