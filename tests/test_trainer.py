"""The torch trainer (bmdsl/trainer, docs/trainer.md): BM value = convex optimum for the 9
architecture x activation cases, network export, cones, certificate, methods, devices."""
import functools

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.cvx import build_problem
from bmdsl.bind.datasets import images, sequences, spiral, spiral_scalar
from bmdsl.derive.patterns import PatternSet, masks_from_gates
from bmdsl.trainer import Trainer, TrainerError
from model_texts import attention, cnn, mlp, regularize

MLP = mlp(m="{m}", activation="{act}", loss="squared", regularize=regularize("1e-2", "{C}"))
CNN = cnn(m="{m}", kernel=2, padding=0, pool="global", activation="{act}", loss="squared",
          regularize=regularize("1e-2", "{C}"))
ATTENTION = attention(m="{m}", activation="{act}", loss="squared",
                      regularize=regularize("1e-2", "{C}"))
ACT = {"linear": "linear", "gated_relu": "gated_relu(patterns = 6, seed = 0)",
       "relu": "relu(patterns = 6, seed = 0)"}
CASES = [(a, s) for a in ("mlp", "cnn", "attention") for s in ("linear", "gated_relu", "relu")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def data_for(arch, act, seed=1):
    """Tiny float64 data; the ReLU cases have q = 1, where the convex program is exact."""
    relu = act == "relu"
    if arch == "mlp":
        if relu:
            d = spiral_scalar(16, seed=seed)
            return {"X": d["X"], "Y": d["Y"][:, None]}, 2, 1
        return spiral(15, 3, seed=seed), 2, 3
    if arch == "cnn":
        d = images(n=6, channels=1, height=3, width=3, classes=2, seed=seed)
        return ({"I": d["I"], "Y": d["Y"][:, :1] - 0.5}, 4, 1) if relu else (d, 4, 2)
    d = 1 if relu else 2
    return sequences(n=4, tokens=3, features=d, outputs=1, seed=seed), d * d, d


def case(arch, act, C="l2", m=None):
    """(bound, m) with m = p + q units (Theorem 3.3) unless given."""
    data, p, q = data_for(arch, act)
    text = {"mlp": MLP, "cnn": CNN, "attention": ATTENTION}[arch]
    model = bmdsl.parse(text.format(m=m or p + q, act=ACT[act], C=C))
    return model.derive().bind(data)


@functools.lru_cache(maxsize=None)
def trained(arch, act):
    bound = case(arch, act)
    trainer = Trainer(bound, device="cpu")
    return bound, trainer, trainer.fit()


@functools.lru_cache(maxsize=None)
def optimum(arch, act):
    solution = build_problem(case(arch, act)).solve()
    assert solution.ok and solution.exactness == "exact"
    return solution.value


@pytest.mark.parametrize("arch,act", CASES)
def test_bm_value_reaches_the_convex_optimum(arch, act):
    bound, trainer, result = trained(arch, act)
    pstar = optimum(arch, act)
    assert trainer.m >= bound.p + bound.q and trainer.method_name == "newton"
    assert abs(result.objective - pstar) <= 1e-4 * abs(pstar)
    assert result.objective == pytest.approx(bound.objective_bm(result.U, result.V), rel=1e-12)


@pytest.mark.parametrize("arch,act", CASES)
def test_exported_network_predicts_as_the_factors(arch, act):
    bound, trainer, result = trained(arch, act)
    net = trainer.network()
    assert isinstance(net, torch.nn.Module)
    out = net(*[bound.arrays[name] for name in net.inputs]).detach().numpy()
    want = bound.predict_bm(result.U, result.V)
    assert np.allclose(out, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    if act == "relu":
        assert result.violation <= 1e-6
        assert np.min(bound.cone_slack(result.U)) >= -1e-6
    else:
        assert result.violation is None


@pytest.mark.parametrize("arch", ["mlp", "cnn", "attention"])
def test_network_works_on_new_inputs(arch):
    """Gated units recompute their masks from the stored gates on new data."""
    bound, trainer, result = trained(arch, "gated_relu")
    data, _, _ = data_for(arch, "gated_relu", seed=7)
    fresh = bound.derivation.bind(data, patterns=bound.patterns)     # to get arrays only
    masks = masks_from_gates(fresh.pre_activation, bound.patterns.gates)
    fresh = bound.derivation.bind(data, patterns=PatternSet(masks, bound.patterns.gates,
                                                            "sampled"))
    net = trainer.network()
    out = net(*[fresh.arrays[name] for name in net.inputs]).detach().numpy()
    assert np.allclose(out, fresh.predict_bm(result.U, result.V), rtol=1e-10, atol=1e-12)
    # only weights, gates and fixed maps (pooling): no training data inside
    names = set(dict(net.named_buffers())) | set(dict(net.named_parameters()))
    assert {"W1", "W2", "gates"} <= names <= {"W1", "W2", "gates", "pattern", "fixed_P"}


def test_certificate_bounds_the_true_gap_and_is_small():
    bound, _, result = trained("mlp", "gated_relu")
    pstar = optimum("mlp", "gated_relu")
    cert = result.certificate
    assert cert.gap_bound <= 1e-3
    assert cert.gap_bound >= (result.objective - pstar) / pstar - 1e-9


def test_other_methods_reach_the_optimum_on_a_tiny_problem():
    bound, pstar = case("mlp", "gated_relu"), optimum("mlp", "gated_relu")
    for method, steps in (("lbfgs", 300), ("als", 300)):
        result = Trainer(bound, method=method, warm_start=False).fit(steps, certify=False)
        assert abs(result.objective - pstar) <= 1e-4 * pstar, method


def test_relu_by_augmented_lagrangian_ends_in_the_cones():
    """The AL drives the violation down; restoring the cones makes it honest. (L-BFGS has
    no growth step: here it stalls about 3 % above p*, see docs/trainer.md.)"""
    bound = case("mlp", "relu")
    result = Trainer(bound, method="lbfgs").fit(150, certify=False)
    assert result.violation_before <= 1e-4 and result.violation <= 1e-12
    assert np.min(bound.cone_slack(result.U)) >= -1e-12
    assert optimum("mlp", "relu") <= result.objective <= 1.05 * optimum("mlp", "relu")


def test_mini_batches_slice_data_and_masks():
    bound = case("cnn", "gated_relu")
    trainer = Trainer(bound, method="adam", batch_size=4, lr=0.05)
    arrays, scale, idx, last = trainer.next_batch()
    assert arrays["X"].shape[0] == 4 and arrays["D"].shape[1] == 4 and scale == 6 / 4
    assert torch.equal(arrays["D"], trainer.problem.D[:, idx])
    start = bound.objective_bm(*trainer.factors())
    result = trainer.fit(epochs=300, certify=False)
    assert result.steps == 300 * 2
    assert result.objective < 0.5 * start


def test_float32_trains_close_to_float64():
    bound = case("mlp", "gated_relu")
    result = Trainer(bound, dtype="float32").fit(certify=False)
    assert result.dtype == "float32"
    assert result.objective == pytest.approx(optimum("mlp", "gated_relu"), rel=1e-4)


@pytest.mark.parametrize("options,message", [
    ({"method": "bogus"}, "unknown method 'bogus'"),
    ({"method": "als", "batch_size": 3}, "needs the full batch"),
    ({"dtype": "float16"}, "unknown dtype"),
    ({"m": -1}, "m must be positive"),
])
def test_bad_options_are_trainer_errors(options, message):
    with pytest.raises(TrainerError, match=message):
        Trainer(case("mlp", "gated_relu"), **options)


def test_methods_refuse_what_they_cannot_do():
    with pytest.raises(TrainerError, match="needs C = R = l2"):
        Trainer(case("mlp", "gated_relu", C="l1"), method="newton")
    with pytest.raises(TrainerError, match="ridge regressions"):
        Trainer(case("mlp", "relu"), method="als")
    assert Trainer(case("mlp", "gated_relu", C="l1")).method_name == "lbfgs"
    assert Trainer(case("mlp", "gated_relu"), batch_size=5).method_name == "adam"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_requested_without_cuda():
    with pytest.raises(TrainerError, match="no CUDA device"):
        Trainer(case("mlp", "linear"), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    bound = case("cnn", "gated_relu")
    gpu = Trainer(bound, device="cuda")
    assert gpu.U.is_cuda and gpu.problem.D.is_cuda
    on_gpu = gpu.fit(certify=False)
    on_cpu = Trainer(bound, device="cpu").fit(certify=False)
    assert on_gpu.device.startswith("cuda")
    assert on_gpu.objective == pytest.approx(on_cpu.objective, rel=1e-8)


def test_newton_handles_other_smooth_losses():
    """d^2F from batched Hessian-vector products: cross-entropy reaches the optimum too."""
    data, p, q = data_for("mlp", "gated_relu")
    text = MLP.format(m=p + q, act=ACT["gated_relu"], C="l2")
    bound = bmdsl.parse(text.replace("loss squared", "loss cross_entropy")).derive().bind(data)
    result = Trainer(bound).fit(certify=False)
    pstar = build_problem(bound).solve().value
    assert abs(result.objective - pstar) <= 1e-4 * pstar
