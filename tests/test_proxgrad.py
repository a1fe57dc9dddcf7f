"""The lifted FISTA warm start's parts (runtime/dprox.py, runtime/proxgrad.py): the torch
prox against the certificates' numpy prox and its own defining inequality, the unit
factorizations, the registry capability, the memory plan, and the emitted trainer."""
import numpy as np
import pytest
import torch
from test_default_grid import bound_for
from test_trainer_emit import run_emitted

from bmdsl.certificates.prox import d_norm_prox
from bmdsl.derive.dnorm import PAIR_TABLE, d_norm
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime import dprox
from bmdsl.trainer.runtime.gram import lift
from bmdsl.trainer.runtime.proxgrad import LiftedFISTA

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.fixture
def fista_only(monkeypatch):
    """The warm starts without the lifted prox ADMM, proximal Newton and majorization, which
    take every loss with a prox, a Hessian or a declared smoothness first (test_proxadmm.py, test_pnewton.py): the FISTA is
    what a loss without either gets."""
    import bmdsl.trainer.trainer as trainer_module
    from bmdsl.trainer.runtime.pnewton import LiftedProxNewton
    from bmdsl.trainer.runtime.proxadmm import LiftedProxADMM
    monkeypatch.setattr(trainer_module, "WARM_STARTS",
                        tuple(w for w in trainer_module.WARM_STARTS
                              if w not in (LiftedProxADMM, LiftedProxNewton)
                              and w.name != "mm"))

WITH_PROX = sorted(k for k, rule in PAIR_TABLE.items() if rule.prox is not None)


def test_the_pair_table_declares_a_prox_for_exactly_the_tractable_pairs():
    assert set(WITH_PROX) == {("l2", "l2"), ("l1", "l1"), ("l1", "l2"), ("l1", "linf"),
                              ("l2", "l1"), ("linf", "l1")}
    assert all(rule.prox is None for k, rule in PAIR_TABLE.items() if rule.method == "hard")


@pytest.mark.parametrize("C,R", WITH_PROX)
def test_torch_prox_agrees_with_numpy_and_is_the_prox(C, R):
    gen = torch.Generator().manual_seed(2)
    Z = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    tau = 0.6
    norm = dprox.DNorm(PAIR_TABLE[(C, R)].prox, C, R)
    X = norm.prox(Z, tau)
    assert np.allclose(X.numpy(), d_norm_prox(C, R)(Z.numpy(), tau), atol=1e-12)

    def value(Y):     # the prox's objective, with the D-norm from bmdsl.derive.dnorm
        return 0.5 * float(((Y - Z) ** 2).sum()) + tau * sum(d_norm(y, C, R) for y in Y.numpy())
    best = value(X)
    assert norm.value(X) == pytest.approx(sum(d_norm(x, C, R) for x in X.numpy()), rel=1e-12)
    for _ in range(30):
        assert value(X + 0.05 * torch.randn(X.shape, generator=gen, dtype=X.dtype)) >= best - 1e-12


@pytest.mark.parametrize("C,R", WITH_PROX)
def test_units_reproduce_z_and_its_d_norm(C, R):
    gen = torch.Generator().manual_seed(3)
    key = PAIR_TABLE[(C, R)].prox
    norm = dprox.DNorm(key, C, R)
    Z = norm.prox(torch.randn(4, 3, 5, generator=gen, dtype=torch.float64), 0.8)
    U, V, left = norm.units(Z, m=5)
    assert left == 0 and torch.allclose(lift(U, V), Z, atol=1e-12)
    u, v = U.numpy(), V.numpy()
    half = 0.5 * sum(np.linalg.norm(x, {"l1": 1, "l2": 2, "linf": np.inf}[n]) ** 2
                     for n, W in ((C, u), (R, v)) for x in W.reshape(-1, W.shape[-1]))
    # (1/2) sum (||u||_C^2 + ||v||_R^2) = sum_k ||Z_k||_D: the BM regularizer is the convex one
    assert half == pytest.approx(norm.value(Z), rel=1e-12)
    U1, V1, left1 = norm.units(Z, m=1)      # one unit per pattern cannot hold them all
    assert U1.shape == (4, 1, 3) and left1 > 0


def test_fista_applies_by_the_registry(fista_only):
    gated = bound_for("mlp", "gated_relu", "cross_entropy", "l2", "l1")
    assert isinstance(Trainer(gated, device="cpu").warm, LiftedFISTA)
    hard = bound_for("mlp", "gated_relu", "cross_entropy", "l2", "linf")
    assert Trainer(hard, device="cpu").warm is None          # no prox for (l2, linf)


@pytest.mark.parametrize("form", ["block", "dense", "basis"])
def test_the_memory_estimate_covers_the_operator_it_builds(form, monkeypatch, fista_only):
    """warmfootprint.lifted_fista (checked against the budget before the warm start is made)
    is at least what runtime/proxgrad.py allocates: L's block F over the free outputs,
    L's matrix, or the basis activations."""
    from bmdsl.core import warmfootprint
    from bmdsl.trainer.runtime import kronops, liftedops
    if form != "dense":
        monkeypatch.setattr(liftedops, "DENSE_MAX", 0)
        monkeypatch.setattr(warmfootprint, "LIFTED_DENSE_MAX", 0)
    if form == "basis":
        monkeypatch.setattr(kronops, "KRON_DENSE_MAX", 0)
        monkeypatch.setattr(warmfootprint, "KRON_DENSE_MAX", 0)
    bound = bound_for("cnn", "gated_relu", "huber", "l1", "l2")
    trainer = Trainer(bound, device="cpu")
    estimate = warmfootprint.warm_start("LiftedFISTA", trainer.problem).nbytes
    trainer.warm.run(1)
    smooth = trainer.warm.smooth
    built = {"block": lambda: smooth.F, "dense": lambda: smooth.M,
             "basis": lambda: torch.cat([H.reshape(-1) for H in smooth.H])}[form]()
    assert type(smooth) is {"block": kronops.KronL, "dense": liftedops._Dense,
                            "basis": liftedops._Predictive}[form]
    assert estimate >= (built.numel() + 4 * trainer.warm.Z.numel()) * 8


def test_fista_reaches_its_tolerance_and_then_needs_no_bm_step(fista_only):
    bound = bound_for("cnn", "gated_relu", "logistic", "l1", "l2")
    trainer = Trainer(bound, device="cpu")
    result = trainer.fit(certificate_every=0)     # no certificates: FISTA runs to its tol
    ws = result.warm_start
    assert ws["method"] == "lifted FISTA" and ws["gradient_mapping"] <= 1e-9
    assert result.steps == 0 and result.stopped == "tol" and result.certificate.gap_bound <= 1e-6


def test_emitted_trainer_runs_the_lifted_warm_start(tmp_path):
    """(huber has a prox: the emitted module runs the lifted prox ADMM of proxadmm.py, with
    the loss's prox pasted from bmdsl/kernel/lossprox.py)"""
    bound = bound_for("mlp", "gated_relu", "huber", "l2", "l1")
    result = Trainer(bound, device="cpu").fit()
    stdout = run_emitted(bound, tmp_path)
    value = float(stdout.split("objective ")[1].split()[0])
    assert stdout.split("steps ")[1].split()[0] == "0"    # the warm start, no BM step
    assert value == pytest.approx(result.objective, rel=1e-6)
