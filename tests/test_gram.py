"""The squared loss through G = L^* L (runtime/gram.py) against the direct evaluation on
the samples: loss, lifted gradient, Gauss-Newton block, line function, chunking, and
training and certifying with it."""
import numpy as np
import pytest
import torch
from test_trainer import ACT, CASES, MLP, case, optimum

import bmdsl
from bmdsl.bind.datasets import spiral
from bmdsl.certificates import certify
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.gram import BlockOperator, Gram, lift


def pair(arch, act):
    """The same bound lowered twice: direct (no Gram) and through the Gram."""
    bound = case(arch, act)
    direct = Trainer(bound, device="cpu", gram=False)
    viagram = Trainer(bound, device="cpu", gram=True)
    assert direct.problem.gram is None and viagram.problem.gram is not None
    return bound, direct.problem, viagram.problem


def factors(problem, m=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    U = torch.randn((problem.P, m) + problem.w1_shape, generator=gen, dtype=torch.float64)
    V = torch.randn((problem.P, m) + problem.w2_shape, generator=gen, dtype=torch.float64)
    return U, V


@pytest.mark.parametrize("arch,act", CASES)
def test_gram_loss_and_gradient_equal_the_direct_ones(arch, act):
    _, direct, viagram = pair(arch, act)
    U, V = factors(direct)
    want = float(direct.loss(U, V))
    assert float(viagram.loss(U, V)) == pytest.approx(want, rel=1e-11, abs=1e-11)
    assert torch.allclose(viagram.lifted_gradient(U, V), direct.lifted_gradient(U, V),
                          rtol=1e-9, atol=1e-9)
    # the objective (what the methods differentiate) and its autograd gradient
    (f1, *g1), (f2, *g2) = (objective_and_gradient(pb, U, V) for pb in (direct, viagram))
    assert f2 == pytest.approx(f1, rel=1e-11)
    for a, b in zip(g1, g2):
        assert torch.allclose(b, a, rtol=1e-8, atol=1e-9)


def objective_and_gradient(problem, U, V):
    U, V = U.clone().requires_grad_(True), V.clone().requires_grad_(True)
    f = problem.objective(U, V)
    gu, gv = torch.autograd.grad(f, (U, V))
    return float(f.detach()), gu, gv


@pytest.mark.parametrize("arch,act", [("mlp", "gated_relu"), ("cnn", "relu"),
                                      ("attention", "linear")])
def test_gauss_newton_block_and_line_function_equal_the_direct_ones(arch, act):
    _, direct, viagram = pair(arch, act)
    U, V = factors(direct, seed=1)
    active = torch.rand(U.shape[:2], generator=torch.Generator().manual_seed(2)) > 0.3
    assert torch.allclose(viagram.gauss_newton(U, V, active),
                          direct.gauss_newton(U, V, active), rtol=1e-9, atol=1e-9)
    dU, dV = factors(direct, seed=3)
    for t in (0.0, 0.3, 2.0):
        assert float(viagram.loss_along(U, V, dU, dV)(t)) == pytest.approx(
            float(direct.loss_along(U, V, dU, dV)(t)), rel=1e-10)


def test_chunked_build_equals_one_pass():
    _, _, viagram = pair("cnn", "gated_relu")
    whole = viagram.gram
    chunked = Gram.build(viagram, chunk=1)          # one sample per chunk
    assert torch.allclose(chunked.GF, whole.GF, rtol=1e-12, atol=1e-12)
    assert torch.allclose(chunked.b, whole.b, rtol=1e-12, atol=1e-12)
    assert chunked.yy == pytest.approx(whole.yy, rel=1e-14)
    Z = lift(*factors(viagram))
    assert float(chunked.loss(Z)) == pytest.approx(float(whole.loss(Z)), rel=1e-12)


def test_gram_is_automatic_only_where_it_is_exact_and_pays():
    bound = case("mlp", "gated_relu")
    assert Trainer(bound, device="cpu").problem.gram is not None             # float64 full
    assert Trainer(bound, device="cpu", dtype="float32").problem.gram is None
    assert Trainer(bound, device="cpu", method="adam", batch_size=4).problem.gram is None


@pytest.mark.parametrize("arch", ["mlp", "attention"])
def test_newton_through_the_gram_reaches_the_optimum_and_certifies(arch):
    bound = case(arch, "gated_relu")
    trainer = Trainer(bound, device="cpu", gram=True)
    result = trainer.fit()
    pstar = optimum(arch, "gated_relu")
    assert result.method == "newton"
    assert abs(result.objective - pstar) <= 1e-6 * max(1.0, abs(pstar))
    cert = result.certificate                        # refined through the same Gram
    true_gap = (result.objective - pstar) / pstar
    assert cert.gap_bound >= true_gap - 1e-9 and cert.gap_bound <= 1e-4


def test_a_wrong_quadratic_can_only_loosen_the_certificate():
    """The bound is always evaluated on the data: a corrupted G gives a valid bound."""
    bound = case("mlp", "gated_relu")
    trainer = Trainer(bound, device="cpu", gram=True)
    trainer.fit(max_steps=5, certify=False)
    U, V = trainer.factors()
    G, b, yy = trainer.problem.gram.numpy()
    wrong = (BlockOperator(G.GF * 3.0, G.index), -b, yy)     # G's block, tripled
    pstar = optimum("mlp", "gated_relu")
    p = bound.objective_bm(U, V)
    for quadratic in (None, wrong):
        cert = certify(bound, U, V, refine_iters=200, quadratic=quadratic)
        assert cert.gap_bound >= (p - pstar) / pstar - 1e-9
    assert np.isfinite(certify(bound, U, V, refine_iters=200, quadratic=wrong).gap_bound)


def test_a_build_over_several_blocks_reuses_no_stale_sums():
    """n = 210 spiral points: 13 blocks of the fixed-order tree, so partial-sum buffers are
    reused (each block's first chunk is written over them, not added); one pass and one
    sample per chunk both give the direct loss and gradient."""
    model = bmdsl.parse(MLP.format(m=5, act=ACT["gated_relu"], C="l2"))
    bound = model.derive().bind(spiral(210, 3, seed=2))
    direct = Trainer(bound, device="cpu", gram=False).problem
    viagram = Trainer(bound, device="cpu", gram=True).problem
    U, V = factors(direct)
    Z = lift(U, V)
    for gram in (viagram.gram, Gram.build(viagram, chunk=1)):
        assert float(gram.loss(Z)) == pytest.approx(float(direct.loss(U, V)), rel=1e-11)
        assert torch.allclose(gram.gradient(Z), direct.lifted_gradient(U, V), rtol=1e-9,
                              atol=1e-9)


def test_the_upper_tiles_give_the_dense_products_gram_exactly_symmetric():
    """The shipped CNN on 16 images: G_F [2592, 2592] is built from its upper triangle in
    row tiles of GRAM_TILE (the last one partial) over 2 blocks of samples; it equals L^T L
    from L's dense matrix (liftedops, one full product per block) and is exactly
    symmetric; one sample per chunk (the tiles added to, not written) gives the same."""
    from pathlib import Path

    from bmdsl.bind.datasets import images
    from bmdsl.trainer.runtime.gram import GRAM_TILE
    from bmdsl.trainer.runtime.liftedops import _Dense
    text = (Path(__file__).resolve().parent.parent / "models" / "cnn.bm").read_text()
    bound = bmdsl.parse(text).derive().bind(dict(images(n=32, seed=0)))
    problem = Trainer(bound, device="cpu", gram=True).problem
    GF = problem.gram.GF
    assert GF.shape[0] % GRAM_TILE and GF.shape[0] > 2 * GRAM_TILE
    assert torch.equal(GF, GF.T)
    dense = _Dense(problem).gram()
    scale = float(dense.abs().max())
    assert torch.allclose(problem.gram.dense(), dense, rtol=0, atol=1e-12 * scale)
    chunked = Gram.build(problem, chunk=1)
    assert torch.allclose(chunked.GF, GF, rtol=0, atol=1e-12 * scale)
    assert torch.equal(chunked.GF, chunked.GF.T)
