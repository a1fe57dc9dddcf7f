"""Biases (`bias hidden, output`): the language, the programs with a bias against
independent computations, the certificate, and the exported network (float64, small data)."""
import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.core.errors import SemanticError

MLP = """model b
architecture mlp
input X[n, d]
target Y[n, c]
units m = 4
activation gated_relu(patterns = 6, seed = 1)
loss squared
regularize beta = 1e-2, C = l2, R = l2
"""


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    # the optimum needs offsets: targets shifted far from zero
    Y = np.stack([np.sin(2 * X[:, 0]) + 5.0, X[:, 1] ** 2 - 3.0], 1)
    return X, Y


def _bound(text, X, Y):
    return bmdsl.parse(text).derive().bind({"X": X, "Y": Y})


# -- the language ----------------------------------------------------------------------------
def test_bias_statement_is_parsed_and_checked():
    m = bmdsl.parse(MLP + "bias hidden(scale = 2), output\n")
    assert (m.bias.hidden, m.bias.tensor, m.bias.axis, m.bias.size, m.bias.output) == \
        (2.0, "X", 1, "d", True)
    assert "bias:" in m.summary() and "hidden bias" in m.derive().text()
    assert bmdsl.parse(MLP).bias.any is False
    assert bmdsl.parse(MLP + "bias output\n").bias.hidden is None


@pytest.mark.parametrize("tail, message", [
    ("bias hiden\n", "unknown bias 'hiden'"),
    ("bias hidden, hidden\n", "'hidden' is named twice"),
    ("bias hidden(scale = 0)\n", "scale"),
    ("bias output\nbias hidden\n", "a second 'bias' statement"),
])
def test_bias_errors_point_at_the_statement(tail, message):
    with pytest.raises(SemanticError) as exc:
        bmdsl.parse(MLP + tail)
    assert message in exc.value.message and exc.value.span.line >= 9


def test_hidden_bias_refused_where_it_is_not_a_constant_feature():
    text = ("model a\narchitecture attention\nactivation gated_relu(patterns = 4)\nloss squared\n"
            "regularize beta = 1e-2, C = l2, R = l2\nbias hidden\n")
    with pytest.raises(SemanticError, match="one axis"):
        bmdsl.parse(text)
    assert bmdsl.parse(text.replace("bias hidden", "bias output")).bias.output


# -- the hidden bias is the augmented data -------------------------------------------------------
def test_hidden_bias_equals_a_column_of_the_scale_appended_by_hand():
    """Independent: the program with `bias hidden(scale = 2)` is the plain program on
    [X, 2] (same sampled gates: same p and seed), so the two CVXPY optima agree."""
    X, Y = _data()
    with_bias = _bound(MLP + "bias hidden(scale = 2)\n", X, Y)
    by_hand = _bound(MLP, np.hstack([X, np.full((len(X), 1), 2.0)]), Y)
    assert with_bias.p == 3 and np.array_equal(with_bias.masks, by_hand.masks)
    a, b = with_bias.to_cvxpy().solve().value, by_hand.to_cvxpy().solve().value
    assert a == pytest.approx(b, rel=1e-7)


# -- the output bias against an independent program ----------------------------------------------
def _centered_program(bound):
    """min_Z 1/2 ||P (L(Z) - Y)||^2 + beta sum_k ||Z_k||_*, P centering each output channel:
    the squared loss minimized over a free offset in closed form, written from the dense
    operator without bmdsl's offset code."""
    import cvxpy as cp
    L = bound.operator()                            # [P, |y|, p q]
    n, c = bound.Y.shape
    center = np.kron(np.eye(n) - np.ones((n, n)) / n, np.eye(c))   # row-major vec of [n, c]
    Zs = [cp.Variable((bound.p, bound.q)) for _ in range(bound.P)]
    yhat = sum(L[k] @ cp.vec(Zs[k], order="C") for k in range(bound.P))
    obj = 0.5 * cp.sum_squares(center @ (yhat - bound.Y.ravel())) + \
        bound.beta * sum(cp.normNuc(Z) for Z in Zs)
    return cp.Problem(cp.Minimize(obj)).solve()


