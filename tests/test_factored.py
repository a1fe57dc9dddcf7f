"""The lifted FISTA's L-BFGS phase on its iterate's factors (trainer/factored.py): from the
hand-off on, the fit reaches CVXPY's p* on the same patterns and certifies it (a bound >=
the true gap), on a small MLP and CNN with cross_entropy and logistic; it applies only
where the BM regularizer is smooth (both norms' forms of order 2)."""
import pytest
import torch
from test_default_grid import bound_for, optimum

from bmdsl.trainer import Trainer
from bmdsl.trainer import factored
from bmdsl.trainer.runtime import proxgrad
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
    monkeypatch.setattr(proxgrad, "HANDOFF", 3)
    monkeypatch.setattr(proxgrad, "CONDITION", 0.0)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("loss", ["cross_entropy", "logistic"])
def test_the_factored_phase_reaches_pstar_and_certifies(arch, loss, fista_early_handoff):
    bound = bound_for(arch, "gated_relu", loss, "l2", "l2")
    pstar = optimum(arch, "gated_relu", loss, "l2", "l2")
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
    """(l2, l1): ||v||_1^2 is not differentiable, so the FISTA runs on to its tolerance."""
    bound = bound_for("mlp", "gated_relu", "logistic", "l2", "l1")
    trainer = Trainer(bound, device="cpu")
    assert not factored.applies(trainer.problem)
    result = trainer.fit()
    assert result.warm_start["factored_evaluations"] == 0
    pstar = optimum("mlp", "gated_relu", "logistic", "l2", "l1")
    assert abs(result.objective - pstar) / pstar <= 1e-6


def test_the_gradient_is_the_objectives(fista_early_handoff):
    """The closure's gradient (G_k v + beta u, G_k^T u + beta v through the lifted operator)
    against central differences of the objective it returns, at a point with every unit
    non-zero."""
    bound = bound_for("cnn", "gated_relu", "cross_entropy", "l2", "l2")
    warm = Trainer(bound, device="cpu").warm
    warm.run(3)
    gen = torch.Generator().manual_seed(5)
    Z = torch.randn(warm.shape, generator=gen, dtype=torch.float64)
    phase = factored.FactoredLBFGS(warm.problem, warm.smooth, warm.norm, Z)
    assert torch.allclose(phase.solution(), Z, atol=1e-12)     # min(p, q) units hold Z
    f = float(phase._closure())
    gU, gV = phase.U.grad.clone(), phase.V.grad.clone()
    dU = torch.randn(gU.shape, generator=gen, dtype=torch.float64)
    dV = torch.randn(gV.shape, generator=gen, dtype=torch.float64)
    h = 1e-6

    def at(t):
        with torch.no_grad():
            U, V = phase.U + t * dU, phase.V + t * dV
            s = warm.smooth
            reg = 0.5 * float(bound.beta) * float((U * U).sum() + (V * V).sum())
            return s.value(s.forward(lift(U, V))) + reg
    assert at(0.0) == pytest.approx(f, rel=1e-12)
    slope = (at(h) - at(-h)) / (2 * h)
    assert slope == pytest.approx(float((gU * dU).sum() + (gV * dV).sum()), rel=1e-6)


def test_no_handoff_from_zero_and_the_bm_method_polishes_after_it(fista_early_handoff):
    """From Z = 0 every unit is a saddle (no hand-off); after a hand-off the factors always
    go to the BM method (L-BFGS may stop at a stationary point of the nonconvex objective)."""
    bound = bound_for("mlp", "gated_relu", "logistic", "l2", "l2")
    warm = Trainer(bound, device="cpu").warm
    warm.run(1)
    zero = torch.zeros(warm.shape, dtype=torch.float64)
    assert factored.handoff(warm.problem, warm.smooth, warm.norm, zero) is None
    warm.run(10)
    assert warm.factored is not None
    warm.factors(bound.p + bound.q)
    assert warm.POLISH
