"""The CVXPY program's memory estimate per loss (bmdsl.core.cvxfootprint.loss_program): each
loss entry declares the size of its CVXPY form (`cvxpy_size`), the estimate adds it, a loss
without a declaration is charged a conservative default, and a program whose estimate is
above the budget is refused before anything is built (the CLI: exit 1, the estimate)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bmdsl
from bmdsl.atoms.losses import get_loss
from bmdsl.cli import main
from bmdsl.core import cvxfootprint, memory
from bmdsl.core.memory import MemoryBudgetError
from bmdsl.kernel.lossforms import LOSS_KERNELS, Squared

ROOT = Path(__file__).resolve().parents[1]
MLP = (ROOT / "models" / "mlp.bm").read_text()


@pytest.fixture(autouse=True)
def _no_budget_env(monkeypatch):
    monkeypatch.delenv(memory.BUDGET_ENV, raising=False)


def _bound(loss: str, n: int = 60):
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((n, 2)), "Y": np.eye(3)[rng.integers(0, 3, n)]}
    return bmdsl.parse(MLP.replace("loss       squared", f"loss       {loss}")).derive() \
        .bind(data)


def test_the_mlp_model_text_names_its_loss_where_replaced():
    assert "loss       squared" in MLP      # the replacement above is not a silent no-op


@pytest.mark.parametrize("lowering", ["dense", "structured"])
def test_cross_entropy_estimate_exceeds_squared_by_the_declared_terms(lowering):
    sq, ce = _bound("squared"), _bound("cross_entropy")
    assert sq.operator_nnz() == ce.operator_nnz() and sq.Y.shape == ce.Y.shape
    est_sq = cvxfootprint.cvxpy_plan_for(sq, lowering)[1]
    est_ce = cvxfootprint.cvxpy_plan_for(ce, lowering)[1]
    ny, c, lifted = sq.Y.size, sq.Y.shape[-1], sq.P * sq.p * sq.q
    n = ny // c
    term = lambda size: cvxfootprint.loss_program(ny, c, lifted, size)[0]   # noqa: E731
    declared = term(get_loss("cross_entropy").cvxpy_size) - term(get_loss("squared").cvxpy_size)
    # rows (3 + 1 vs 1 + 1 per entry, 2 per sample); the KKT factor: one triangle over all
    # of Yhat's rows (the per-sample variable couples the outputs) instead of c over n
    m, k = min(ny, lifted), min(n, -(-lifted // c))
    expected = cvxfootprint.LOSS_BYTES_PER_ROW * (2 * ny + 2 * n) \
        + cvxfootprint.KKT_FILL_BYTES * (m * (m + 1) // 2 - c * k * (k + 1) // 2)
    assert declared == expected > 0
    assert est_ce.nbytes - est_sq.nbytes == declared
    assert "couples the outputs" in est_ce.what and "couples" not in est_sq.what


def test_every_builtin_loss_is_charged_by_its_declaration():
    sizes = {name: get_loss(name).cvxpy_size for name in LOSS_KERNELS}
    assert all(s is not None for s in sizes.values())
    charged = {name: cvxfootprint.loss_program(1000, 10, 10**6, s)[0] for name, s in sizes.items()}
    # the exponential-cone losses cost more than the squared loss's one row and variable
    assert charged["squared"] < min(charged["logistic"], charged["huber"], charged["cross_entropy"])


def test_an_undeclared_loss_gets_the_conservative_default(monkeypatch):
    class Undeclared(Squared):                     # a loss registered at test time
        name, cvxpy_size = "undeclared_squared", None
    monkeypatch.setitem(LOSS_KERNELS, Undeclared.name, Undeclared)
    # the default is at least every built-in declaration, place by place
    for kernel in (k for n, k in LOSS_KERNELS.items() if n != Undeclared.name):
        assert all(d >= v for d, v in zip(cvxfootprint.LOSS_DEFAULT, kernel.cvxpy_size))
    bound = _bound(Undeclared.name)
    assert bound.loss.cvxpy_size is None
    est = cvxfootprint.cvxpy_for(bound)
    assert "the loss declares no size" in est.what
    assert all(est.nbytes >= cvxfootprint.cvxpy_for(_bound(n)).nbytes
               for n in ("squared", "cross_entropy"))


def test_a_budget_between_the_two_refuses_cross_entropy_only(monkeypatch):
    """Same model and data: a budget above the squared program's estimate and below the
    cross-entropy one's refuses the latter before its operator exists."""
    sq, ce = _bound("squared"), _bound("cross_entropy")
    low, high = cvxfootprint.cvxpy_for(sq).nbytes, cvxfootprint.cvxpy_for(ce).nbytes
    budget = (low + high) // 2
    built = []
    from bmdsl.cvx import problem
    for path in list(problem.OPERATORS):          # neither lowering's operator is built
        monkeypatch.setitem(problem.OPERATORS, path, lambda bound: built.append(1))
    with pytest.raises(MemoryBudgetError) as err:
        ce.to_cvxpy(memory_budget=budget)
    assert not built
    assert memory.human(high) in err.value.message and "couples the outputs" in err.value.message
    memory.require(cvxfootprint.cvxpy_for(sq), budget)      # the squared one fits


def test_solve_cli_refuses_cross_entropy_with_the_estimate(tmp_path, capsys, monkeypatch):
    sq, ce = _bound("squared"), _bound("cross_entropy")
    low, high = cvxfootprint.cvxpy_for(sq).nbytes, cvxfootprint.cvxpy_for(ce).nbytes
    model = tmp_path / "ce.bm"
    model.write_text(MLP.replace("loss       squared", "loss       cross_entropy"))
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.standard_normal((60, 2)), Y=np.eye(3)[rng.integers(0, 3, 60)])
    monkeypatch.setenv(memory.BUDGET_ENV, str((low + high) // 2))
    out = tmp_path / "sol.npz"
    assert main(["solve", str(model), "--data", str(data), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and not out.exists()
    assert "CVXPY program" in err and memory.human(high) in err and "(estimate)" in err
    assert "couples the outputs" in err