def test_output_bias_program_equals_the_centered_least_squares():
    X, Y = _data()
    bound = _bound(MLP + "bias hidden, output\n", X, Y)
    assert bound.to_cvxpy().solve().value == pytest.approx(_centered_program(bound), rel=1e-6)
    plain = _bound(MLP, X, Y).to_cvxpy().solve().value
    assert plain > 2 * bound.to_cvxpy().solve().value      # the offset matters here


LOSSES = {"squared": "squared", "huber": "huber(delta = 0.5)",
          "cross_entropy": "cross_entropy", "logistic": "logistic"}


def _targets(loss, X, Y):
    if loss == "cross_entropy":      # classes mostly of one kind: the offset favours it
        labels = np.where(X[:, 0] > -0.7, 0, 1)
        return np.eye(2)[labels]
    if loss == "logistic":
        return np.where(X[:, 0] + 0.3 * X[:, 1] > -0.8, 1.0, -1.0)[:, None]
    return Y


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_trainer_reaches_the_cvxpy_optimum_with_biases_and_certifies_it(loss):
    X, Y = _data()
    Y = _targets(loss, X, Y)
    text = MLP.replace("loss squared", f"loss {LOSSES[loss]}") + "bias hidden, output\n"
    bound = _bound(text, X, Y)
    p_star = bound.to_cvxpy().solve().value
    trainer = bound.to_torch()
    result = trainer.fit(cert_tol=1e-7)
    assert result.objective == pytest.approx(p_star, rel=1e-6, abs=1e-9)
    gap = result.objective - p_star
    assert result.certificate.gap_bound >= gap - 1e-9 * max(1.0, abs(p_star))
    assert result.certificate.gap_bound <= 1e-4 * max(1.0, abs(p_star))
    # the exported network: the factors' predictions plus b*, on training and new data
    b = trainer.output_bias()
    net = trainer.network()
    X_new, _ = _data(7, seed=5)
    gates = bound.patterns.gates                       # [P, d + 1]: offsets included
    for x in (X, X_new):                               # eq. (18) by hand, bias feature 1
        xa = np.hstack([x, np.ones((len(x), 1))])
        masks = (xa @ gates.T >= 0).astype(float)      # [n, P]
        want = np.einsum("nk,nkj,kjo->no", masks, np.einsum("na,kja->nkj", xa, result.U),
                         result.V.reshape(*result.V.shape[:2], -1)) + b
        got = net(X=x).detach().numpy().reshape(want.shape)
        assert np.allclose(got, want, rtol=1e-10, atol=1e-10)


def test_offsets_numpy_and_torch_agree_and_gradients_are_centered():
    from bmdsl.atoms.losses import get_loss
    from bmdsl.atoms.offset import is_centered, with_offset
    from bmdsl.trainer.runtime.forms import torch_loss
    from bmdsl.trainer.runtime.offset import offset_loss
    rng = np.random.default_rng(3)
    yh, y = rng.standard_normal((20, 3)), np.eye(3)[rng.integers(0, 3, 20)]
    for name in ("squared", "cross_entropy", "huber"):
        F = with_offset(get_loss(name), 3)
        Ft = offset_loss(torch_loss(name), 3)
        t = torch.tensor(yh, requires_grad=True)
        value = Ft(t, torch.tensor(y))
        (grad,) = torch.autograd.grad(value, t)
        assert float(value.detach()) == pytest.approx(F.value(yh, y), rel=1e-10)
        assert np.allclose(grad.numpy(), F.grad(yh, y), atol=1e-9)
        assert is_centered(F.grad(yh, y), 3)
        assert F.conjugate(np.ones_like(y), y) == np.inf    # off the domain 1^T V = 0


