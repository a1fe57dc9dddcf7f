"""The cone interior point (runtime/interior.py), the warm start of ReLU layers with a
scalar output: its optimum against CVXPY for the three ReLU cases (q = 1), both ways of
solving its Newton system, the factors it hands over, and how fit and the emitted trainer
use it."""
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import case, optimum

import bmdsl
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime import ridged
from bmdsl.trainer.runtime.interior import ConeInteriorPoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py
ARCHS = ["mlp", "cnn", "attention"]


def solved(bound, dense=None):
    trainer = Trainer(bound, device="cpu", warm_start=False)
    ip = ConeInteriorPoint(trainer.problem, dense=dense)
    assert ip.run(ip.MAX_ITER)                         # converged, not stopped by the cap
    U, V = ip.factors(trainer.m)
    return ip, U.reshape(trainer.U.shape).numpy(), V.reshape(trainer.V.shape).numpy()


@pytest.mark.parametrize("arch", ARCHS)
def test_interior_point_reaches_the_cvxpy_optimum(arch):
    """The factored solution is feasible for the cones (19) and within 1e-7 of p* (Clarabel's
    own tolerance is of that order, so either may be the lower one)."""
    bound = case(arch, "relu")
    ip, U, V = solved(bound)
    pstar = optimum(arch, "relu")
    value = bound.objective_bm(U, V)
    assert abs(value - pstar) <= 1e-7 * abs(pstar)
    assert value == pytest.approx(ip.objective(), rel=1e-12)    # factors keep the value
    assert np.min(bound.cone_slack(U)) >= -1e-12 * np.abs(U).max()


@pytest.mark.parametrize("arch", ARCHS)
def test_dense_and_woodbury_systems_agree(arch):
    bound = case(arch, "relu")
    a, Ua, _ = solved(bound, dense=True)
    b, Ub, _ = solved(bound, dense=False)
    assert a.dense and not b.dense
    assert a.objective() == pytest.approx(b.objective(), rel=1e-8)


# models/relu.bm (a scalar ReLU MLP) with the sweep's beta and 40 sampled patterns
RELU = (Path(__file__).resolve().parent.parent / "models" / "relu.bm").read_text()


