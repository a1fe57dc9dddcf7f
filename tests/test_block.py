"""The non-quadratic losses through L's block over the free outputs (runtime/kronops.py:
L = F (x) I_c): its forward and adjoint against L's dense matrix, the metric B (x) G_F's
inverse against a dense solve, the lifted prox ADMM, FISTA and majorization through it
against CVXPY's p* on multi-output models, and a loss registered at test time with only
a declared curvature bound (Bohning's kind of bound) taken by the majorization."""
import numpy as np
import pytest
import torch
from test_default_grid import bound_for, optimum
from test_kron import QuarterSquared, check

from bmdsl.kernel.lossforms import LOSS_KERNELS
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.kronops import KronL, kron_form
from bmdsl.trainer.runtime.liftedops import _Dense
from bmdsl.trainer.runtime.majorize import KronMetric, LiftedMajorized
from bmdsl.trainer.runtime.proxadmm import LiftedProxADMM
from bmdsl.trainer.runtime.proxgrad import LiftedFISTA

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.mark.parametrize("arch", ["mlp", "cnn", "attention"])
def test_block_forward_and_adjoint_are_the_dense_ones(arch, block_form):
    bound = bound_for(arch, "gated_relu", "cross_entropy", "l2", "l2")
    pb = Trainer(bound, device="cpu", warm_start=False).problem
    assert pb.free_outputs > 1 and kron_form(pb)
    block, dense = KronL(pb), _Dense(pb)
    gen = torch.Generator().manual_seed(0)
    Z = torch.randn((pb.P, pb.p, pb.q), generator=gen, dtype=torch.float64)
    g = torch.randn(pb.Y.shape, generator=gen, dtype=torch.float64)
    assert torch.allclose(block.forward(Z), dense.forward(Z), rtol=1e-12, atol=1e-12)
    assert torch.allclose(block.adjoint(g), dense.adjoint(g), rtol=1e-12, atol=1e-12)
    assert block.value_adjoint(block.forward(Z))[0] == pytest.approx(
        dense.value_adjoint(dense.forward(Z))[0], rel=1e-13)
    assert not torch.allclose(block.forward(Z), torch.zeros_like(g))


def test_the_metric_inverse_is_the_dense_solve():
    gen = torch.Generator().manual_seed(1)
    A = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    GF, c = A @ A.T, 3                         # rank 5 of 7: singular, as G_F may be
    B = torch.as_tensor(LOSS_KERNELS["cross_entropy"]().curvature_bound(c))
    X = torch.randn(7, c, generator=gen, dtype=torch.float64)
    metric = KronMetric(GF, B)
    inverse, rho = metric.inverse(0.3)
    assert rho == 0.3
    # vec(X) with the c outputs as column blocks: (B (x) G_F) vec(X) = vec(G_F X B)
    dense = torch.kron(B, GF) + rho * torch.eye(7 * c, dtype=torch.float64)
    want = torch.linalg.solve(dense, X.T.reshape(-1)).reshape(c, 7).T
    assert torch.allclose(inverse @ X, want, rtol=1e-10, atol=1e-12)
    assert torch.allclose(metric.apply(X).T.reshape(-1),
                          torch.kron(B, GF) @ X.T.reshape(-1), rtol=1e-12, atol=1e-12)


@pytest.fixture
def block_form(monkeypatch):
    """L's dense matrix "too large" (liftedops.DENSE_MAX = 0): the tiny models take F's
    blocks (kronops.kron_form), as the n = 2000 CNN and the digits CNN do."""
    from bmdsl.core import warmfootprint
    from bmdsl.trainer.runtime import liftedops
    monkeypatch.setattr(liftedops, "DENSE_MAX", 0)
    monkeypatch.setattr(warmfootprint, "LIFTED_DENSE_MAX", 0)


def _solved_by(solver, arch, C, R):
    trainer = Trainer(bound_for(arch, "gated_relu", "cross_entropy", C, R), device="cpu",
                      warm_start=False)
    trainer.warm = warm = solver.of(trainer.problem)
    result = trainer.fit()
    assert result.warm_start["failed"] is None
    operator = warm.op if hasattr(warm, "op") else warm.smooth
    assert isinstance(operator, KronL) and operator.c > 1        # through the block
    check(result, optimum(arch, "gated_relu", "cross_entropy", C, R))
    return warm


# the prox ADMM on the spiral with (l2, l1) is left out: 12 700 iterations, 27-42 s (as
# through L's dense matrix); the default gives that cell to the proximal Newton
@pytest.mark.parametrize("solver,arch,C,R", [
    (LiftedProxADMM, "mlp", "l2", "l2"), (LiftedProxADMM, "cnn", "l2", "l2"),
    (LiftedProxADMM, "cnn", "l2", "l1"), (LiftedFISTA, "mlp", "l2", "l2"),
    (LiftedFISTA, "mlp", "l2", "l1"), (LiftedFISTA, "cnn", "l2", "l2"),
    (LiftedFISTA, "cnn", "l2", "l1")])
def test_block_first_order_starts_reach_pstar_with_cross_entropy(solver, arch, C, R,
                                                                 block_form):
    warm = _solved_by(solver, arch, C, R)
    if solver is LiftedProxADMM:          # (G_F + eta I)^{-1}: the block's size, not N's
        assert warm.K.shape[0] == warm.op.nf < warm.op.N


@pytest.mark.parametrize("C,R", [("l2", "l2"), ("l2", "l1")])
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_bohning_majorization_reaches_pstar_with_cross_entropy(arch, C, R):
    warm = _solved_by(LiftedMajorized, arch, C, R)
    c = warm.op.c
    assert torch.allclose(warm.B, 0.5 * (torch.eye(c, dtype=torch.float64) - 1.0 / c))


class BoundedQuarterSquared(QuarterSquared):
    """1/4 ||Yhat - Y||^2 declaring a curvature bound B = 1/2 I per sample (its Hessian),
    and neither a smoothness, a Hessian nor a prox."""
    name, smoothness = "bounded_quarter_squared", None

    def curvature_bound(self, c):
        return 0.5 * np.eye(c)


def test_a_loss_with_a_declared_curvature_bound_takes_the_majorization(monkeypatch):
    monkeypatch.setitem(LOSS_KERNELS, BoundedQuarterSquared.name, BoundedQuarterSquared)
    bound = bound_for("mlp", "gated_relu", BoundedQuarterSquared.name, "l2", "l2")
    pstar = optimum("mlp", "gated_relu", BoundedQuarterSquared.name, "l2", "l2")
    optimum.cache_clear()      # the name may be registered otherwise in another test
    trainer = Trainer(bound, device="cpu")
    assert isinstance(trainer.warm, LiftedMajorized)
    result = trainer.fit()
    assert result.warm_start["method"] == "lifted majorization"
    assert result.warm_start["smoothness"] == pytest.approx(0.5)
    check(result, pstar)
