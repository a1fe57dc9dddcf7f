"""The lifted ADMM's balanced rho (runtime/lifted.py): it reaches CVXPY's p* on small MLP,
CNN and self-attention models with both pairs, it moves rho both ways where the start
RHO_BETA * beta does not fit the data's scale (and stops where a fixed rho needs the
iteration cap), a rho given by a caller stays fixed, and the z-step through G_F's range
(few samples) equals the explicit inverse's."""
import cvxpy as cp
import numpy as np
import pytest
import torch
from test_default_grid import bound_for, optimum

from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime import lifted
from bmdsl.trainer.runtime.gram import Gram

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.mark.parametrize("arch", ["mlp", "cnn", "attention"])
@pytest.mark.parametrize("R", ["l2", "l1"])
def test_balanced_admm_reaches_the_cvxpy_optimum(arch, R):
    bound = bound_for(arch, "gated_relu", "squared", "l2", R)
    trainer = Trainer(bound, device="cpu", warm_start=True)
    admm = trainer.warm
    assert admm.name == "admm" and admm.adapt
    admm.run(lifted.MAX_ITER, tol=1e-10)
    U, V = admm.factors(trainer.m)
    value = bound.objective_bm(U.reshape(trainer.U.shape).numpy(),
                               V.reshape(trainer.V.shape).numpy())
    pstar = optimum(arch, "gated_relu", "squared", "l2", R)
    assert abs(value - pstar) <= 1e-6 * abs(pstar)


def synthetic(scale, beta, seed=0, shape=(4, 3, 2), n=40):
    """A Gram of L = scale * N(0, 1) [n, P p q] and y ~ N(0, 1): rho's best value moves with
    scale^2 while RHO_BETA * beta does not. Returns (gram, p*) with p* from CVXPY."""
    gen = torch.Generator().manual_seed(seed)
    L = scale * torch.randn(n, int(np.prod(shape)), generator=gen, dtype=torch.float64)
    y = torch.randn(n, generator=gen, dtype=torch.float64)
    P, p, q = shape
    Z = [cp.Variable((p, q)) for _ in range(P)]
    z = cp.hstack([cp.vec(Zk, order="C") for Zk in Z])
    objective = 0.5 * cp.sum_squares(L.numpy() @ z - y.numpy()) + \
        beta * sum(cp.normNuc(Zk) for Zk in Z)
    problem = cp.Problem(cp.Minimize(objective))
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10)
    return Gram(L.T @ L, L.T @ y, float(y @ y), shape), problem.value


def value(gram, beta, admm):
    X = admm.solution()
    return float(gram.loss(X)) + beta * float(torch.linalg.svdvals(X).sum())


@pytest.mark.parametrize("scale,beta,up", [(100.0, 1e-3, True), (1e-3, 1e-3, False)])
def test_rho_moves_to_the_datas_scale(scale, beta, up):
    """scale 100: rho = 0.3 beta is far below L's curvature, the fixed rho runs to its cap
    (5000 iterations, measured) and the balanced one stops within a fifth of it with rho
    grown; scale 1e-3: rho is far above, and it shrinks."""
    gram, pstar = synthetic(scale, beta)
    fixed = lifted.LiftedADMM(gram, beta, rho=lifted.RHO_BETA * beta)
    fixed_done = fixed.run(lifted.MAX_ITER)
    balanced = lifted.LiftedADMM(gram, beta)
    assert balanced.run(lifted.MAX_ITER)
    assert balanced.changes >= 1
    assert (balanced.rho > 10 * fixed.rho) if up else (balanced.rho < fixed.rho / 10)
    if up:
        assert not fixed_done and fixed.iterations == lifted.MAX_ITER
    assert balanced.iterations <= fixed.iterations / 5
    assert abs(value(gram, beta, balanced) - pstar) <= 1e-7 * abs(pstar)
    info = balanced.info()
    assert info["rho"] == balanced.rho and info["rho_changes"] == balanced.changes


def test_a_given_rho_stays_and_a_still_iterate_does_not_move_it():
    gram, _ = synthetic(100.0, 1e-3)
    given = lifted.LiftedADMM(gram, 1e-3, rho=3e-4)
    given.run(300)
    assert given.rho == 3e-4 and given.changes == 0 and not given.adapt
    # beta so large that every x is exactly 0: no residual ratio to balance, rho stays
    gram, _ = synthetic(1e-2, 1.0)
    still = lifted.LiftedADMM(gram, 1.0)
    still.run(500)
    assert float(still.solution().abs().max()) == 0.0
    assert still.changes == 0 and still.rho == lifted.RHO_BETA * 1.0


