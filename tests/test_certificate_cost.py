"""The certificate's and the fit's cost cuts (issue 13, docs/performance.md "Construction
and certificates"): Brent's method for the dual-ray and pair searches, the tractable pairs'
dual norms in one batched call, the refinement's candidates ranked from the Gram
statistics, the BM method made at its first use. Each changes only how fast a number is
found: every test compares it with the direct computation."""
import math

import numpy as np
import pytest

import bmdsl
from bmdsl.bind.datasets import spiral
from bmdsl.certificates import certify
from bmdsl.certificates.dual import scaled_point
from bmdsl.certificates.dualnorms import BATCHED_DUAL, DualNormOracle
from bmdsl.certificates.samples import Samples
from bmdsl.certificates.search import gram_candidate
from bmdsl.derive.dnorm import NormPair, dual_norm
from bmdsl.kernel.search import brent_max, golden_max
from bmdsl.trainer import Trainer
from model_texts import mlp, regularize

MLP = mlp(m="{m}", activation="gated_relu", loss="{loss}",
          regularize=regularize("{beta}", "{C}", "{R}"))


def _bound(loss="squared", C="l2", R="l2", beta=0.05, m=3, n=12):
    text = MLP.format(m=m, loss=loss, beta=beta, C=C, R=R)
    data = dict(spiral(n=n, classes=2, seed=7))
    if loss == "logistic":          # a scalar +-1 target per sample
        data["Y"] = np.where(data["Y"][:, :1] > np.median(data["Y"][:, :1]), 1.0, -1.0)
    return bmdsl.parse(text).derive().bind(data)


def _counted(f):
    calls = [0]

    def phi(x):
        calls[0] += 1
        return f(x)
    return phi, calls


def _xlogx(a):
    return a * math.log(a) if a > 0 else 0.0


