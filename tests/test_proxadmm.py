"""The lifted prox ADMM (runtime/proxadmm.py): where it applies (it asks the loss entry for
its prox, never the name), that the default fit through it reaches CVXPY's p* with a valid
certificate on a gated spiral with a small beta (the regime where the lifted FISTA stalled),
and its memory estimate. The losses' proxes themselves: tests/test_registries.py."""
import functools

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.atoms.losses import LOSSES, LossEntry, LossParam
from bmdsl.bind.datasets import spiral
from bmdsl.cvx import build_problem
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.proxadmm import LiftedProxADMM
from model_texts import mlp
from test_default_grid import _scaled_squared, bound_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py

LOSS = {"squared": "squared", "cross_entropy": "cross_entropy", "logistic": "logistic",
        "huber": "huber(delta = 0.2)"}


def spiral_bound(loss, C, R):
    """The gated MLP on a 3-arm spiral, n = 45, 12 gates, beta = 1e-3 (small against the
    data: L^* L is singular), m = p + q units per pattern."""
    d = dict(spiral(45, 3, seed=2))
    if loss == "cross_entropy":
        d["Y"] = np.eye(3)[np.argmax(d["Y"], -1)]
    if loss == "logistic":
        d["Y"] = np.where(d["Y"][:, :1] > 0.5, 1.0, -1.0)
    text = mlp(m=5, activation="gated_relu(patterns = 12, seed = 0)", loss=LOSS[loss],
               regularize=f"beta = 1e-3, C = {C}, R = {R}")
    return bmdsl.parse(text).derive().bind(d)


@functools.lru_cache(maxsize=None)
def pstar(loss, C, R):
    solution = build_problem(spiral_bound(loss, C, R)).solve()
    assert solution.ok and solution.exactness == "exact"
    return solution.value


@pytest.mark.parametrize("C,R", [("l2", "l2"), ("l2", "l1")])
@pytest.mark.parametrize("loss", list(LOSS))
def test_default_fit_on_a_small_beta_spiral_is_certified_at_pstar(loss, C, R):
    bound = spiral_bound(loss, C, R)
    result = Trainer(bound, device="cpu").fit()
    true_gap = (result.objective - pstar(loss, C, R)) / pstar(loss, C, R)
    assert abs(true_gap) <= 1e-6
    assert true_gap - 1e-8 <= result.certificate.gap_bound <= 1e-4
    # the squared loss keeps its Gram-path ADMM; the twice-differentiable losses declare a
    # Hessian (the proximal Newton, pnewton.py); huber declares its smoothness (the lifted
    # majorization, before the prox ADMM: measured 1.8-7.8x faster, bench_majorize.py)
    expected = {"squared": "lifted ADMM", "huber": "lifted majorization"}.get(
        loss, "lifted proximal Newton")
    assert result.warm_start["method"] == expected and result.warm_start["failed"] is None


def test_it_asks_the_loss_entry_for_a_prox(monkeypatch):
    # huber (logistic and cross_entropy declare a Hessian: the proximal Newton takes them)
    _without_majorization(monkeypatch)
    bound = bound_for("mlp", "gated_relu", "huber", "l2", "l1")
    trainer = Trainer(bound, device="cpu")
    assert isinstance(trainer.warm, LiftedProxADMM)
    assert LiftedProxADMM.accepts(trainer.problem, trainer.m) is None
    # the same problem without the entry's prox: refused, with the reason
    trainer.problem.loss_prox = None
    assert "a loss without a prox" in LiftedProxADMM.accepts(trainer.problem, trainer.m)
    # a loss registered at test time without a prox takes the lifted FISTA (no name test)
    monkeypatch.setitem(LOSSES, "scaled_squared", LossEntry(
        "scaled_squared", (LossParam("scale", 3.0, lambda x: None),), _scaled_squared, "test"))
    other = Trainer(bound_for("mlp", "gated_relu", "scaled_squared", "l2", "l1"), device="cpu")
    assert type(other.warm).__name__ == "LiftedFISTA"
    # and one that declares a prox takes the prox ADMM, and reaches p* through it
    entry = LossEntry("scaled_squared", (LossParam("scale", 3.0, lambda x: None),),
                      lambda scale: _with_prox(scale), "test")
    monkeypatch.setitem(LOSSES, "scaled_squared", entry)
    bound = bound_for("mlp", "gated_relu", "scaled_squared", "l2", "l1")
    result = Trainer(bound, device="cpu").fit()
    assert result.warm_start["method"] == "lifted prox ADMM"
    solution = build_problem(bound).solve()
    assert result.objective == pytest.approx(solution.value, rel=1e-6)


def _with_prox(scale):
    """_scaled_squared with its prox: argmin s t/2 (x - y)^2 + 1/2 (x - v)^2."""
    from dataclasses import replace
    return replace(_scaled_squared(scale), prox=lambda v, y, t, x0=None:
                   (v + scale * t * torch.as_tensor(y, dtype=v.dtype)) / (1 + scale * t))


def test_an_output_bias_is_refused():
    text = mlp(m=3, activation="gated_relu(patterns = 4, seed = 0)", loss="logistic",
               regularize="beta = 1e-2, C = l2, R = l2", extra_lines=("bias output",))
    d = dict(spiral(12, 2, seed=1))
    d["Y"] = np.where(d["Y"][:, :1] > 0.5, 1.0, -1.0)
    bound = bmdsl.parse(text).derive().bind(d)
    trainer = Trainer(bound, device="cpu")
    assert "an output bias" in LiftedProxADMM.accepts(trainer.problem, trainer.m)


@pytest.mark.parametrize("block", [False, True])
def test_the_memory_estimate_covers_what_it_builds(block, monkeypatch):
    from bmdsl.core import warmfootprint
    from bmdsl.trainer.runtime import liftedops
    _without_majorization(monkeypatch)
    if block:     # L's dense matrix "too large": F's blocks over the spiral's 3 outputs
        monkeypatch.setattr(liftedops, "DENSE_MAX", 0)
        monkeypatch.setattr(warmfootprint, "LIFTED_DENSE_MAX", 0)
    bound = bound_for("mlp", "gated_relu", "huber", "l1", "l2")
    trainer = Trainer(bound, device="cpu")
    estimate = warmfootprint.warm_start("LiftedProxADMM", trainer.problem).nbytes
    warm = trainer.warm
    warm.run(1)
    assert type(warm.op).__name__ == ("KronL" if block else "_Dense")
    built = warm.K.numel() + (warm.op.F if block else warm.op.M).numel() + \
        4 * warm.Z.numel() + 4 * warm.u.numel()
    assert estimate >= built * 8


def _without_majorization(monkeypatch):
    """The warm starts without the lifted majorization, which takes huber first."""
    import bmdsl.trainer.trainer as trainer_module
    monkeypatch.setattr(trainer_module, "WARM_STARTS", tuple(
        w for w in trainer_module.WARM_STARTS if w.name != "mm"))
