"""The lifted FISTA's L-BFGS phase on its iterate's factors (trainer/factored.py): from the
hand-off on, the fit reaches CVXPY's p* on the same patterns and certifies it (a bound >=
the true gap), on a small MLP and CNN with cross_entropy and logistic, for (l2, l2) and for
the pairs whose units are coordinate vectors on one side ((l2, l1), (l1, l2)); it applies
only where the BM regularizer is smooth on the units (the free side's norm of order 2).
The L-BFGS of lbfgs.py reaches a quadratic's minimizer."""
import pytest
import torch
from test_default_grid import bound_for, optimum

from bmdsl.trainer import Trainer
from bmdsl.trainer import factored
from bmdsl.trainer.lbfgs import LBFGS
from bmdsl.trainer.runtime.gram import lift

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.fixture
def fista_early_handoff(monkeypatch):
    """Only the lifted FISTA among the warm starts (the proximal Newton and the prox ADMM
    take these losses first), handing off after 3 iterations whatever the conditioning, so
    the L-BFGS phase does the work on these tiny problems (where the FISTA alone converges
    quickly)."""
    import bmdsl.trainer.trainer as trainer_module
    monkeypatch.setattr(trainer_module, "WARM_STARTS",
                        tuple(w for w in trainer_module.WARM_STARTS if w.name == "fista"))
    monkeypatch.setattr(factored, "HANDOFF", 3)
    monkeypatch.setattr(factored, "CONDITION", 0.0)


@pytest.mark.parametrize("arch,loss,C,R", [
    (arch, loss, "l2", "l2") for arch in ("mlp", "cnn")
    for loss in ("cross_entropy", "logistic")] + [
    ("cnn", "logistic", "l2", "l1"), ("cnn", "cross_entropy", "l2", "l1"),
    ("mlp", "cross_entropy", "l2", "l1"), ("mlp", "cross_entropy", "l1", "l2")])
def test_the_factored_phase_reaches_pstar_and_certifies(arch, loss, C, R,
                                                        fista_early_handoff):
    bound = bound_for(arch, "gated_relu", loss, C, R)
    pstar = optimum(arch, "gated_relu", loss, C, R)
    trainer = Trainer(bound, device="cpu")
    assert trainer.warm.name == "fista"
    result = trainer.fit(cert_tol=1e-7)
    ws = result.warm_start
    assert ws["method"] == "lifted FISTA" and ws["factored_evaluations"] > 0
    true_gap = (result.objective - pstar) / pstar
    assert abs(true_gap) <= 1e-6
    gap = result.certificate.gap_bound
    assert true_gap - 1e-8 <= gap <= 1e-6     # valid (CVXPY's p* is accurate to ~1e-9)


def test_no_handoff_where_a_norm_square_is_not_smooth(fista_early_handoff):
    """(l1, l1): units e_i v^T with ||v||_1^2 not differentiable, so the FISTA runs on to its
    tolerance."""
    bound = bound_for("mlp", "gated_relu", "logistic", "l1", "l1")
    trainer = Trainer(bound, device="cpu")
    assert not factored.applies(trainer.problem, trainer.warm.norm)
    result = trainer.fit()
    assert result.warm_start["factored_evaluations"] == 0
    pstar = optimum("mlp", "gated_relu", "logistic", "l1", "l1")
    assert abs(result.objective - pstar) / pstar <= 1e-6


@pytest.mark.parametrize("C,R", [("l2", "l2"), ("l2", "l1"), ("l1", "l2")])
def test_the_gradient_is_the_objectives(C, R, fista_early_handoff):
    """The gradient (G_k v + beta u, G_k^T u + beta v through the lifted operator, held on
    the coordinate units where the pair has them) against central differences of the
    objective it returns along a direction that keeps the units there, at a point with
    every unit non-zero; the units hold Z exactly and their regularizer is beta ||Z||_D."""
    bound = bound_for("cnn", "gated_relu", "cross_entropy", C, R)
    warm = Trainer(bound, device="cpu").warm
    warm.run(3)
    gen = torch.Generator().manual_seed(5)
    Z = torch.randn(warm.shape, generator=gen, dtype=torch.float64)
    phase = factored.FactoredLBFGS(warm.problem, warm.smooth, warm.norm, Z)
    assert torch.allclose(phase.solution(), Z, atol=1e-12)     # the units hold Z
    x = phase.opt.x
    f, g = phase._value_gradient(x)
    s = warm.smooth
    assert f == pytest.approx(s.value(s.forward(Z)) + float(bound.beta) * warm.norm.value(Z),
                              rel=1e-12)                       # balanced: beta ||Z||_D
    d = torch.cat([factored._held(torch.randn(W.shape, generator=gen, dtype=W.dtype), mask)
                   .reshape(-1) for W, mask in zip(phase._split(x), phase.masks)])
    h = 1e-6
    slope = (phase._value_gradient(x + h * d)[0] - phase._value_gradient(x - h * d)[0]) / (2 * h)
    assert slope == pytest.approx(float(g @ d), rel=1e-6)