@pytest.mark.parametrize("beta,accuracy", [(1e-3, 1e-6), (1e-1, 1e-7)])
@pytest.mark.parametrize("seed", [0, 1])
def test_accuracy_on_random_teachers(beta, accuracy, seed):
    """Within 1e-6 of p* (1e-7 at beta = 1e-1; Clarabel's defaults are within ~1e-8 with
    the squared loss); seed 1 at 1e-3 ended 8.2e-6 above p* while the Newton system's
    ridge followed the barrier's z / s (runtime/conesystem.py)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 2))
    Y = np.maximum(X @ rng.standard_normal((2, 3)), 0) @ rng.standard_normal(3)
    Y = Y + 0.3 * rng.standard_normal(30)
    text = RELU.replace("beta = 1e-2", f"beta = {beta}").replace("patterns = 50", "patterns = 40")
    assert f"beta = {beta}," in text and "patterns = 40" in text    # the model file changed?
    bound = bmdsl.parse(text).derive().bind({"X": X, "Y": Y})
    pstar = bound.to_cvxpy().solve().value
    _, U, V = solved(bound)
    assert abs(bound.objective_bm(U, V) - pstar) <= accuracy * abs(pstar)


def test_factors_follow_seed_002_theorem_1():
    """Unit 0 carries u_k with weight +sqrt|u_k|, unit 1 w_k with -sqrt|w_k|: the BM
    prediction is sum_k L_k(u_k - w_k) and (|u|^2 + v^2)/2 = |x_k| (balanced)."""
    bound = case("mlp", "relu")
    ip, U, V = solved(bound)
    x = ip.x.numpy()
    v = V.reshape(V.shape[0], V.shape[1])
    assert np.allclose(U[:, 0] * v[:, :1], x[:, 0]) and np.allclose(U[:, 1] * -v[:, 1:2], x[:, 1])
    assert np.allclose(0.5 * ((U[:, :2] ** 2).sum(2) + v[:, :2] ** 2), np.linalg.norm(x, axis=2))
    assert np.all(U[:, 2:] == 0) and np.all(v[:, 2:] == 0)


def test_fit_ends_at_the_interior_point_with_no_bm_step():
    bound = case("cnn", "relu")
    result = Trainer(bound, device="cpu").fit()
    ws = result.warm_start
    assert ws["method"] == "interior point" and ws["iterations"] > 0
    assert result.steps == 0 and result.history[0][0] == 0
    # converged ("tol"), or certified below the default gap target before (stopping.py)
    assert result.stopped == "tol" or (result.stopped == "certificate" and
                                       result.certificates[-1][1] <= 1e-6)
    pstar = optimum("cnn", "relu")
    assert abs(result.objective - pstar) <= 1e-7 * abs(pstar)
    # strictly inside the cones; factoring x_kj into (u, v) may round a slack to -1e-17
    # (restore_cones leaves rows within 1e-13 |S_i| |u|: rounding)
    assert result.violation <= 1e-15
    # the certificate holds: its bound is at least the true relative gap
    assert result.certificate.gap_bound >= (result.objective - pstar) / pstar - 1e-12


def test_fit_certifies_each_chunk_when_asked():
    bound = case("mlp", "relu")
    result = Trainer(bound, device="cpu").fit(certificate_every=1, cert_tol=1e-3)
    trace = result.warm_start["history"]
    assert all(h[3] is not None for h in trace) and result.steps == 0
    assert result.stopped == "certificate" and trace[-1][3] <= 1e-3
    assert trace[0][0] == ConeInteriorPoint.FIRST_CHUNK or len(trace) == 1


@pytest.mark.parametrize("change", ["float32", "m=1", "C=l1", "gated", "cross_entropy", "no gates"])
def test_where_it_does_not_apply(change):
    if change == "gated":
        bound = case("mlp", "gated_relu")
    elif change == "C=l1":
        bound = case("mlp", "relu", C="l1")
    elif change == "m=1":
        bound = case("mlp", "relu", m=1)
    else:
        bound = case("mlp", "relu")
    dtype = "float32" if change == "float32" else "float64"
    trainer = Trainer(bound, device="cpu", dtype=dtype, warm_start=False)
    if change == "cross_entropy":     # no diagonal Hessian declared (and no scalar form)
        trainer.problem.spec = dict(trainer.problem.spec, loss="cross_entropy")
    if change == "no gates":          # masks given without their gates: no start
        trainer.problem.gates = None
    assert ConeInteriorPoint.accepts(trainer.problem, trainer.m) is not None


def test_cholesky_grows_a_ridge_where_rounding_made_a_block_indefinite():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(3, 4, 2, generator=gen, dtype=torch.float64)
    B = A @ A.transpose(1, 2) - 1e-12 * torch.eye(4, dtype=torch.float64)   # rank 2, < 0
    L = ridged.ridged_cholesky(B)
    assert torch.isfinite(L).all()
    assert torch.allclose(L @ L.transpose(1, 2), B, atol=1e-6 * float(B.abs().max()))


def test_auto_leaves_mini_batch_runs_and_named_methods_alone():
    bound = case("mlp", "relu")
    assert isinstance(Trainer(bound, device="cpu").warm, ConeInteriorPoint)
    assert Trainer(bound, device="cpu", batch_size=4).warm is None
    assert Trainer(bound, device="cpu", method="lbfgs").warm is None
    assert isinstance(Trainer(bound, device="cpu", method="lbfgs", warm_start=True).warm,
                      ConeInteriorPoint)


def test_a_gate_on_a_face_of_its_cone_gives_no_solver():
    trainer = Trainer(case("mlp", "relu"), device="cpu", warm_start=False)
    problem = trainer.problem
    gates = problem.gates.clone()
    M = problem.layer_basis().reshape(problem.p, -1).T
    row = M[0] / M[0].norm()
    gates[0] = gates[0] - (gates[0] @ row) * row      # now A(h_0) has a zero on row 0
    problem.gates = gates
    assert ConeInteriorPoint.of(problem) is None