# -- the network file and the commands ---------------------------------------------------------
def test_network_with_biases_saves_loads_and_fine_tunes(tmp_path):
    X, Y = _data()
    trainer = _bound(MLP + "bias hidden, output\n", X, Y).to_torch()
    trainer.fit(max_steps=10)
    net = trainer.network()
    assert any(p is net.b2 for p in net.parameters())
    net.save(tmp_path / "n.pt")
    back = bmdsl.load_network(tmp_path / "n.pt")
    assert torch.equal(back(X=X), net(X=X))
    before = back.b2.detach().clone()
    opt = torch.optim.SGD(back.parameters(), lr=1e-3)
    loss = (back(X=X) ** 2).sum()     # not the training loss: its b2-gradient is 0 at b*
    loss.backward()
    opt.step()
    assert not torch.equal(back.b2.detach(), before)


def test_train_then_predict_carries_the_output_bias(tmp_path):
    from bmdsl.cli import main
    X, Y = _data()
    (tmp_path / "b.bm").write_text(MLP + "bias hidden, output\n")
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    assert main(["train", str(tmp_path / "b.bm"), "--data", str(tmp_path / "d.npz"),
                 "--output", str(tmp_path / "w.npz"), "-q"]) == 0
    w = np.load(tmp_path / "w.npz")
    assert w["b2"].shape == (2,)
    Yhat = bmdsl.predict(str(tmp_path / "b.bm"), str(tmp_path / "w.npz"), {"X": X})
    assert np.abs(Yhat - Y).mean() < 0.5          # the offsets (5, -3) are in the prediction
    (tmp_path / "plain.bm").write_text(MLP)
    with pytest.raises(bmdsl.core.errors.DataError, match="output bias"):
        bmdsl.predict(str(tmp_path / "plain.bm"), str(tmp_path / "w.npz"), {"X": X})


def test_emitted_modules_carry_both_biases(tmp_path):
    import importlib.util
    from bmdsl.cli import main
    X, Y = _data()
    (tmp_path / "b.bm").write_text(MLP + "bias hidden(scale = 2), output\n")
    assert main(["compile", str(tmp_path / "b.bm"), "-o", str(tmp_path / "out")]) == 0
    mods = {}
    for kind in ("cvxpy", "torch"):
        spec = importlib.util.spec_from_file_location(f"b_{kind}", tmp_path / "out" /
                                                      f"b_{kind}.py")
        mods[kind] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mods[kind])
    (status, value), = mods["cvxpy"].solve_from_spec(mods["cvxpy"].SPEC, {"X": X, "Y": Y})[0] \
        .values()
    bound = _bound(MLP + "bias hidden(scale = 2), output\n", X, Y)
    assert status == "optimal" and value == pytest.approx(bound.to_cvxpy().solve().value,
                                                          rel=1e-6)
    problem = mods["torch"].setup(mods["torch"].SPEC, {"X": X, "Y": Y})
    assert problem.p == 3 and hasattr(problem.F, "offset")


def test_cnn_hidden_bias_is_a_filter_bias_on_every_patch():
    rng = np.random.default_rng(0)
    I, Y = rng.standard_normal((6, 1, 4, 4)), np.eye(2)[rng.integers(0, 2, 6)]
    text = ("model c\narchitecture cnn\nunits m = 2\nactivation gated_relu(patterns = 3)\n"
            "loss squared\nregularize beta = 1e-2, C = l2, R = l2\nbias hidden, output\n")
    bound = bmdsl.parse(text).derive().bind({"I": I, "Y": Y})
    assert bound.p == 10 and np.all(bound.arrays["X"][..., -1] == 1.0)   # 3x3 patch + 1
    trainer = bound.to_torch()
    result = trainer.fit(max_steps=30)
    net = trainer.network()
    want = bound.predict_bm(result.U, result.V) + trainer.output_bias()
    assert np.allclose(net(I=I).detach().numpy(), want, atol=1e-10)


def test_estimator_bias_parameter():
    from bmdsl.workflow.estimators import ConvexNetworkRegressor
    X, Y = _data()
    with_bias = ConvexNetworkRegressor("mlp", bias=True, beta=1e-2, max_steps=40).fit(X, Y)
    without = ConvexNetworkRegressor("mlp", bias=False, beta=1e-2, max_steps=40).fit(X, Y)
    assert with_bias.score(X, Y) > without.score(X, Y)
    assert with_bias.model_.bias.output and with_bias.model_.bias.hidden == 1.0
