"""The Gram path block-diagonal over the free outputs (G = L^* L = I_c (x) G_F, runtime/gram.py)
against the dense L built independently (the bound's adjoint of each unit vector), the
lifted ADMM through the block and the lifted majorization (runtime/majorize.py) against
CVXPY's p* on small multi-output models, a loss registered at test time with only a
declared smoothness, and the majorization's refusals."""
import numpy as np
import pytest
import torch
from test_default_grid import bound_for, optimum
from test_interior_losses import HalfSquared

from bmdsl.kernel.lossforms import LOSS_KERNELS
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.gram import free_outputs
from bmdsl.trainer.runtime.majorize import LiftedMajorized

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def dense_L(bound):
    """L [|y|, P p q] row by row: row r is L^*(e_r) (the bound's adjoint, eq. (20))."""
    ny = int(np.prod(bound.Y.shape))
    rows = []
    for r in range(ny):
        e = np.zeros(ny)
        e[r] = 1.0
        rows.append(np.asarray(bound.adjoint(e.reshape(bound.Y.shape))).reshape(-1))
    return np.array(rows)


@pytest.mark.parametrize("arch", ["mlp", "cnn", "attention"])
def test_block_gram_is_the_dense_grams_diagonal_block_and_zero_elsewhere(arch):
    bound = bound_for(arch, "gated_relu", "squared", "l2", "l2")
    gram = Trainer(bound, device="cpu", gram=True, warm_start=False).problem.gram
    assert gram.c == int(bound.Y.shape[-1]) > 1         # the class axis is free everywhere
    L = dense_L(bound)
    G, b = L.T @ L, L.T @ np.asarray(bound.Y).reshape(-1)
    index, GF = gram.index.numpy(), gram.GF.numpy()
    for o in range(gram.c):
        for o2 in range(gram.c):
            block = G[np.ix_(index[:, o], index[:, o2])]
            if o == o2:
                assert np.allclose(block, GF, rtol=1e-12, atol=1e-12)
            else:
                assert np.abs(block).max() <= 1e-14 * max(1.0, np.abs(G).max())
    assert np.allclose(gram.b.numpy(), b, rtol=1e-12, atol=1e-12)
    assert gram.yy == pytest.approx(float(np.sum(np.asarray(bound.Y) ** 2)), rel=1e-14)
    # the certificates' operator: G @ z without the [N, N] matrix
    z = np.random.default_rng(0).standard_normal(G.shape[0])
    assert np.allclose(gram.numpy()[0] @ z, G @ z, rtol=1e-12, atol=1e-12)


def test_no_free_output_where_the_output_index_meets_the_data():
    spec = {"output": ((1.0, (("H", ("n", "t")), ("X", ("n", "t", "o")), ("W2", ("o",))),
                        ("n", "o")),)}
    assert free_outputs(spec) == ()           # o is in X: L couples the outputs
    spec = {"output": ((1.0, (("H", ("n",)), ("W2", ("o",))), ("n", "o")),)}
    assert free_outputs(spec) == ((0, 1),)


def check(result, pstar):
    true_gap = (result.objective - pstar) / pstar
    assert abs(true_gap) <= 1e-6
    assert true_gap - 1e-8 <= result.certificate.gap_bound <= 1e-4


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_lifted_admm_through_the_block_reaches_pstar(arch):
    bound = bound_for(arch, "gated_relu", "squared", "l2", "l2")
    trainer = Trainer(bound, device="cpu")
    assert trainer.problem.gram.c > 1 and trainer.warm.name == "admm"
    result = trainer.fit()
    assert result.warm_start["method"] == "lifted ADMM"
    check(result, optimum(arch, "gated_relu", "squared", "l2", "l2"))


def majorized(bound):
    """The majorization set by hand (auto leaves cross_entropy to the proximal Newton or
    the FISTA, measured faster; it still solves it)."""
    trainer = Trainer(bound, device="cpu", warm_start=False)
    trainer.warm = LiftedMajorized.of(trainer.problem)
    return trainer


@pytest.mark.parametrize("arch,loss,C,R", [
    ("mlp", "huber", "l2", "l2"), ("cnn", "cross_entropy", "l2", "l1"),
    ("cnn", "huber", "l2", "l2"), ("attention", "huber", "l2", "l1")])
def test_majorization_reaches_pstar(arch, loss, C, R):
    trainer = majorized(bound_for(arch, "gated_relu", loss, C, R))
    result = trainer.fit()
    assert result.warm_start["method"] == "lifted majorization"
    assert result.warm_start["failed"] is None
    check(result, optimum(arch, "gated_relu", loss, C, R))


class QuarterSquared(HalfSquared):
    """1/4 ||Yhat - Y||^2 declaring only its value, gradient, conjugate and smoothness (no
    Hessian, no prox, not `quadratic`): no other lifted solver takes it."""
    name, smoothness = "quarter_squared", 0.5
    hessian_diag = torch_prox = None


def test_a_loss_with_a_declared_smoothness_takes_the_majorization(monkeypatch):
    monkeypatch.setitem(LOSS_KERNELS, QuarterSquared.name, QuarterSquared)
    bound = bound_for("cnn", "gated_relu", "quarter_squared", "l2", "l2")
    pstar = optimum("cnn", "gated_relu", "quarter_squared", "l2", "l2")
    optimum.cache_clear()      # the name may be registered otherwise in another test
    result = Trainer(bound, device="cpu").fit()
    assert result.warm_start["method"] == "lifted majorization"
    check(result, pstar)
    half = optimum("cnn", "gated_relu", "squared", "l2", "l2")
    assert abs(pstar - half) > 1e-3 * abs(half)     # not the squared loss in disguise


def test_majorization_refusals_say_why(monkeypatch):
    class Undeclared(QuarterSquared):
        name, smoothness = "undeclared_smoothness", None
    monkeypatch.setitem(LOSS_KERNELS, Undeclared.name, Undeclared)
    trainer = Trainer(bound_for("mlp", "gated_relu", "huber", "l2", "l2"), device="cpu",
                      warm_start=False)
    pb = trainer.problem
    assert LiftedMajorized.accepts(pb, 2) is None
    pb.spec = dict(pb.spec, loss=Undeclared.name)
    assert "declared smoothness" in LiftedMajorized.accepts(pb, 2)
    pb.spec = dict(pb.spec, loss="cross_entropy")
    assert "twice-differentiable loss with a declared Hessian" in LiftedMajorized.accepts(pb, 2)
    pb.spec = dict(pb.spec, loss="huber")
    pb.sharded = True
    assert "one shard of --nproc > 1" in LiftedMajorized.accepts(pb, 2)
    pb.sharded = False
    pb.cone = True
    assert "ReLU cones" in LiftedMajorized.accepts(pb, 2)
    pb.cone = False
    pb.P = 10 ** 6
    assert "G_F dense" in LiftedMajorized.accepts(pb, 2)
    assert torch.get_num_threads() >= 1
