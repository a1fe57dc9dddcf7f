"""Every registry entry provides every capability the solvers and emitters ask for, and the
three recipes of docs/architecture.md (a new loss, a new norm pair, a new activation,
each declared in one file) work end to end when an entry is registered at test time."""
from dataclasses import replace

import numpy as np
import pytest

import bmdsl
from bmdsl.atoms.activations import ACTIVATIONS, Activation
from bmdsl.certificates.prox import _PROX
from bmdsl.cvx import build_problem
from bmdsl.derive.dnorm import d_norm, dual_norm
from bmdsl.kernel.lossforms import (LOSS_KERNELS, LossKernel, loss_array, loss_torch_y,
                                    positive_number)
from bmdsl.atoms.losses import LOSSES, get_loss
from bmdsl.workflow.metrics import METRICS
from bmdsl.atoms.norms import NORMS, VectorNorm
from bmdsl.atoms.pairs import PAIR_TABLE, DualNormValue, NormPair, PairForm, PairRule
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.dprox import PAIRS as TORCH_PROX
from bmdsl.trainer.runtime.forms import torch_loss
from bmdsl.trainer.runtime.forms import norm as runtime_norm
from bmdsl.trainer.runtime.network import uses_gates
from bmdsl.trainer.spec import build_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py

RNG = np.random.default_rng(0)


def _targets(kernel, shape=(5, 3)):
    if kernel.class_labels and "accuracy" in kernel.metrics:      # probability rows
        return np.eye(shape[1])[RNG.integers(0, shape[1], shape[0])]
    if kernel.metrics == ("sign_accuracy",):
        return np.where(RNG.standard_normal(shape) > 0, 1.0, -1.0)
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("name", sorted(LOSS_KERNELS))
def test_every_loss_declares_every_capability(name):
    import cvxpy as cp
    import torch
    kernel = LOSS_KERNELS[name]
    assert kernel.name == name and kernel.doc and kernel.latex
    assert set(kernel.metrics) <= set(METRICS)
    assert isinstance(kernel.quadratic, bool) and isinstance(kernel.twice_differentiable, bool)
    for p in kernel.params:        # (name, default, accepts, check, doc); default accepted
        assert len(p) == 5 and p[3](p[1]) is None and p[2] and p[4]
    loss = get_loss(name)          # the registry entry built from the class
    Y, Yh = _targets(kernel), RNG.standard_normal((5, 3))
    assert loss.target_check(Y) is None
    f = loss.value(Yh, Y)
    # the gradient: a central difference along a random direction
    D, h = RNG.standard_normal(Yh.shape), 1e-6
    slope = (loss.value(Yh + h * D, Y) - loss.value(Yh - h * D, Y)) / (2 * h)
    assert np.sum(loss.grad(Yh, Y) * D) == pytest.approx(slope, rel=1e-5, abs=1e-7)
    # Fenchel-Young with equality at v = grad F: F(Yh) + F*(v) = <v, Yh>
    g = loss.grad(Yh, Y)
    assert f + loss.conjugate(g, Y) == pytest.approx(float(np.sum(g * Yh)), rel=1e-8, abs=1e-8)
    lo, hi = loss.scale_domain(g, Y)
    assert lo <= 1.0 <= hi
    # the CVXPY form (the emitted CVXPY module pastes the same class), the torch form and
    # the torch runtime agree
    assert loss.cvxpy(cp.Constant(Yh), Y).value == pytest.approx(f, rel=1e-7)
    t = torch.tensor(Yh)
    assert float(loss.torch_value(t, Y)) == pytest.approx(f, rel=1e-10)
    assert float(torch_loss(name)(t, torch.tensor(Y))) == pytest.approx(f, rel=1e-10)
    assert LOSSES[name].accepts_class_labels == kernel.class_labels
    # the optional prox: the registry entry has one exactly when the class declares one
    assert (kernel.torch_prox is None) == (loss.prox is None)
    # the declared size of the CVXPY form (the program's memory estimate) is what CVXPY
    # lowers it to: rows and variables per entry and per sample, counted at two class counts
    assert loss.cvxpy_size == tuple(kernel.cvxpy_size) and len(loss.cvxpy_size) == 4
    assert _canonical_size(kernel, loss) == loss.cvxpy_size


