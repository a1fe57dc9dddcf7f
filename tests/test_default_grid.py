"""The default fit on every (architecture, activation, loss, tractable (C, R)) cell at tiny
size: the value reaches CVXPY's p* on the same patterns, and the reported duality-gap
bound is >= the true gap and <= 1e-4 (runtime/proxgrad.py, trainer/stopping.py). And a
loss registered at test time is solved by the same default path with no other change."""
import functools

import numpy as np
import pytest

import bmdsl
from bmdsl.cvx import build_problem
from bmdsl.bind.datasets import images, sequences, spiral
from bmdsl.atoms.losses import LOSSES, Loss, LossEntry
from bmdsl.trainer import Trainer
from model_texts import attention, cnn, mlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py

HEAD = {
    "mlp": mlp(m="{m}"),
    "cnn": cnn(m="{m}", kernel=2, padding=0, pool="global"),
    "attention": attention(m="{m}"),
}
TAIL = "activation {act}\nloss {loss}\nregularize beta = {beta}, C = {C}, R = {R}\n"
ACT = {"linear": "linear", "gated_relu": "gated_relu(patterns = 4, seed = 0)"}
LOSS = {"squared": "squared", "cross_entropy": "cross_entropy", "logistic": "logistic",
        "huber": "huber(delta = 0.5)"}
PAIRS = [("l2", "l2"), ("l2", "l1"), ("l1", "l2")]


def _one_hot(Y):
    return np.eye(Y.shape[-1])[np.argmax(Y, axis=-1)]


def data(arch, loss):
    """Tiny float64 data; classes one-hot for cross_entropy, a scalar +-1 for logistic."""
    if arch == "mlp":
        d = spiral(12, 3, seed=1)
    elif arch == "cnn":
        d = images(n=6, channels=1, height=3, width=3, classes=2, seed=1)
    else:
        d = sequences(n=4, tokens=3, features=2, outputs=2, seed=1)
    d = dict(d)
    if loss == "cross_entropy":
        d["Y"] = _one_hot(d["Y"])
    if loss == "logistic":
        d["Y"] = np.where(d["Y"][..., :1] > np.median(d["Y"][..., :1]), 1.0, -1.0)
    return d


BETA = {"mlp": 1e-2, "cnn": 1e-2, "attention": 5e-2}   # attention: fewer iterations (time)


def bound_for(arch, act, loss, C, R, beta=None):
    d = data(arch, loss)
    text = HEAD[arch] + TAIL.format(act=ACT[act], loss=LOSS.get(loss, loss),
                                    beta=beta or BETA[arch],
                                    C=C, R=R)
    model = bmdsl.parse(text.format(m=1))
    bound = model.derive().bind(d)
    # m = p + q units per pattern: enough for the factors of every group or singular value
    return bmdsl.parse(text.format(m=bound.p + bound.q)).derive().bind(d)


@functools.lru_cache(maxsize=None)
def optimum(arch, act, loss, C, R):
    solution = build_problem(bound_for(arch, act, loss, C, R)).solve()
    assert solution.ok and solution.exactness == "exact"
    return solution.value


def check_default_fit(bound, pstar):
    result = Trainer(bound, device="cpu").fit()
    true_gap = (result.objective - pstar) / pstar
    assert abs(true_gap) <= 1e-6
    gap = result.certificate.gap_bound
    # CVXPY's p* is itself accurate to ~1e-9 only: the bound must not be below the true
    # gap by more than that
    assert true_gap - 1e-8 <= gap <= 1e-4
    return result


@pytest.mark.parametrize("C,R", PAIRS)
@pytest.mark.parametrize("loss", list(LOSS))
@pytest.mark.parametrize("act", list(ACT))
@pytest.mark.parametrize("arch", list(HEAD))
def test_default_fit_is_certified_at_the_cvxpy_optimum(arch, act, loss, C, R):
    bound = bound_for(arch, act, loss, C, R)
    result = check_default_fit(bound, optimum(arch, act, loss, C, R))
    # the lifted solvers start every cell (ADMM for the squared loss with (l2, l2))
    assert result.warm_start is not None and result.warm_start["failed"] is None


def _scaled_squared(scale: float) -> Loss:
    """(s/2) ||Yhat - Y||^2, conjugate <V, Y> + ||V||^2 / (2 s): a loss no solver knows."""
    def cvx(e, y):
        import cvxpy as cp
        return 0.5 * scale * cp.sum_squares(e - y)

    def torch_value(yh, y):
        import torch
        return 0.5 * scale * ((yh - torch.as_tensor(y, dtype=yh.dtype)) ** 2).sum()

    return Loss(
        "scaled_squared", (("scale", scale),), r"\tfrac{s}{2}\|\hat Y - Y\|^2",
        value=lambda yh, y: 0.5 * scale * float(np.sum((np.asarray(yh) - y) ** 2)),
        grad=lambda yh, y: scale * (np.asarray(yh) - y),
        torch_value=torch_value, cvxpy=cvx,
        conjugate=lambda v, y: float(np.sum(v * y) + np.sum(v * v) / (2 * scale)),
        target_check=lambda y: None if np.all(np.isfinite(y)) else "not finite",
        scale_domain=lambda g, y: (-np.inf, np.inf))


def test_a_loss_registered_at_test_time_takes_the_default_path(monkeypatch):
    from bmdsl.atoms.losses import LossParam
    spec = LossEntry("scaled_squared", (LossParam("scale", 3.0, lambda x: None),),
                    _scaled_squared, "a test loss")
    monkeypatch.setitem(LOSSES, "scaled_squared", spec)
    for C, R in [("l2", "l2"), ("l2", "l1")]:
        bound = bound_for("mlp", "gated_relu", "scaled_squared", C, R)
        solution = build_problem(bound).solve()
        assert solution.ok
        result = check_default_fit(bound, solution.value)
        assert result.warm_start["method"] == "lifted FISTA"
        # not the squared loss in disguise: 3/2 ||.||^2 moves the optimum
        assert abs(solution.value - optimum("mlp", "gated_relu", "squared", C, R)) > 1e-3
