"""Loss registry (bmdsl/atoms/losses.py): values, gradients, cvxpy forms, conjugates, dual scale."""
import cvxpy as cp
import numpy as np
import pytest
import torch

from bmdsl.atoms.losses import LOSSES, best_dual_scale, get_loss

NAMES = ["squared", "cross_entropy", "logistic", "huber"]
SHAPE = (6, 4)


def _target(name, rng):
    if name == "cross_entropy":
        Y = np.zeros(SHAPE)
        Y[np.arange(SHAPE[0]), rng.integers(0, SHAPE[1], SHAPE[0])] = 1.0
        Y[0] = rng.dirichlet(np.ones(SHAPE[1]))      # one soft-label row as well
        return Y
    if name == "logistic":
        return rng.choice([-1.0, 1.0], size=SHAPE)
    return rng.standard_normal(SHAPE)


def _losses():
    return [("squared", {}), ("cross_entropy", {}), ("logistic", {}), ("huber", {}),
            ("huber", {"delta": 0.3})]


def _feasible_dual(loss, y, rng):
    """A random point of dom F* (so F* is finite there)."""
    if loss.name == "cross_entropy":
        return rng.dirichlet(np.ones(SHAPE[1]), size=SHAPE[0]) - y
    if loss.name == "logistic":
        return -y * rng.uniform(0, 1, SHAPE)
    if loss.name == "huber":
        return rng.uniform(-1, 1, SHAPE) * loss.param("delta")
    return rng.standard_normal(SHAPE)


def test_registry_and_errors():
    assert set(LOSSES) == set(NAMES)
    with pytest.raises(KeyError, match="squared"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="delta"):
        get_loss("huber", delta=-1.0)
    with pytest.raises(ValueError, match="no parameter"):
        get_loss("squared", delta=1.0)
    assert get_loss("huber").param("delta") == 1.0
    assert dict(LOSSES["huber"].param_defaults) == {"delta": 1.0}


def test_target_checks():
    assert get_loss("cross_entropy").target_check(np.array([[0.5, 0.6]])) is not None
    assert get_loss("cross_entropy").target_check(np.array([[0.4, 0.6]])) is None
    assert get_loss("logistic").target_check(np.array([1.0, 0.0])) is not None
    assert get_loss("logistic").target_check(np.array([1.0, -1.0])) is None
    assert get_loss("squared").target_check(np.array([np.nan])) is not None


@pytest.mark.parametrize("name,params", _losses())
def test_grad_matches_torch_and_cvxpy_matches_numpy(name, params):
    rng = np.random.default_rng(20)
    loss = get_loss(name, **params)
    y, yh = _target(name, rng), 2.0 * rng.standard_normal(SHAPE)
    assert loss.target_check(y) is None
    t = torch.tensor(yh, dtype=torch.float64, requires_grad=True)
    val = loss.torch_value(t, y)
    val.backward()
    np.testing.assert_allclose(float(val.detach()), loss.value(yh, y), rtol=1e-12)
    np.testing.assert_allclose(t.grad.numpy(), loss.grad(yh, y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.cvxpy(cp.Constant(yh), y).value, loss.value(yh, y),
                               rtol=1e-9)
    # the cvxpy form is DCP-convex, so it can be minimized
    v = cp.Variable(SHAPE)
    prob = cp.Problem(cp.Minimize(loss.cvxpy(v, y) + cp.sum_squares(v)))
    assert prob.is_dcp()
    # stability: huge logits do not overflow
    big = 1e3 * rng.standard_normal(SHAPE)
    assert np.isfinite(loss.value(big, y)) and np.all(np.isfinite(loss.grad(big, y)))


@pytest.mark.parametrize("name,params", _losses())
def test_fenchel_young(name, params):
    rng = np.random.default_rng(21)
    loss = get_loss(name, **params)
    y = _target(name, rng)
    for _ in range(20):
        yh, v = rng.standard_normal(SHAPE), _feasible_dual(loss, y, rng)
        fstar = loss.conjugate(v, y)
        assert np.isfinite(fstar)
        assert loss.value(yh, y) + fstar >= np.sum(v * yh) - 1e-9
        g = loss.grad(yh, y)                       # equality at v = grad F(yh)
        np.testing.assert_allclose(loss.value(yh, y) + loss.conjugate(g, y), np.sum(g * yh),
                                   rtol=1e-9, atol=1e-9)
    assert np.isinf(loss.conjugate(_infeasible(loss, y), y)) or name == "squared"


def _infeasible(loss, y):
    if loss.name == "huber":
        return np.full(SHAPE, 2.0 * loss.param("delta"))
    if loss.name == "logistic":
        return 2.0 * -y
    return np.full(SHAPE, 0.3)                     # cross-entropy: rows no longer sum to 1


def test_conjugate_zero_log_zero():
    y = np.array([[1.0, 0.0, 0.0]])
    ce = get_loss("cross_entropy")
    assert ce.conjugate(np.zeros((1, 3)), y) == 0.0   # 1 log 1 + 0 log 0 + 0 log 0
    lg = get_loss("logistic")
    assert lg.conjugate(-np.array([1.0, -1.0]) * np.array([1.0, 0.0]), np.array([1.0, -1.0])) == 0.0


def test_squared_closed_form_is_vertex():
    rng = np.random.default_rng(22)
    loss = get_loss("squared")
    y, g = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE)
    t = best_dual_scale(loss, g, y, np.inf)
    np.testing.assert_allclose(t, -np.sum(g * y) / np.sum(g * g))
    np.testing.assert_allclose(best_dual_scale(loss, g, y, 0.01), np.clip(t, -0.01, 0.01))


@pytest.mark.parametrize("name,params", _losses())
def test_best_dual_scale_beats_grid(name, params):
    rng = np.random.default_rng(23)
    loss = get_loss(name, **params)
    for trial in range(4):
        y = _target(name, rng)
        g = loss.grad(rng.standard_normal(SHAPE) * 2, y)
        t_max = [0.3, 1.0, 5.0, 50.0][trial]
        t = best_dual_scale(loss, g, y, t_max)
        assert abs(t) <= t_max
        best = -loss.conjugate(t * g, y)
        assert np.isfinite(best)                    # the dual point stays feasible
        grid = np.concatenate([np.linspace(-t_max, t_max, 2001), [0.0, -t_max, t_max]])
        vals = np.array([-loss.conjugate(s * g, y) for s in grid])
        assert best >= np.max(vals) - 1e-9 * max(1.0, abs(best))