def _canonical_size(kernel, loss, n=4):
    """(rows per entry, variables per entry, rows per sample, variables per sample) of the
    loss's CVXPY form on Yhat = A z, from the problem data CVXPY hands Clarabel."""
    import cvxpy as cp
    counts = {}
    for c in (2, 3):
        A = RNG.standard_normal((n * c, 5))
        z = cp.Variable(5)
        e = cp.reshape(A @ z, (n, c), order="C")
        data = cp.Problem(cp.Minimize(loss.cvxpy(e, _targets(kernel, (n, c))))) \
            .get_problem_data(cp.CLARABEL)[0]
        counts[c] = (data["A"].shape[0], data["A"].shape[1] - 5)
    per_entry = [(counts[3][i] - counts[2][i]) // n for i in (0, 1)]
    per_sample = [(counts[2][i] - 2 * n * per_entry[i]) // n for i in (0, 1)]
    return (per_entry[0], per_entry[1], per_sample[0], per_sample[1])


@pytest.mark.parametrize("t", [0.05, 1.0, 40.0])
@pytest.mark.parametrize("name", sorted(n for n, k in LOSS_KERNELS.items()
                                         if k.torch_prox is not None))
def test_every_declared_prox_is_the_cvxpy_prox(name, t):
    """prox_{tF}(V) = argmin_X t F(X) + 1/2 ||X - V||^2 against CVXPY's solve of that
    problem (the loss's own CVXPY form), in float64, from a cold and from a warm start."""
    import cvxpy as cp
    import torch
    kernel = LOSS_KERNELS[name]
    loss = get_loss(name)
    Y, V = _targets(kernel, (6, 3)), 3.0 * RNG.standard_normal((6, 3))
    if kernel.metrics == ("sign_accuracy",):
        Y, V = Y[:, :1], V[:, :1]
    X = cp.Variable(V.shape)
    cp.Problem(cp.Minimize(t * loss.cvxpy(X, Y) + 0.5 * cp.sum_squares(X - V))).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    Vt = torch.tensor(V)
    cold = loss.prox(Vt, torch.tensor(Y), t)
    warm = loss.prox(Vt, torch.tensor(Y), t, cold + 0.5)
    for got in (cold, warm):
        assert got.dtype == torch.float64 and got.shape == Vt.shape
        assert np.allclose(got.numpy(), X.value, rtol=1e-6, atol=1e-6)
        # optimality: t grad F(X) + X - V = 0, far below CVXPY's accuracy
        g = t * loss.grad(got.numpy(), Y) + got.numpy() - V
        assert np.abs(g).max() <= 1e-9 * (1 + t)


@pytest.mark.parametrize("name", sorted(NORMS))
def test_every_norm_declares_every_capability(name):
    import cvxpy as cp
    import torch
    n = NORMS[name]
    assert n.dual in NORMS and NORMS[n.dual].dual == name and n.latex
    x, g = RNG.standard_normal(4), RNG.standard_normal(4)
    assert float(n.torch(torch.tensor(x))) == pytest.approx(n.numpy(x))
    assert n.cvxpy(cp.Constant(x)).value == pytest.approx(n.numpy(x), rel=1e-7)
    # the torch runtime's numeric form declared by the entry (the trainer's SPEC carries it)
    assert float(runtime_norm(n.runtime_form, torch.tensor(x))) == pytest.approx(n.numpy(x))
    u = n.ball_argmax(g)            # Hoelder's equality case
    assert n.numpy(u) <= 1 + 1e-12 and u @ g == pytest.approx(n.dual_norm.numpy(g))


@pytest.mark.parametrize("C,R", sorted(PAIR_TABLE))
def test_every_pair_declares_every_capability(C, R):
    pair, rule = NormPair(C, R), PAIR_TABLE[(C, R)]
    assert rule.note and len(rule.text) == 4 and all(rule.text)
    G = RNG.standard_normal((3, 2))
    d = dual_norm(G, C, R)
    assert d.exactness == "exact" and d.u @ G @ d.v == pytest.approx(d.value)
    if pair.tractable:              # the closed forms agree with the definitions
        Z = RNG.standard_normal((3, 2))
        assert rule.form.value(Z, C, R) == pytest.approx(d_norm(Z, C, R, enum_cap=0))
    else:
        assert rule.enum_sides and not rule.prox
    if rule.prox is not None:       # both prox tables (numpy, torch) have the key
        assert rule.prox in _PROX and rule.prox in TORCH_PROX
    assert pair.relu_exact(1) and pair.relu_exact("q") in (True, None)
    assert pair.relu_exact(2) == NORMS[R].basis_extremes


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_declares_every_capability(name):
    a = ACTIVATIONS[name]
    assert a.latex and a.description and all(a.display) and all(a.refs)
    assert a.program and a.network_scope
    assert not a.cone or a.uses_patterns          # cones constrain patterned units only
    # the trainer's SPEC carries the units rule the runtime asks (never the name)
    act = name + ("(patterns = 2)" if a.uses_patterns else "")
    spec = build_spec(bmdsl.parse(MLP.format(m=2, act=act, loss="squared", beta=0.1, C="l2",
                                             R="l2")).derive())
    assert (spec["masked"], spec["cone"]) == (a.uses_patterns, a.cone)
    assert uses_gates(spec) == (a.uses_patterns and not a.cone)


# ------------------------------------------------------------------ recipes
MLP = """model mlp
input X[n, d]
target Y[n, c]
units m = {m}
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation {act}
loss {loss}
regularize beta = {beta}, C = {C}, R = {R}
"""


def _bound(d, act="gated_relu(patterns = 4, seed = 0)", loss="squared", beta=1e-2,
           C="l2", R="l2", m=5):
    return bmdsl.parse(MLP.format(m=m, act=act, loss=loss, beta=beta, C=C, R=R)).derive() \
        .bind(d)


def _data():
    X = RNG.standard_normal((12, 3))
    return {"X": X, "Y": np.tanh(X @ RNG.standard_normal((3, 2)))}


class ScaledSquared(LossKernel):
    """s/2 ||Yhat - Y||^2: F*(V) = <V, Y> + ||V||^2 / (2 s)."""
    name, doc, latex = "scaled_squared", "s/2 ||Yhat - Y||^2", r"\tfrac{s}{2}\|\hat Y - Y\|^2"
    params = (("scale", 1.0, "a positive number", positive_number, "the factor s"),)
    scale = 1.0

    def value(self, yh, y):
        return 0.5 * self.scale * float(np.sum((loss_array(yh) - loss_array(y)) ** 2))

    def grad(self, yh, y):
        return self.scale * (loss_array(yh) - loss_array(y))

    def conjugate(self, v, y):
        v = loss_array(v)
        return float(np.sum(v * loss_array(y)) + np.sum(v * v) / (2 * self.scale))

    def scale_domain(self, g, y):
        return -np.inf, np.inf

    def cvxpy(self, cp, e, y):
        return 0.5 * self.scale * cp.sum_squares(e - loss_array(y))

    def torch(self, torch, yh, y):
        return 0.5 * self.scale * ((yh - loss_torch_y(torch, y, yh)) ** 2).sum()


def test_recipe_a_new_loss_is_one_class(monkeypatch):
    monkeypatch.setitem(LOSS_KERNELS, "scaled_squared", ScaledSquared)
    d = _data()
    bound = _bound(d, loss="scaled_squared(scale = 3)", m=5)
    pstar = build_problem(bound).solve().value
    # s/2 ||e||^2 + beta R = s (1/2 ||e||^2 + (beta/s) R): p*(s, beta) = s p*(1, beta/s)
    plain = build_problem(_bound(d, beta=1e-2 / 3, m=5)).solve().value
    assert pstar == pytest.approx(3 * plain, rel=1e-6)
    result = Trainer(bound, device="cpu").fit()
    assert result.objective == pytest.approx(pstar, rel=1e-6)
    assert result.certificate.gap_bound >= (result.objective - pstar) / pstar - 1e-8
    # the stand-alone CVXPY module pastes kernel classes only: a class from elsewhere is
    # refused with the reason (not a module that fails at run time)
    from bmdsl.cvx import emit_cvxpy
    with pytest.raises(bmdsl.SemanticError, match="no stand-alone CVXPY form"):
        emit_cvxpy(bmdsl.parse(MLP.format(m=5, act="linear", loss="scaled_squared(scale = 3)",
                                          beta=1e-2, C="l2", R="l2")).derive())


def _scaled_l2(name, dual, s):
    """s ||x||_2 (dual: ||x||_2 / s), a norm of the registry's kind with another constant."""
    base = NORMS["l2"]
    return VectorNorm(name, 2.0, dual, rf"{s:g}\|\cdot\|_2",
                      lambda x, axis=None: s * base.numpy(x, axis),
                      lambda x, dim=None: s * base.torch(x, dim),
                      lambda e, axis=None: s * base.cvxpy(e, axis),
                      lambda g: base.ball_argmax(g) / s, subscript=name, scale=s)


class ScaledSpectral(PairForm):
    """C = s ||.||_2, R = ||.||_2: B_C = B_2 / s, so ||G||_D* = sigma_max(G) / s and
    ||Z||_D = s ||Z||_*."""
    name, s = "scaled spectral", 2.0
    text = ("s ||Z||_*", r"s\|Z\|_*", "sigma_max(G) / s", r"\sigma_{\max}(G)/s")

    def dual(self, G, C, R):
        U, sv, Vt = np.linalg.svd(G)
        return DualNormValue(float(sv[0]) / self.s, "exact", "spectral", U[:, 0] / self.s, Vt[0])

    def value(self, Z, C, R):
        return self.s * float(np.linalg.svd(Z, compute_uv=False).sum())

    def cvxpy(self, Z, C, R):
        import cvxpy as cp
        return self.s * cp.normNuc(Z)


def test_recipe_a_new_norm_pair_is_one_entry(monkeypatch):
    monkeypatch.setitem(NORMS, "l2x2", _scaled_l2("l2x2", "l2half", 2.0))
    monkeypatch.setitem(NORMS, "l2half", _scaled_l2("l2half", "l2x2", 0.5))
    monkeypatch.setitem(PAIR_TABLE, ("l2x2", "l2"),
                        PairRule("scaled", note="s sigma_max / nuclear", form=ScaledSpectral()))
    G = RNG.standard_normal((3, 2))
    d = dual_norm(G, "l2x2", "l2")                 # attained on the scaled ball
    assert NORMS["l2x2"].numpy(d.u) == pytest.approx(1.0)
    assert d.u @ G @ d.v == pytest.approx(d.value)
    data = _data()
    bound = _bound(data, C="l2x2", R="l2")
    text = bmdsl.parse(MLP.format(m=5, act="linear", loss="squared", beta=1e-2, C="l2x2",
                                  R="l2")).derive().text()
    assert "||Z||_D = s ||Z||_*" in text
    pstar = build_problem(bound).solve().value
    # ||Z||_D = 2 ||Z||_*: the (l2, l2) program at beta' = 2 beta
    assert pstar == pytest.approx(build_problem(_bound(data, beta=2e-2)).solve().value,
                                  rel=1e-6)
    assert NormPair("l2x2", "l2").relu_exact(2) is False and not NormPair("l2x2", "l2").euclidean
    # the BM trainer reaches p* with the new norm's declared form (scale 2) in its SPEC
    _trains_to(bound, pstar)
    from bmdsl.cvx import emit_cvxpy           # not a kernel entry: refused by the emitter
    with pytest.raises(bmdsl.SemanticError, match="not an entry of bmdsl/kernel/pairforms"):
        emit_cvxpy(bmdsl.parse(MLP.format(m=5, act="linear", loss="squared", beta=1e-2,
                                          C="l2x2", R="l2")).derive())


def test_recipe_a_new_activation_is_one_entry(monkeypatch):
    linear = ACTIVATIONS["linear"]
    identity = replace(linear, name="identity", latex=r"\sigma(x) = x",
                       display=("act = identity (another name)", r"\sigma(A) = A"))
    assert isinstance(identity, Activation)
    monkeypatch.setitem(ACTIVATIONS, "identity", identity)
    data = _data()
    bound = _bound(data, act="identity")
    text = bmdsl.parse(MLP.format(m=5, act="identity", loss="squared", beta=1e-2, C="l2",
                                  R="l2")).derive().text()
    assert "act = identity (another name)" in text
    pstar = build_problem(bound).solve().value
    assert pstar == pytest.approx(build_problem(_bound(data, act="linear")).solve().value,
                                  rel=1e-6)
    # patterns do not apply to it (the units rule asks the entry)
    assert bound.P == 1
    # the BM trainer and its network run it by the units rule the SPEC carries
    trainer = _trains_to(bound, pstar)
    net = trainer.network(prune=False)
    assert net.gates is None
    assert np.allclose(net(data["X"]).detach().numpy(), bound.predict_bm(
        trainer.U.detach().numpy(), trainer.V.detach().numpy()))


def _trains_to(bound, pstar, rel=1e-5):
    """The BM trainer's objective reaches the CVXPY optimum p*, certified."""
    trainer = Trainer(bound, device="cpu")
    result = trainer.fit()
    assert result.objective == pytest.approx(pstar, rel=rel)
    assert result.certificate.gap_bound >= (result.objective - pstar) / pstar - 1e-8
    return trainer
