"""The lifted ADMM warm start (runtime/lifted.py): its prox, its factors, its optimum against
CVXPY for every case it applies to, and how fit uses it (step 0, certificate, resume)."""
import numpy as np
import pytest
import torch
from test_trainer import CASES, case, optimum

from bmdsl.trainer import Trainer, TrainerError
from bmdsl.trainer.runtime import lifted
from bmdsl.trainer.runtime.gram import lift

SMOOTH = [c for c in CASES if c[1] != "relu"]


def test_shrink_is_the_prox_of_the_nuclear_norm():
    """X = prox(Z) iff Z - X = tau (A B^T + W) with W orthogonal to X's spaces, |W| <= 1;
    checked by the prox's defining inequality against random competitors."""
    gen = torch.Generator().manual_seed(0)
    Z = torch.randn(5, 3, 4, generator=gen, dtype=torch.float64)
    tau = 0.7
    X = lifted.shrink(Z, tau)

    def value(Y):
        return 0.5 * ((Y - Z) ** 2).sum((1, 2)) + tau * torch.linalg.svdvals(Y).sum(1)
    best = value(X)
    for _ in range(50):
        Y = X + 0.1 * torch.randn(X.shape, generator=gen, dtype=torch.float64)
        assert bool((value(Y) >= best - 1e-12).all())
    sz, sx = torch.linalg.svdvals(Z), torch.linalg.svdvals(X)
    assert torch.allclose(sx, torch.relu(sz - tau), atol=1e-12)


def test_factor_is_balanced_and_reproduces_the_nuclear_norm():
    gen = torch.Generator().manual_seed(1)
    X = lifted.shrink(torch.randn(4, 3, 2, generator=gen, dtype=torch.float64), 0.5)
    U, V = lifted.factor(X, m=3)
    assert torch.allclose(lift(U, V), X, atol=1e-12)
    assert torch.allclose(U.norm(dim=2), V.norm(dim=2), atol=1e-12)
    # (1/2)(|U|^2 + |V|^2) = ||X||_*: the BM regularizer equals the convex one (eq. (15))
    half = 0.5 * (U.pow(2).sum() + V.pow(2).sum())
    assert float(half) == pytest.approx(float(torch.linalg.svdvals(X).sum()), rel=1e-12)
    U1, V1 = lifted.factor(X, m=1)          # fewer units than the rank: the top pair only
    assert torch.allclose(U1.norm(dim=2)[:, 0] ** 2, torch.linalg.svdvals(X)[:, 0])


@pytest.mark.parametrize("arch,act", SMOOTH)
def test_admm_reaches_the_cvxpy_optimum(arch, act):
    bound = case(arch, act)
    trainer = Trainer(bound, device="cpu", warm_start=True)
    admm = trainer.warm
    admm.run(lifted.MAX_ITER, tol=1e-11)
    U, V = lifted.factor(admm.solution(), trainer.m)
    value = bound.objective_bm(U.reshape(trainer.U.shape).numpy(),
                               V.reshape(trainer.V.shape).numpy())
    pstar = optimum(arch, act)
    assert pstar - 1e-7 * abs(pstar) <= value <= pstar + 1e-6 * abs(pstar)


@pytest.mark.parametrize("arch,act", SMOOTH)
def test_bm_alone_reaches_the_optimum_too(arch, act):
    """warm_start=False: the BM method from random factors (what ran before the warm start)."""
    bound = case(arch, act)
    result = Trainer(bound, device="cpu", warm_start=False).fit(certify=False)
    assert result.warm_start is None
    assert abs(result.objective - optimum(arch, act)) <= 1e-4 * abs(optimum(arch, act))


