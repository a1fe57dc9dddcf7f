"""The vector-norm registry (bmdsl/atoms/norms.py): numpy, torch and cvxpy agree; duality holds."""
import numpy as np
import pytest

from bmdsl.atoms.norms import NORMS, get_norm

NAMES = ["l1", "l2", "linf"]


def test_registry_entries():
    assert set(NORMS) == set(NAMES)
    for name, n in NORMS.items():
        assert n.name == name
        assert NORMS[n.dual].dual == name          # duality is an involution
        assert n.latex.startswith(r"\|")
    assert NORMS["l1"].p == 1 and NORMS["l2"].p == 2 and np.isinf(NORMS["linf"].p)


def test_get_norm_unknown_lists_names():
    with pytest.raises(KeyError) as e:
        get_norm("l3")
    assert all(n in str(e.value) for n in NAMES)
    assert get_norm(NORMS["l2"]) is NORMS["l2"]


@pytest.mark.parametrize("name", NAMES)
def test_numpy_matches_reference(name):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 5))
    n = get_norm(name)
    ref = {"l1": 1, "l2": 2, "linf": np.inf}[name]
    np.testing.assert_allclose(n.numpy(X, axis=1), np.linalg.norm(X, ref, axis=1))
    np.testing.assert_allclose(n.numpy(X, axis=0), np.linalg.norm(X, ref, axis=0))
    # axis=None: the flattened vector, never an operator norm
    np.testing.assert_allclose(n.numpy(X), np.linalg.norm(X.ravel(), ref))


@pytest.mark.parametrize("name", NAMES)
def test_torch_matches_numpy(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 6))
    n = get_norm(name)
    Xt = torch.tensor(X, dtype=torch.float64)
    np.testing.assert_allclose(n.torch(Xt, dim=1).numpy(), n.numpy(X, axis=1), rtol=1e-12)
    np.testing.assert_allclose(float(n.torch(Xt)), n.numpy(X), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_cvxpy_matches_numpy(name):
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, 4))
    n = get_norm(name)
    np.testing.assert_allclose(n.cvxpy(cp.Constant(X), axis=0).value, n.numpy(X, axis=0),
                               rtol=1e-10)
    np.testing.assert_allclose(n.cvxpy(cp.Constant(X), axis=1).value, n.numpy(X, axis=1),
                               rtol=1e-10)
    np.testing.assert_allclose(n.cvxpy(cp.Constant(X)).value, n.numpy(X), rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_ball_argmax_attains_dual_norm(name):
    rng = np.random.default_rng(3)
    n = get_norm(name)
    for _ in range(20):
        g = rng.standard_normal(7)
        x = n.ball_argmax(g)
        assert n.numpy(x) <= 1 + 1e-12
        np.testing.assert_allclose(g @ x, n.dual_norm.numpy(g), rtol=1e-12)
        # Hoelder: no random point of the ball does better
        for _ in range(20):
            z = rng.standard_normal(7)
            z /= n.numpy(z)
            assert g @ z <= g @ x + 1e-12
