"""The fused prediction (runtime/fused.py) against the generic einsum path of (14)/(18):
same Yhat and gradients in float64, tiled and threaded, on mini-batches, for other axis
orders and coefficients; models of another form fall back and stay correct."""
import numpy as np
import pytest
import torch
from test_trainer import case

import bmdsl
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.fused import fused_plan

# a layer and output with permuted axes, several w1 / w2 axes and a coefficient: X's axes
# must be reordered to (a, w1) and Yhat^T's to y
PERMUTED = """model permuted
input X[n, e, d]
target Y[n, f, c]
units m = 3
weights W1[d, e], W2[c, f]
layer A[n] = 2 * X[n, j, i] * W1[i, j]
output Yhat[n, g, o] = act(A)[n] * W2[o, g]
activation gated_relu(patterns = 5, seed = 0)
loss squared
regularize beta = 1e-2, C = l2, R = l2
"""


pytestmark = pytest.mark.usefixtures("two_torch_threads")   # conftest.py


def problem(bound):
    return Trainer(bound, method="adam", progress=False).problem


def factors(pb, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    U = torch.randn((pb.P, m) + pb.w1_shape, generator=g, dtype=torch.float64)
    V = torch.randn((pb.P, m) + pb.w2_shape, generator=g, dtype=torch.float64)
    return U.requires_grad_(True), V.requires_grad_(True)


def generic(pb, U, V, arrays=None):
    return pb.output(pb.activate(pb.pre_activation(U, arrays), arrays), V, arrays)


def value_and_grads(predict, U, V, W):
    """Yhat and the gradients of a loss that weights every entry differently."""
    Yhat = predict(U, V)
    return (Yhat.detach(), *torch.autograd.grad((W * Yhat ** 2).sum(), (U, V)))


def assert_same(pb, U, V, arrays=None):
    Yref = generic(pb, U, V, arrays)
    W = torch.rand(Yref.shape, generator=torch.Generator().manual_seed(1), dtype=Yref.dtype)
    want = value_and_grads(lambda u, v: generic(pb, u, v, arrays), U, V, W)
    got = value_and_grads(lambda u, v: pb.predict(u, v, arrays), U, V, W)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert torch.allclose(g, w, rtol=1e-10, atol=1e-10 * float(w.abs().max()))


@pytest.mark.parametrize("act", ["gated_relu", "relu", "linear"])
@pytest.mark.parametrize("block,workers", [(None, None), (4, None), (4, 1), (5, 3)])
def test_mlp_prediction_and_gradients_equal_the_generic_path(act, block, workers):
    pb = problem(case("mlp", act))
    assert pb.fused is not None
    pb.fused.block, pb.fused.workers = block, workers   # tiles of 4: last one partial
    assert_same(pb, *factors(pb, 3))


def test_gradcheck_of_the_tiled_threaded_backward():
    pb = problem(case("mlp", "gated_relu"))
    pb.fused.block = 4
    U, V = factors(pb, 2)
    assert torch.autograd.gradcheck(lambda u, v: pb.predict(u, v), (U, V))


def test_torch_threads_are_restored_after_the_workers():
    pb = problem(case("mlp", "gated_relu"))
    pb.fused.block = 4
    U, V = factors(pb, 2)
    pb.predict(U, V).sum().backward()
    assert torch.get_num_threads() == 2


def test_gradient_of_one_factor_only():
    pb = problem(case("mlp", "gated_relu"))
    pb.fused.block = 4
    U, V = factors(pb, 2)
    U.requires_grad_(False)
    (gv,) = torch.autograd.grad(pb.predict(U, V).pow(2).sum(), V)
    (want,) = torch.autograd.grad(generic(pb, U, V).pow(2).sum(), V)
    assert torch.allclose(gv, want, rtol=1e-12)


def test_recycled_tiles_are_never_read_by_another_graph():
    """The tile buffer returns to the plan only when its graph is freed: two live graphs,
    a retained graph differentiated twice, and the reuse after a freed graph."""
    pb = problem(case("mlp", "gated_relu"))
    pb.fused.block = 4
    U, V = factors(pb, 2)
    U2, V2 = (2 * U).detach().requires_grad_(True), (-V).detach().requires_grad_(True)
    first, second = pb.predict(U, V).pow(2).sum(), pb.predict(U2, V2).pow(2).sum()
    g1 = torch.autograd.grad(first, (U, V), retain_graph=True)
    g2 = torch.autograd.grad(second, (U2, V2))
    again = torch.autograd.grad(first, (U, V))
    for got, u, v in ((g1, U, V), (g2, U2, V2), (again, U, V)):
        want = torch.autograd.grad(generic(pb, u, v).pow(2).sum(), (u, v))
        assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(got, want))
    del first, second
    spare = pb.fused.spare
    assert spare is not None
    loss = pb.predict(U, V).pow(2).sum()
    assert pb.fused.spare is None              # leased to the live graph
    loss.backward()
    del loss
    assert pb.fused.spare is spare             # and back