def test_fit_records_the_warm_start_as_step_zero_and_can_stop_there():
    bound = case("mlp", "gated_relu")
    trainer = Trainer(bound, device="cpu")
    assert trainer.warm is not None
    result = trainer.fit(cert_tol=1e-3, certificate_every=25)
    ws = result.warm_start
    assert ws["iterations"] > 0 and ws["seconds"] > 0 and ws["rho"] == pytest.approx(
        lifted.RHO_BETA * bound.beta)
    assert result.history[0][0] == 0 and result.certificates[0][0] == 0
    trace = ws["history"]          # (ADMM iterations, objective, seconds, gap) per chunk
    assert trace[-1][0] == ws["iterations"] and all(h[3] is not None for h in trace)
    assert [h[0] for h in trace] == sorted(h[0] for h in trace)
    if result.steps == 0:                        # certified by the warm start alone
        assert result.stopped == "certificate" and result.certificates[-1][1] <= 1e-3
    assert result.certificate.gap_bound <= 1e-3
    pstar = optimum("mlp", "gated_relu")
    assert result.certificate.gap_bound >= (result.objective - pstar) / pstar - 1e-9
    # a second fit continues from the trained factors: no second warm start
    again = trainer.fit(5, certify=False)
    assert trainer.warm is None and again.history[0][0] == 1
    assert again.objective <= result.objective + 1e-9 * abs(result.objective)


def test_warm_start_where_it_does_not_apply():
    relu = case("mlp", "relu", C="l1")        # cones with C = l1: neither solver applies
    assert Trainer(relu, device="cpu").warm is None                  # auto: silently off
    with pytest.raises(TrainerError, match="no warm start applies"):
        Trainer(relu, device="cpu", warm_start=True)
    gated = case("mlp", "gated_relu")
    assert Trainer(gated, device="cpu", dtype="float32").warm is None   # no Gram in float32
    with pytest.raises(TrainerError, match="warm_start must be"):
        Trainer(gated, device="cpu", warm_start="yes")
    # a method asked for by name starts from random factors unless the warm start is asked for
    assert Trainer(gated, device="cpu", method="newton").warm is None
    assert Trainer(gated, device="cpu", method="lbfgs", warm_start=True).warm is not None


def test_warm_start_then_newton_is_deterministic():
    bound = case("cnn", "gated_relu")
    a = Trainer(bound, device="cpu").fit(20, certify=False)
    b = Trainer(bound, device="cpu").fit(20, certify=False)
    assert np.array_equal(a.U, b.U) and a.warm_start["iterations"] == b.warm_start["iterations"]


def test_rho_grows_where_g_plus_rho_is_numerically_indefinite():
    """G = L^T L of rank 6 < N = 12: with rho far below G's rounding, Cholesky fails, and
    rho must grow until it succeeds instead of raising."""
    from bmdsl.trainer.runtime.gram import Gram
    gen = torch.Generator().manual_seed(3)
    L = torch.randn(6, 12, generator=gen, dtype=torch.float64)
    y = torch.randn(6, generator=gen, dtype=torch.float64)
    G = L.T @ L
    G = G - 1e-9 * torch.eye(12, dtype=torch.float64)      # rounding made it indefinite
    gram = Gram(G, L.T @ y, float(y @ y), (4, 3, 1))
    admm = lifted.LiftedADMM(gram, beta=1e-14)
    admm.run(200)
    assert admm.rho >= 1e-9 and torch.isfinite(admm.solution()).all()
    assert float(gram.loss(admm.solution())) < 0.5 * float(y @ y)


def test_dual_hints_only_tighten_and_stay_valid():
    """certify(..., hints=[Z]) adds t grad F(L(Z)) as a dual candidate: near the optimum it
    tightens the bound; a random hint cannot loosen it; the bound stays >= the true gap."""
    from bmdsl.certificates import certify
    from bmdsl.cvx import build_problem
    bound = case("mlp", "gated_relu")
    sol = build_problem(bound).solve()
    U, V = lifted.factor(torch.as_tensor(sol.Z), 5)
    U, V = U.numpy() * 1.01, V.numpy()          # a slightly suboptimal BM point
    pstar = optimum("mlp", "gated_relu")
    true_gap = (bound.objective_bm(U, V) - pstar) / pstar
    plain = certify(bound, U, V, refine_iters=0).gap_bound
    hinted = certify(bound, U, V, refine_iters=0, hints=[sol.Z]).gap_bound
    noise = np.random.default_rng(0).standard_normal(np.shape(sol.Z))
    random = certify(bound, U, V, refine_iters=0, hints=[noise]).gap_bound
    assert true_gap - 1e-12 <= hinted < 0.5 * plain
    assert true_gap - 1e-12 <= random <= plain