def test_lbfgs_reaches_a_quadratics_minimizer():
    """lbfgs.LBFGS on 1/2 x'Ax - b'x (A positive definite, condition 1e2), resumed in chunks
    of 10 evaluations as the FISTA runs it: the minimizer A^{-1} b to 1e-6 relative after
    200 evaluations (torch.optim.LBFGS, the same iteration, in one call: 1.7e-7)."""
    gen = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen, dtype=torch.float64))
    A = Q @ torch.diag(torch.logspace(0, 2, 30, dtype=torch.float64)) @ Q.T
    b = torch.randn(30, generator=gen, dtype=torch.float64)
    opt = LBFGS(lambda x: (float(0.5 * x @ A @ x - b @ x), A @ x - b),
                torch.zeros(30, dtype=torch.float64), memory=10)
    for _ in range(20):
        opt.run(10)
    assert opt.evaluations <= 200 + 20
    xs = torch.linalg.solve(A, b)
    assert float((opt.x - xs).norm()) <= 1e-6 * float(xs.norm())


def test_no_handoff_from_zero_and_the_bm_method_polishes_after_it(fista_early_handoff):
    """From Z = 0 every unit is a saddle (no hand-off); after a hand-off the factors always
    go to the BM method (L-BFGS may stop at a stationary point of the nonconvex objective)."""
    bound = bound_for("mlp", "gated_relu", "logistic", "l2", "l2")
    warm = Trainer(bound, device="cpu").warm
    warm.run(1)
    zero = torch.zeros(warm.shape, dtype=torch.float64)
    assert factored.handoff(warm.problem, warm.smooth, warm.norm, zero, 10, 1e9) is None
    warm.run(10)
    assert warm.factored is not None
    warm.factors(bound.p + bound.q)
    assert warm.POLISH


def test_a_chunk_ends_once_the_plain_bound_meets_the_goal(fista_early_handoff):
    """With the fit's goal on the problem, the L-BFGS phase ends its call at the first
    check where its plain bound (from the evaluation's own Yhat and G) meets the goal,
    long before the evaluations asked for; the certificate of the factors there meets the
    goal too, and the plain bound is never below the certificate's plain candidate (it
    takes the end of the same ray, the certificate searches the ray): it cannot stop a
    chunk the certificate would not certify, but for the certificate's refactoring; so it
    stops once only."""
    from bmdsl.certificates import certify
    bound = bound_for("cnn", "gated_relu", "cross_entropy", "l2", "l2")
    trainer = Trainer(bound, device="cpu")
    warm = trainer.warm
    warm.run(3)
    trainer.problem.goal = 1e-5
    warm.run(5000)
    phase = warm.factored
    assert phase is not None and warm.iterations < 1000
    shapes = trainer.U.shape, trainer.V.shape
    U, V = (W.reshape(s).numpy() for W, s in zip(warm.factors(trainer.m), shapes))
    cert = certify(bound, U, V, refine_iters=0)
    assert cert.gap_bound <= 1e-5
    f, loss, Z, yhat, G = phase.seen[-1]
    plain = phase.plain(loss + float(bound.beta) * warm.norm.value(Z), yhat, G)
    U, V = (W.reshape(s).numpy() for W, s in zip(warm.norm.units(Z, trainer.m)[:2], shapes))
    at = certify(bound, U, V, refine_iters=0)
    assert plain >= at.plain_gap_bound * (1 - 1e-9) - 1e-12
    assert plain <= at.plain_gap_bound * (1 + 1e-6) + 1e-12     # the same candidate
    before = warm.iterations          # called again (a miss): the chunk runs whole
    assert warm.run(30) or warm.iterations - before >= 30
