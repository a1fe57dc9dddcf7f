"""Degenerate data found by the independent grid (bench/check_grid.py,
bench/check_degenerate.py), in float64 against CVXPY's p*: an all-zero target (p* = 0 at
Z = 0, certified with a gap of 0), one input feature with the logistic loss (the proximal
Newton's block Hessian), and the l1-ball projection of the certificate's refinement far
from the ball (|x| ~ 1e16)."""
import warnings

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.certificates import certify
from bmdsl.certificates.prox import _project_l1_ball, project_simplex
from bmdsl.certificates.result import relative_gap
from bmdsl.trainer.certificate import fallback
from bmdsl.trainer.runtime.dprox import _project_l1_ball as torch_project_l1_ball

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def _bound(n, d, c, loss="squared", act="gated_relu", Y=None, seed=101):
    model = bmdsl.load("mlp").with_activation(act, None if act == "linear" else 3, seed)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if Y is None:
        Y = np.sign(rng.standard_normal((n, c)))
    return model.with_loss(loss).derive().bind({"X": X, "Y": Y})


def test_zero_target_is_optimal_with_a_zero_gap():
    # p = d = 0 pins p = p* = 0: the bound is 0, not "vacuous" (it was inf, and the fit
    # reported "cert_tol not reached" at the exact optimum Z = 0)
    bound = _bound(7, 5, 3, Y=np.zeros((7, 3)))
    assert bound.to_cvxpy().solve().value == pytest.approx(0.0, abs=1e-9)
    result = bound.to_torch(device="cpu", progress=False).fit(cert_tol=1e-6)
    assert result.objective == 0.0 and result.certificate.gap_bound == 0.0
    assert result.cert_tol_reached and result.status == "finished"
    zero = np.zeros_like(result.U), np.zeros_like(result.V)
    assert fallback(bound, *zero).gap_bound == 0.0          # the stand-alone fallback too
    assert certify(bound, np.ones_like(zero[0]), np.ones_like(zero[1])).vacuous   # p > d = 0
    assert relative_gap(1e-300, 0.0) == np.inf and relative_gap(2.0, 1.0) == 1.0


def test_logistic_with_one_input_feature_matches_cvxpy():
    # d = 1 makes the block Hessian's diagonal blocks 1 x 1: mirroring one onto itself was
    # a RuntimeError (overlapping memory) in the lifted proximal Newton warm start
    bound = _bound(9, 1, 3, loss="logistic", act="linear")
    p_star = bound.to_cvxpy().solve().value
    result = bound.to_torch(device="cpu", progress=False).fit(cert_tol=1e-6)
    assert result.warm_start["failed"] is None
    assert result.objective == pytest.approx(p_star, rel=1e-6)
    assert result.cert_tol_reached
    assert result.certificate.gap_bound >= (result.objective - p_star) / p_star - 1e-7


@pytest.mark.parametrize("scale", [1e-3, 1.0, 2.5e16, 1e300])
def test_l1_ball_projection_far_from_the_ball(scale):
    # the prefix test b_(1) - (b_(1) - 1) > 0 rounded to 0 at 2.5e16: rho = 0, tau = 0/0
    x = np.random.default_rng(3).standard_normal((4, 7)) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = _project_l1_ball(x)
    assert np.isfinite(P).all()
    assert np.abs(P).sum(-1) == pytest.approx(np.minimum(np.abs(x).sum(-1), 1.0), rel=1e-12)
    if scale > 1:       # far outside: the ball's vertex at the largest entry
        top = np.argmax(np.abs(x), axis=-1)
        assert np.allclose(P, np.sign(x) * np.eye(7)[top])
    assert np.allclose(torch_project_l1_ball(torch.tensor(x)).numpy(), P, rtol=0, atol=1e-12)
    assert np.allclose(project_simplex(np.abs(x) + 7.0), project_simplex(np.abs(x)))


def test_cross_entropy_needs_a_class_axis():
    # a target declared Y[n] has no class axis: softmax over the last axis took the samples
    # as classes (a meaningless program at n > 2, an IndexError in fit at n <= 2)
    model = bmdsl.load("relu").with_activation("gated_relu", 3, 101).with_loss("cross_entropy")
    rng = np.random.default_rng(101)
    for n in (2, 9):
        data = {"X": rng.standard_normal((n, 5)), "Y": np.eye(n)[0]}
        with pytest.raises(bmdsl.DataError, match="class axis"):
            model.derive().bind(data)
