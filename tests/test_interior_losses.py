"""The cone interior point with every loss whose entry declares a diagonal Hessian
(runtime/smoothloss.py): a scalar ReLU MLP with the logistic and the Huber loss, (l2, l2)
and (l2, l1) (both exact with q = 1, Pilanci & Ergen 2020, eq. (5)), trained by the
default fit against CVXPY's optimum on the same patterns; a loss registered at test time;
the losses it refuses, and why."""
import re
from pathlib import Path

import numpy as np
import pytest

import bmdsl
from bmdsl.kernel.lossforms import LOSS_KERNELS, Squared
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.interior import ConeInteriorPoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py
RELU = (Path(__file__).resolve().parent.parent / "models" / "relu.bm").read_text()
# Clarabel's defaults stop ~4e-6 above p* with the logistic loss's exponential cones, and
# 500 iterations with its default regularization left a logistic case 1.7e-6 above p*
TIGHT = dict(tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=2000,
             static_regularization_constant=1e-12)


def relu_case(loss, R="l2", seed=1, beta=1e-2, bias="", n=30):
    """n = 30 by default, d = 2, 40 sampled patterns; a ReLU teacher with noise (labels: its sign
    around the median for the logistic loss)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    Y = np.maximum(X @ rng.standard_normal((2, 3)), 0) @ rng.standard_normal(3)
    Y = Y + 0.3 * rng.standard_normal(n)
    if LOSS_KERNELS[loss].metrics == ("sign_accuracy",):
        Y = np.where(Y > np.median(Y), 1.0, -1.0)
    text = re.sub(r"loss\s+squared", f"loss {loss}", RELU)
    text = text.replace("beta = 1e-2", f"beta = {beta}").replace("patterns = 50",
                                                                 "patterns = 40")
    text = text.replace("R = l2", f"R = {R}") + bias
    assert f"loss {loss}" in text and "patterns = 40" in text   # the model file changed?
    return bmdsl.parse(text).derive().bind({"X": X, "Y": Y})


@pytest.mark.parametrize("loss,R,seed", [("logistic", "l2", 1), ("logistic", "l1", 2),
                                         ("huber", "l2", 1), ("huber", "l1", 0)])
def test_default_fit_reaches_p_star_and_certifies_it(loss, R, seed):
    bound = relu_case(loss, R, seed)
    pstar = bound.to_cvxpy().solve(**TIGHT).value
    trainer = Trainer(bound, device="cpu")
    assert isinstance(trainer.warm, ConeInteriorPoint)
    result = trainer.fit()
    assert result.warm_start["method"] == "interior point" and result.steps == 0
    assert abs(result.objective - pstar) <= 1e-6 * abs(pstar)
    assert result.violation <= 1e-12                    # an ordinary ReLU network
    gap = (result.objective - pstar) / abs(pstar)
    assert gap - 1e-12 <= result.certificate.gap_bound <= 1e-4


def test_dense_and_woodbury_systems_agree_with_a_diagonal_hessian():
    bound = relu_case("logistic")
    values = []
    for dense in (True, False):
        ip = ConeInteriorPoint(Trainer(bound, device="cpu", warm_start=False).problem, dense)
        assert ip.run(ip.MAX_ITER) and ip.dense == dense
        values.append(ip.objective())
    assert values[0] == pytest.approx(values[1], rel=1e-8)


def test_declared_hessian_diagonals_match_the_gradients():
    """hessian_diag against a central difference of grad, entry by entry (away from
    Huber's kinks at |r| = delta)."""
    rng = np.random.default_rng(0)
    for name, kernel in LOSS_KERNELS.items():
        if kernel.hessian_diag is None:
            continue
        k = kernel()
        yh = rng.standard_normal(50) * 2
        y = np.where(rng.standard_normal(50) > 0, 1.0, -1.0)
        h = 1e-6
        fd = (k.grad(yh + h, y) - k.grad(yh - h, y)) / (2 * h)
        away = np.abs(np.abs(yh - y) - getattr(k, "delta", np.inf)) > 1e-3
        assert np.allclose(k.hessian_diag(yh, y)[away], fd[away], atol=1e-6), name


class HalfSquared(Squared):
    """1/4 ||Yhat - Y||^2: not `quadratic` (that means exactly 1/2 ||.||^2), a diagonal
    Hessian of 1/2."""
    name, doc, quadratic = "half_squared", "0.25 ||Yhat - Y||^2", False

    def value(self, yh, y):
        return 0.5 * super().value(yh, y)

    def terms(self, yh, y):     # the registry's contract: terms sum to value
        return 0.5 * super().terms(yh, y)

    def grad(self, yh, y):
        return 0.5 * super().grad(yh, y)

    def conjugate(self, v, y):
        return super().conjugate(2 * np.asarray(v), y) / 2

    def closed_form_scale(self, g, y, lo, hi):
        return 2 * super().closed_form_scale(g, y, lo / 2, hi / 2)

    def hessian_diag(self, yh, y):
        return 0.5 * super().hessian_diag(yh, y)

    def cvxpy(self, cp, e, y):
        return 0.5 * super().cvxpy(cp, e, y)

    def torch(self, torch, yh, y):
        return 0.5 * super().torch(torch, yh, y)


@pytest.fixture
def half_squared():
    LOSS_KERNELS[HalfSquared.name] = HalfSquared
    yield HalfSquared.name
    del LOSS_KERNELS[HalfSquared.name]


def test_a_loss_registered_at_test_time_takes_the_interior_point(half_squared):
    bound = relu_case(half_squared)
    pstar = bound.to_cvxpy().solve(**TIGHT).value
    trainer = Trainer(bound, device="cpu")
    assert isinstance(trainer.warm, ConeInteriorPoint) and not trainer.warm.loss.quadratic
    result = trainer.fit()
    assert result.steps == 0 and abs(result.objective - pstar) <= 1e-6 * abs(pstar)
    assert (result.objective - pstar) / pstar - 1e-12 <= result.certificate.gap_bound <= 1e-4


@pytest.mark.parametrize("change", ["no hessian", "output bias"])
def test_losses_it_refuses_say_why(change):
    if change == "output bias":        # F_b's Hessian is the centering projection
        bound = relu_case("logistic", bias="bias output\n")
        want = "output offset"
    else:                              # a loss whose entry declares no hessian_diag
        bound = relu_case("logistic")
        want = "diagonal Hessian"
    trainer = Trainer(bound, device="cpu", warm_start=False)
    if change == "no hessian":
        trainer.problem.spec = dict(trainer.problem.spec, loss="cross_entropy")
    why = ConeInteriorPoint.accepts(trainer.problem, trainer.m)
    assert why is not None and want in why


def _sharded_fit(recipe):
    """In each rank: the default fit on this rank's shard."""
    from bmdsl.trainer import launch
    from bmdsl.trainer.sharded import DistributedTrainer
    r = DistributedTrainer(launch.rebind(recipe), device="cpu", progress=False).fit()
    return r.objective, r.certificate.gap_bound, r.warm_start["method"]


def test_two_processes_reach_the_one_process_objective_with_logistic():
    """The logistic loss's value, gradient and Hessian summed over shards (smoothloss.py):
    2 processes end where one does (n = 40: shards hold whole blocks of at least 16
    samples, trainer/distributed.py)."""
    from bmdsl.trainer import launch
    bound = relu_case("logistic", n=40)
    one = Trainer(bound, device="cpu", progress=False).fit()
    many = launch.spawn(_sharded_fit, 2, (launch.recipe(bound),), timeout=60)
    assert many[2] == "interior point" == one.warm_start["method"]
    assert abs(many[0] - one.objective) <= 1e-10 * abs(one.objective)
    assert 0 <= many[1] <= 1e-4
