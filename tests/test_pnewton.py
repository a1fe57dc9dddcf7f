"""The lifted proximal Newton (runtime/pnewton.py): where it applies (it asks the loss entry
for a Hessian and twice differentiability, never the name), its weighted Gram against an
independent autograd Hessian, and that a loss registered at test time with the capability is
taken by it and reaches CVXPY's p* with a valid certificate. The default fits of the losses
it takes (logistic, cross_entropy) on the small-beta spiral, against p*: test_proxadmm.py."""
import numpy as np
import pytest
import torch

from bmdsl.core import warmfootprint
from bmdsl.cvx import build_problem
from bmdsl.kernel.lossforms import LOSS_KERNELS, CrossEntropy, Logistic, loss_array
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.pnewton import LiftedProxNewton
from test_proxadmm import spiral_bound

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def test_cross_entropy_block_is_the_jacobian_of_its_gradient():
    rng = np.random.default_rng(0)
    yh, y = rng.standard_normal((7, 4)) * 2, np.eye(4)[rng.integers(0, 4, 7)]
    k, h = CrossEntropy(), 1e-6
    fd = np.stack([(k.grad(yh + h * e, y) - k.grad(yh - h * e, y)) / (2 * h)
                   for e in np.eye(4)], -1)          # [n, c (gradient), c (direction)]
    assert np.allclose(k.hessian_block(yh, y), fd, atol=1e-7)


@pytest.mark.parametrize("loss", ["logistic", "cross_entropy"])
def test_weighted_gram_is_L_adjoint_H_L(loss):
    """L^* H L against autograd's Hessian of F(L(z)) in z, at a random point."""
    trainer = Trainer(spiral_bound(loss, "l2", "l2"), device="cpu")
    warm = trainer.warm
    assert isinstance(warm, LiftedProxNewton)
    warm._start()
    z = torch.randn(warm.Z.numel(), generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64) * 0.3
    M, Y = warm.op.M, trainer.problem.Y
    F = lambda v: LOSS_KERNELS[loss]().torch(torch, (M @ v).reshape(Y.shape), Y)  # noqa
    expected = torch.autograd.functional.hessian(F, z)
    got = warm.curvature.weighted_gram(M, (M @ z).reshape(Y.shape))
    assert torch.allclose(got, expected, atol=1e-10 * float(expected.abs().max()))


class TwiceLogistic(Logistic):
    """2 log(1 + exp(-y yhat)): a diagonal Hessian, twice differentiable, no prox."""
    name, doc = "twice_logistic", "2 log(1 + exp(-Y Yhat))"
    torch_prox = None

    def value(self, yh, y):
        return 2 * super().value(yh, y)

    def grad(self, yh, y):
        return 2 * super().grad(yh, y)

    def conjugate(self, v, y):          # (2 f)*(v) = 2 f*(v / 2)
        return 2 * super().conjugate(loss_array(v) / 2, y)

    def scale_domain(self, g, y):
        lo, hi = super().scale_domain(g, y)
        return 2 * lo, 2 * hi

    def hessian_diag(self, yh, y):
        return 2 * super().hessian_diag(yh, y)

    def cvxpy(self, cp, e, y):
        return 2 * super().cvxpy(cp, e, y)

    def torch(self, torch, yh, y):
        return 2 * super().torch(torch, yh, y)


@pytest.fixture
def twice_logistic(monkeypatch):
    monkeypatch.setitem(LOSS_KERNELS, TwiceLogistic.name, TwiceLogistic)
    return TwiceLogistic.name


def test_a_loss_registered_at_test_time_with_a_hessian_takes_it(twice_logistic, monkeypatch):
    import bmdsl
    from bmdsl.bind.datasets import spiral
    from model_texts import mlp
    d = dict(spiral(45, 3, seed=2))
    d["Y"] = np.where(d["Y"][:, :1] > 0.5, 1.0, -1.0)
    text = mlp(m=5, activation="gated_relu(patterns = 12, seed = 0)", loss=twice_logistic,
               regularize="beta = 1e-3, C = l2, R = l1")
    bound = bmdsl.parse(text).derive().bind(d)
    trainer = Trainer(bound, device="cpu")
    assert isinstance(trainer.warm, LiftedProxNewton)
    result = trainer.fit()
    assert result.warm_start["method"] == "lifted proximal Newton"
    pstar = build_problem(bound).solve().value
    true_gap = (result.objective - pstar) / pstar
    assert abs(true_gap) <= 1e-6
    assert true_gap - 1e-8 <= result.certificate.gap_bound <= 1e-4
    # without the declared Hessian the same loss is refused, with the reason
    monkeypatch.setattr(TwiceLogistic, "hessian_diag", None)
    why = LiftedProxNewton.accepts(trainer.problem, trainer.m)
    assert "a loss without a declared Hessian" in why


def test_refusals_say_why():
    huber = Trainer(spiral_bound("huber", "l2", "l2"), device="cpu")
    assert "not twice differentiable" in LiftedProxNewton.accepts(huber.problem, huber.m)
    squared = Trainer(spiral_bound("squared", "l2", "l2"), device="cpu")
    assert "a quadratic one" in LiftedProxNewton.accepts(squared.problem, squared.m)


def test_the_memory_estimate_covers_what_it_builds():
    trainer = Trainer(spiral_bound("cross_entropy", "l2", "l1"), device="cpu")
    warm = trainer.warm
    estimate = warmfootprint.warm_start("LiftedProxNewton", trainer.problem).nbytes
    warm.run(1)
    N = warm.Z.numel()
    built = warm.op.M.numel() + 3 * N * N + 2 * warm.admm.inverse.numel() + 4 * N
    assert estimate >= built * 8
