"""The torch runtime against bmdsl's numpy reference: einsum plans, losses and norms,
patches and pooling, the cone restoration and the feasible Newton step."""
import numpy as np
import pytest
import torch
from test_trainer import case

from bmdsl.atoms.builders import POOLS as BUILDER_POOLS
from bmdsl.atoms.builders import extract_patches
from bmdsl.atoms.losses import get_loss as numpy_loss
from bmdsl.atoms.norms import get_norm
from bmdsl.trainer import Trainer
from bmdsl.kernel import einsum
from bmdsl.kernel.layout import POOL_MATRICES, unfold_patches
from bmdsl.trainer.runtime import forms
from bmdsl.trainer.runtime.activeset import max_step
from bmdsl.trainer.runtime.cones import max_violation, restore_cones


@pytest.mark.parametrize("spec", [
    (2.0, (("A", ("i", "j")), ("B", ("j", "k")), ("C", ("k", "l"))), ("i", "l")),
    (1.0, (("A", ("n", "s", "e")), ("W", ("e", "f")), ("B", ("n", "t", "f"))), ("n", "s", "t")),
    (-0.5, (("A", ("i", "i2")), ("B", ("i2",)), ("C", ("i",)), ("D", ("k",))), ("k",)),
])
def test_einsum_plans_replay_numpy(spec):
    rng = np.random.default_rng(0)
    sizes = dict(i=3, j=4, k=5, l=2, n=2, s=3, e=4, f=2, t=3, i2=3)
    arrays = {n: rng.standard_normal([sizes[i] for i in idx]) for n, idx in spec[1]}
    got = einsum.run_terms([spec], {k: torch.as_tensor(v) for k, v in arrays.items()}).numpy()
    want = spec[0] * np.einsum(einsum.letters(spec[1], spec[2]), *[arrays[n] for n, _ in spec[1]])
    assert np.allclose(got, want, rtol=1e-12)
    batched = einsum.with_batch(spec, {spec[1][0][0]: ("b_",)}, ("b_",))
    assert batched[1][0][1][0] == "b_" and batched[2][0] == "b_"


@pytest.mark.parametrize("name,params,target", [
    ("squared", (), "normal"), ("cross_entropy", (), "onehot"), ("logistic", (), "sign"),
    ("huber", (("delta", 0.3),), "normal")])
def test_losses_match_bmdsl_losses(name, params, target):
    rng = np.random.default_rng(1)
    yh = rng.standard_normal((5, 3))
    y = {"normal": rng.standard_normal((5, 3)), "sign": np.sign(rng.standard_normal((5, 3))),
         "onehot": np.eye(3)[rng.integers(0, 3, 5)]}[target]
    got = float(forms.torch_loss(name, params)(torch.as_tensor(yh), torch.as_tensor(y)))
    assert got == pytest.approx(numpy_loss(name, **dict(params)).value(yh, y), rel=1e-12)


@pytest.mark.parametrize("norm", ["l1", "l2", "linf"])
def test_norms_match_bmdsl_norms(norm):
    x = np.random.default_rng(2).standard_normal((4, 6))
    assert np.allclose(forms.norm_sq(get_norm(norm).runtime_form, torch.as_tensor(x)).numpy(),
                       get_norm(norm).numpy(x, axis=-1) ** 2)


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 1), (2, 2, 0), (2, 1, 0)])
def test_patches_and_pools_match_the_builders(kernel, stride, padding):
    images = np.random.default_rng(3).standard_normal((2, 3, 6, 5))
    got = unfold_patches(torch.as_tensor(images), kernel, stride, padding).numpy()
    assert np.array_equal(got, extract_patches(images, kernel, stride, padding))
    for builder, args in (("average", {"window": (2, 2)}), ("global", {}),
                          ("adaptive", {"cells": (2, 2)})):
        assert np.array_equal(POOL_MATRICES[builder]((4, 6), args),
                              BUILDER_POOLS[builder].matrix((4, 6), args))


def test_cone_restoration_is_feasible_and_keeps_feasible_units():
    trainer = Trainer(case("cnn", "relu"), method="lbfgs")
    pb = trainer.problem
    U = torch.randn((pb.P, 3) + pb.w1_shape, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    assert max_violation(pb, U) > 0.1
    R = restore_cones(pb, U)
    assert max_violation(pb, R) <= 1e-12
    inside = (torch.relu(-pb.slack(U)).reshape(pb.P, 3, -1).amax(-1) == 0)
    assert torch.equal(R[inside], U[inside])
    # each repaired unit moved no further than to the apex 0 of its cone
    assert bool(((R - U).norm(dim=-1) <= U.norm(dim=-1) + 1e-12).all())


def test_newton_steps_never_leave_the_cones():
    trainer = Trainer(case("mlp", "relu"), warm_start=False)   # Newton from random factors
    worst = []
    trainer.fit(40, tol=0, certify=False,
                callback=lambda s, t: worst.append(max_violation(t.problem, t.U.detach())))
    assert max(worst) <= 1e-12


def test_ratio_test_stops_at_the_first_boundary():
    trainer = Trainer(case("mlp", "relu"), method="lbfgs")
    pb = trainer.problem
    U = trainer.U.detach()
    dU = -3.0 * U
    a = max_step(pb, U, dU)
    assert 0 < a <= 1.0 / 3.0 + 1e-12
    assert max_violation(pb, U + a * dU) <= 1e-12


def test_fallback_certificate_agrees_with_bmdsl_certificates():
    """The private fallback (used when bmdsl.certificates is missing) is a valid bound."""
    from bmdsl.certificates import certify
    from bmdsl.trainer.certificate import fallback
    from test_trainer import optimum, trained
    bound, _, result = trained("mlp", "gated_relu")
    U, V = result.U, result.V
    V = V * 0.9                                     # a non-optimal point
    mine, full = fallback(bound, U, V), certify(bound, U, V, refine_iters=0)
    pstar = optimum("mlp", "gated_relu")
    assert mine.gap_bound >= (bound.objective_bm(U, V) - pstar) / pstar
    assert mine.thm34_bound == pytest.approx(full.thm34_bound, rel=1e-9)
    assert not mine.thm34_applicable and "Fenchel" in mine.text()