def test_low_rank_z_step_matches_the_inverse_and_a_wrong_rank_bound_is_caught():
    """n = 12 samples, N = 96: G_F has rank 12 <= LOW_RANK N, so the z-step goes through
    its range (O(N r)); the iterates equal those of the explicit inverse, and a rank bound
    below the true rank fails the range check (the inverse is used)."""
    gram, pstar = synthetic(1.0, 1e-2, shape=(8, 4, 3), n=12)
    low = lifted.LiftedADMM(gram, 1e-2, rho=3e-3, rank=12)     # a fixed rho: same steps
    dense = lifted.LiftedADMM(gram, 1e-2, rho=3e-3)
    for admm in (low, dense):
        admm.run(300)
    assert low.low and low.low[0].shape == (96, 12) and low.inverse is None
    assert dense.low is False and dense.inverse is not None
    assert torch.allclose(low.x, dense.x, rtol=0, atol=1e-9 * float(dense.x.abs().max()))
    low = lifted.LiftedADMM(gram, 1e-2, rank=12)                # balanced: no refactoring
    low.run(lifted.MAX_ITER, tol=1e-10)
    assert low.changes >= 1 and low.inverse is None
    assert abs(value(gram, 1e-2, low) - pstar) <= 1e-7 * abs(pstar)
    wrong = lifted.LiftedADMM(gram, 1e-2, rank=1)       # a sketch of 9 < 12 columns
    wrong.run(10)
    assert wrong.low is False and wrong.inverse is not None


def test_the_z_step_solves_with_the_cholesky_factor_as_the_explicit_inverse_did():
    """The z-step solves with the Cholesky factor C of G_F + rho I (C C^T = G_F + rho I,
    lower triangular; no inverse formed: cholesky_inverse cost 1.4-2.3 factorizations at
    every change of rho); its iterates equal, to rounding, those of an ADMM whose z-step
    multiplies by the explicit inverse (the path a subclass's _inverse takes, as
    majorize.py's), with rho balanced (so refactored) in both."""
    gram, pstar = synthetic(1.0, 1e-2, shape=(8, 4, 3), n=200)   # full rank: no range path
    admm = lifted.LiftedADMM(gram, 1e-2)
    explicit = lifted.LiftedADMM(gram, 1e-2)

    def inverse():
        explicit.low = False
        eye = torch.eye(gram.GF.shape[0], dtype=gram.GF.dtype)
        return torch.linalg.inv(gram.GF + explicit.rho * eye)
    explicit._inverse = inverse
    admm.run(1)
    C = admm.inverse
    assert admm.low is False and admm.cholesky and not explicit.cholesky
    assert torch.equal(C, C.tril())
    eye = torch.eye(C.shape[0], dtype=C.dtype)
    assert torch.allclose(C @ C.T, gram.GF + admm.rho * eye, rtol=0, atol=1e-12 * float(
        gram.GF.abs().max()))
    admm.run(399)
    explicit.run(400)
    assert admm.changes >= 1 and admm.changes == explicit.changes
    assert abs(admm.rho - explicit.rho) <= 1e-6 * explicit.rho     # a ratio of residuals
    assert torch.allclose(admm.x, explicit.x, rtol=0, atol=1e-8 * float(explicit.x.abs().max()))
    admm.run(lifted.MAX_ITER, tol=1e-10)
    assert abs(value(gram, 1e-2, admm) - pstar) <= 1e-7 * abs(pstar)


def test_the_prox_admms_inverse_is_stored_by_rows_and_inverts():
    """proxadmm.regularized_inverse (the prox ADMM's and the majorization's metric) is read
    by rows too: stored by columns, the built-in CNN's Huber cells took 2-4x longer."""
    from bmdsl.trainer.runtime.proxadmm import regularized_inverse
    gram, _ = synthetic(1.0, 1e-2, shape=(8, 4, 3), n=200)
    K, eta = regularized_inverse(gram.GF, 3e-3)
    assert K.stride() == (K.shape[1], 1)
    eye = torch.eye(K.shape[0], dtype=K.dtype)
    assert torch.allclose(K @ (gram.GF + eta * eye), eye, atol=1e-8)
    assert torch.equal(K, K.T)
