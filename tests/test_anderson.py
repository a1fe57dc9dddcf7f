"""The proximal Newton's and the majorization's inner solves (runtime/anderson.py: Anderson
acceleration of the lifted ADMM), the weighted Gram through the free outputs' blocks
(runtime/hessian.py), and the certificate's one search per ray (certificates/search.py).
The default fits that use them reach CVXPY's p* with valid certificates: test_proxadmm.py
and test_pnewton.py."""
import numpy as np
import pytest
import torch

from bmdsl.certificates import certify
from bmdsl.kernel.lossforms import Logistic
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime.anderson import balanced_solve
from bmdsl.trainer.runtime.freeoutputs import Outputs
from bmdsl.trainer.runtime.gram import Gram
from bmdsl.trainer.runtime.hessian import Curvature, DenseL
from bmdsl.trainer.runtime.lifted import LiftedADMM
from test_proxadmm import spiral_bound

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def _model(seed=0, P=6, p=2, q=3):
    """1/2 z'Gz - b'z + beta sum_k ||Z_k||_* with a singular G (fewer rows than N)."""
    gen = torch.Generator().manual_seed(seed)
    N = P * p * q
    A = torch.randn(N // 2, N, generator=gen, dtype=torch.float64)
    b = A.T @ torch.randn(N // 2, generator=gen, dtype=torch.float64)
    return Gram(A.T @ A, b, 0.0, (P, p, q))


def _objective(model, beta, X):
    x = X.reshape(-1)
    return float(0.5 * x @ model.GF @ x - model.b @ x + beta * torch.linalg.svdvals(X).sum())


NO_RHO_CHANGE = (50, 10.0, 4.0, 0)       # chunk, balance, step, changes


def test_anderson_reaches_the_plain_admms_solution_in_fewer_iterations():
    model, beta = _model(), 0.5
    plain = LiftedADMM(model, beta, rho=0.1)
    assert plain.run(20000, tol=1e-11)
    fast, iterations = balanced_solve(LiftedADMM(model, beta, rho=0.1), None, 1e-11, 20000,
                                      NO_RHO_CHANGE)
    assert iterations == fast.iterations < plain.iterations / 2
    X, Xp = fast.solution(), plain.solution()
    assert torch.allclose(X, Xp, atol=1e-7 * float(Xp.abs().max()))
    assert abs(_objective(model, beta, X) - _objective(model, beta, Xp)) <= \
        1e-10 * abs(_objective(model, beta, Xp))


def test_a_budget_ends_on_the_prox_iterate():
    """Stopped mid-way, x is the prox's output (exact zeros), not an extrapolation: the
    warm starts factor it (dprox.DNorm.units)."""
    model, beta = _model(1), 2.0
    admm, iterations = balanced_solve(LiftedADMM(model, beta, rho=0.01), None, 1e-14, 30,
                                      NO_RHO_CHANGE)
    assert iterations == 30
    assert bool((torch.linalg.svdvals(admm.solution()) == 0).any())   # thresholded


def test_a_cold_start_runs_its_first_chunk_plain():
    """From x = 0 the first chunk is the plain ADMM's iterates exactly (far from the solution
    the extrapolation did not lower the residual); from a warm iterate it extrapolates."""
    model, beta = _model(2), 0.5
    plain = LiftedADMM(model, beta, rho=0.1)
    plain.run(40, tol=1e-14)
    cold, _ = balanced_solve(LiftedADMM(model, beta, rho=0.1), None, 1e-14, 40, NO_RHO_CHANGE)
    assert torch.equal(cold.x, plain.x) and torch.equal(cold.u, plain.u)
    warm = LiftedADMM(model, beta, rho=0.1)
    warm.x, warm.u = plain.x, plain.u
    warm, _ = balanced_solve(warm, None, 1e-14, 40, NO_RHO_CHANGE)
    plain.run(40, tol=1e-14)
    assert not torch.equal(warm.x, plain.x)


def test_rho_is_balanced_with_a_new_admm():
    model, beta, made = _model(), 0.5, []

    def renew(admm, rho):
        new = LiftedADMM(model, beta, rho=rho)
        new.x, new.u = admm.x, admm.u * (admm.rho / rho)
        made.append(rho)
        return new
    admm, _ = balanced_solve(LiftedADMM(model, beta, rho=1e-4), renew, 1e-11, 20000,
                             (50, 10.0, 4.0, 3))
    assert 1 <= len(made) <= 3 and admm.rho == made[-1]
    assert admm.primal <= 1e-11 and admm.dual <= 1e-11


def test_block_gram_of_a_diagonal_hessian_over_free_outputs():
    """A diagonal Hessian (logistic on three +-1 outputs) over the spiral's three free
    outputs: the c blocks F^T diag(h_o) F laid out in Z's order equal M^T diag(h) M."""
    trainer = Trainer(spiral_bound("cross_entropy", "l2", "l2"), device="cpu")
    pb = trainer.problem
    op = DenseL(pb)
    gen = torch.Generator().manual_seed(2)
    Y = torch.where(torch.randn(pb.Y.shape, generator=gen, dtype=torch.float64) > 0, 1.0, -1.0)
    yhat = torch.randn(Y.shape, generator=gen, dtype=torch.float64)
    layout = Outputs(pb.spec, pb.P, pb.p, pb.w2_shape)
    assert layout.c == 3
    dense = Curvature(Logistic(), Y).weighted_gram(op.M, yhat)
    block = Curvature(Logistic(), Y, layout)
    assert block.layout is not None
    assert torch.allclose(block.weighted_gram(op.M, yhat), dense,
                          atol=1e-13 * float(dense.abs().max()))


def test_a_repeated_direction_is_one_ray():
    """A hint at the certified point itself gives the same bound (its ray is searched once)."""
    bound = spiral_bound("cross_entropy", "l2", "l2")
    result = Trainer(bound, device="cpu").fit(cert_tol=1e-3)
    U, V = result.U, result.V
    Z = bound.lift(U, V)
    plain = certify(bound, U, V, refine_iters=0)
    hinted = certify(bound, U, V, refine_iters=0, hints=(Z,))
    assert hinted.gap_bound == plain.gap_bound
    other = certify(bound, U, V, refine_iters=0, hints=(np.zeros_like(Z) + 0.5 * Z,))
    assert other.gap_bound <= plain.gap_bound       # a different ray can only help