UNIMODAL = {
    "smooth interior": (lambda t: -(t - 0.3) ** 2 + 0.1 * t ** 3, 0.0, 1.0),
    "entropy (infinite slope at the ends)": (lambda t: -(_xlogx(t) + _xlogx(1 - t)), 0.0, 0.7),
    "increasing: the right end": (lambda t: math.log1p(t), 0.0, 2.0),
    "decreasing: the left end": (lambda t: -t ** 3 - t, -1.0, 1.0),
    "flat top near the right end": (lambda t: -(t - 0.999999) ** 2, 0.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(UNIMODAL))
def test_brent_finds_the_golden_section_maximum_in_fewer_values(name):
    f, a, b = UNIMODAL[name]
    pb, nb = _counted(f)
    pg, ng = _counted(f)
    xb, xg = brent_max(pb, a, b, rtol=1e-14), golden_max(pg, a, b, rtol=1e-14)
    assert a <= xb <= b
    assert f(xb) >= f(xg) - 1e-12 * max(1.0, abs(f(xg)))
    assert nb[0] < ng[0]


@pytest.mark.parametrize("C, R", [(C, R) for C in ("l1", "l2", "linf") for R in
                                  ("l1", "l2", "linf") if NormPair(C, R).tractable])
def test_batched_dual_norms_equal_the_per_pattern_closed_forms(C, R):
    G = np.random.default_rng(3).standard_normal((9, 4, 3))
    form = NormPair(C, R).rule.form
    assert form in BATCHED_DUAL          # every tractable form has its batched entry
    want = np.array([dual_norm(g, C, R).value for g in G])
    np.testing.assert_allclose(BATCHED_DUAL[form](G, C, R), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("C, R", [("l2", "l2"), ("l2", "l1"), ("l1", "l2")])
def test_the_oracle_batches_without_changing_a_value(C, R):
    bound = _bound(C=C, R=R)
    G = np.random.default_rng(4).standard_normal((bound.P, bound.p, bound.q))
    norms = DualNormOracle(bound)(G)
    assert norms.exact and len(norms.values) == bound.P
    np.testing.assert_allclose(norms.values, [dual_norm(g, C, R).value for g in G],
                               rtol=1e-13, atol=1e-15)


def _dense_quadratic(bound):
    """(G = L^* L, b = L^* Y, ||Y||^2) from L's columns L(e_kab), independently of gram.py."""
    N = bound.P * bound.p * bound.q
    cols = []
    for i in range(N):
        E = np.zeros(N)
        E[i] = 1.0
        cols.append(np.asarray(bound.predict_lifted(E.reshape(bound.P, bound.p, bound.q)))
                    .ravel())
    M, y = np.stack(cols, axis=1), np.asarray(bound.Y, dtype=float).ravel()
    return M.T @ M, M.T @ y, float(y @ y)


@pytest.mark.parametrize("C, R", [("l2", "l2"), ("l2", "l1")])
def test_gram_ranking_equals_the_data_evaluation(C, R):
    """gram_candidate's (F(L Z), -F*(t g)) are the data's, for the squared loss."""
    bound = _bound(C=C, R=R)
    quadratic = _dense_quadratic(bound)
    oracle, samples = DualNormOracle(bound), Samples(bound)
    for seed in range(3):
        Z = 0.3 * np.random.default_rng(seed).standard_normal((bound.P, bound.p, bound.q))
        f, value = gram_candidate(bound, oracle, quadratic, Z)
        yhat = samples.predict(Z)
        direct = scaled_point(bound, oracle, samples.grad(yhat), "direct", samples)
        assert f == pytest.approx(samples.value(yhat), rel=1e-10)
        assert value == pytest.approx(direct.value, rel=1e-9, abs=1e-12)


def test_certificate_through_the_gram_is_valid_and_as_tight():
    """The refinement ranked from the Gram statistics ends at the same bound as on the
    data (to the rounding of the two sums), and the bound stays >= the true gap."""
    bound = _bound(beta=0.02)
    trainer = Trainer(bound, device="cpu", gram=True, warm_start=False, method="newton")
    trainer.fit(max_steps=4, certify=False)
    U, V = trainer.factors()
    G, b, yy = trainer.problem.gram.numpy()
    plain = certify(bound, U, V, refine_iters=200)
    ranked = certify(bound, U, V, refine_iters=200, quadratic=(G, b, yy))
    assert ranked.gap_bound <= plain.gap_bound * (1 + 1e-6) + 1e-12
    pstar = bound.to_cvxpy().solve().value
    p = bound.objective_bm(U, V)
    assert ranked.gap_bound >= (p - pstar) / pstar - 1e-9


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_a_fit_certified_by_its_warm_start_never_makes_the_bm_method(loss):
    """The method (and its torch optimizer) is made at its first use; the result's
    objective, taken from the stopping certificate, is the factors' own."""
    bound = _bound(loss=loss, R="l1", beta=0.02)
    trainer = Trainer(bound, device="cpu", m=bound.q)
    r = trainer.fit(cert_tol=1e-4)
    assert r.stopped == "certificate" and r.steps == 0
    assert trainer._method is None
    assert r.objective == pytest.approx(bound.objective_bm(r.U, r.V), rel=1e-11)
    assert r.objective == pytest.approx(r.loss + r.regularizer, rel=1e-14)
    pstar = bound.to_cvxpy().solve().value
    assert r.certificate.gap_bound >= (r.objective - pstar) / pstar - 1e-9
    stepped = Trainer(bound, device="cpu", m=bound.q, method="lbfgs")
    stepped.fit(max_steps=2, certify=False)
    assert stepped._method is not None and stepped.method is stepped._method


def test_the_plain_point_reuses_g_and_a_hint_at_the_point_costs_nothing(monkeypatch):
    """The certificate's plain candidate takes the adjoint G it already computed, and a
    hint that is the certified point itself (the lifted FISTA's after its L-BFGS phase)
    is not predicted again: one prediction and one adjoint over the samples in all
    (refinement off), and the same bound as without the hint."""
    bound = _bound(loss="cross_entropy")
    gen = np.random.default_rng(3)
    U = gen.standard_normal((bound.P, 3) + tuple(bound.w1_shape))
    V = gen.standard_normal((bound.P, 3) + tuple(bound.w2_shape))
    calls = {"predict": 0, "adjoint": 0}
    for name in calls:
        f = getattr(Samples, name)

        def counted(self, x, _f=f, _n=name):
            calls[_n] += 1
            return _f(self, x)
        monkeypatch.setattr(Samples, name, counted)
    plain = certify(bound, U, V, refine_iters=0)
    assert calls == {"predict": 1, "adjoint": 1}
    hinted = certify(bound, U, V, refine_iters=0, hints=(bound.lift(U, V),))
    assert calls == {"predict": 2, "adjoint": 2}
    assert hinted.gap_bound == plain.gap_bound
    other = certify(bound, U, V, refine_iters=0, hints=(0.5 * bound.lift(U, V),))
    assert calls == {"predict": 4, "adjoint": 4}      # another point: its own ray
    assert other.gap_bound <= plain.gap_bound