def test_mini_batch_slices_data_and_masks():
    pb = problem(case("mlp", "gated_relu"))
    pb.fused.block = 4
    idx = torch.tensor([11, 0, 3, 7, 2, 13])
    U, V = factors(pb, 3)
    batch = pb.batch(idx)
    assert_same(pb, U, V, batch)
    full = pb.predict(U, V)
    assert torch.allclose(pb.predict(U, V, batch), full[idx], rtol=1e-12)


def test_permuted_axes_and_coefficient():
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((9, 2, 3)), "Y": rng.standard_normal((9, 2, 2))}
    bound = bmdsl.parse(PERMUTED).derive().bind(data)
    pb = problem(bound)
    assert pb.fused is not None and pb.fused.coef == 2.0
    assert pb.fused.t_perm != (0, 1, 2) and pb.fused.y_perm != (0, 1, 2)
    pb.fused.block = 4
    U, V = factors(pb, 3)
    assert_same(pb, U, V)
    want = bound.predict_bm(U.detach().numpy(), V.detach().numpy())
    assert np.allclose(pb.predict(U, V).detach().numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("arch", ["cnn", "attention"])
@pytest.mark.parametrize("act", ["gated_relu", "relu"])
def test_other_forms_fall_back_and_stay_correct(arch, act):
    bound = case(arch, act)
    pb = problem(bound)
    assert pb.fused is None
    U, V = factors(pb, 2)
    want = bound.predict_bm(U.detach().numpy(), V.detach().numpy())
    assert np.allclose(pb.predict(U, V).detach().numpy(), want, rtol=1e-12)


def test_plan_refuses_what_is_not_an_outer_product():
    spec = {"layer": ((1.0, (("X", ("i0", "i1")), ("W1", ("i1",))), ("i0",)),),
            "output": ((1.0, (("H", ("i0",)), ("W2", ("i1",))), ("i0", "i1")),)}
    shapes = {"w1": (3,), "w2": (2,), "a": (5,), "y": (5, 2)}
    assert fused_plan(spec, shapes) is not None
    contracted = dict(spec, output=((1.0, (("H", ("i0",)), ("W2", ("i0",))), ()),))
    two_terms = dict(spec, layer=spec["layer"] * 2)
    data_twice = dict(spec, layer=((1.0, (("X", ("i0", "i1")), ("W1", ("i1",)),
                                          ("X", ("i0", "i1"))), ("i0",)),))
    partial = dict(spec, layer=((1.0, (("X", ("i0", "i1", "i2")), ("W1", ("i1",))),
                                 ("i0",)),))
    for bad in (contracted, two_terms, data_twice, partial):
        assert fused_plan(bad, shapes) is None


def test_adam_with_mini_batches_follows_the_generic_path():
    """A few mini-batch steps (ReLU: the augmented Lagrangian's slack is unaffected)."""
    ends = []
    for fused in (True, False):
        t = Trainer(case("mlp", "relu"), method="adam", batch_size=5, progress=False)
        if not fused:
            t.problem.fused = None
        t.fit(8, tol=0, certify=False)
        ends.append(t.factors())
    for a, b in zip(*ends):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-12)
