"""The structured CVXPY lowering (cvx/structured.py): L built sparse from the lifted tensor
network equals the dense operator, the nuclear norm by columns equals the singular values'
sum, the two lowerings reach the same optimum, and the planner lowers a program whose dense
operator is over the budget without building it (or refuses it with the estimate)."""
import warnings

import numpy as np
import pytest

import bmdsl
from bmdsl.atoms.losses import get_loss
from bmdsl.bind import datasets
from bmdsl.core import cvxfootprint, memory
from bmdsl.core.errors import BmdslError
from bmdsl.core.memory import MemoryBudgetError
from bmdsl.cvx.problem import stacked_operator
from bmdsl.cvx.structured import column_nuclear, sparse_operator

MODELS = "models"
DATA = {"cnn": lambda: datasets.images(3, 1, 4, 4, seed=1),
        "selfattention": lambda: datasets.sequences(3, 3, 2, 2, seed=2),
        "mlp": lambda: datasets.spiral(9, 3, seed=1)}


@pytest.fixture(autouse=True)
def _no_budget_env(monkeypatch):
    monkeypatch.delenv(memory.BUDGET_ENV, raising=False)


def _bound(name, activation, patterns=4, text_edit=None, data=None):
    text = open(f"{MODELS}/{name}.bm").read()
    if text_edit:
        text = text_edit(text)
    model = bmdsl.parse(text)
    model = model.with_activation("linear") if activation == "linear" else \
        model.with_activation(activation, patterns, 1)
    return model.derive().bind(DATA[name]() if data is None else data)


@pytest.mark.parametrize("name", sorted(DATA))
@pytest.mark.parametrize("activation", ["gated_relu", "relu", "linear"])
def test_sparse_operator_is_the_dense_operator(name, activation):
    bound = _bound(name, activation)
    dense = stacked_operator(bound)
    dense = dense.toarray() if hasattr(dense, "toarray") else dense
    sparse = sparse_operator(bound)
    assert sparse.shape == dense.shape
    assert np.allclose(sparse.toarray(), dense, rtol=1e-13, atol=1e-13)
    assert np.count_nonzero(dense) <= sparse.nnz <= bound.operator_nnz() <= dense.size


@pytest.mark.parametrize("shape", [(3, 5), (5, 2), (4, 4), (1, 3)])
def test_column_nuclear_is_the_sum_of_singular_values(shape):
    import cvxpy as cp
    A = np.random.default_rng(sum(shape)).standard_normal(shape)
    Z = cp.Variable(shape)
    expr, cons = column_nuclear(Z)
    problem = cp.Problem(cp.Minimize(expr), cons + [Z == A])
    with warnings.catch_warnings():   # the batched [q, s, s] block: CVXPY says which backend
        warnings.simplefilter("ignore", UserWarning)
        problem.solve(solver="CLARABEL")
    assert problem.value == pytest.approx(np.linalg.svd(A, compute_uv=False).sum(), rel=1e-7)


def _values(solution):
    return np.array([solution.lower, solution.upper], dtype=float)


@pytest.mark.parametrize("name", ["cnn", "mlp"])
@pytest.mark.parametrize("activation", ["gated_relu", "relu"])
def test_structured_and_dense_programs_have_one_optimum(name, activation):
    """float64, Clarabel: the same optimum (or bracket) to 1e-7, and the structured one's
    Z gives that value when evaluated by the bound model's own maps."""
    bound = _bound(name, activation)
    dense = bound.to_cvxpy(lowering="dense")
    structured = bound.to_cvxpy(lowering="structured")
    assert (dense.lowering, structured.lowering) == ("dense", "structured")
    a, b = dense.solve(), structured.solve()
    assert a.status.startswith("optimal") and b.status.startswith("optimal")
    assert np.allclose(_values(a), _values(b), rtol=1e-7, atol=1e-9)
    if b.exactness == "exact":   # the value recomputed from Z with numpy: loss + beta sum ||Z_k||_*
        Z = b.Z
        value = bound.loss.value(bound.predict_lifted(Z), bound.Y) + bound.beta * sum(
            np.linalg.svd(z, compute_uv=False).sum() for z in Z)
        assert value == pytest.approx(b.value, rel=1e-6)


def _many_classes(c=10, n=6):
    """The CNN with c classes: L is 1/c dense, so the structured estimate is the smaller."""
    rng = np.random.default_rng(4)
    return {"I": rng.random((n, 1, 4, 4)), "Y": np.eye(c)[rng.integers(0, c, n)]}


def test_over_budget_dense_operator_is_lowered_without_being_built(monkeypatch):
    bound = _bound("cnn", "gated_relu", data=_many_classes())
    dense = cvxfootprint.cvxpy_for(bound, lowering="dense")
    path, structured = cvxfootprint.cvxpy_plan_for(bound)
    assert path == "structured" and structured.nbytes < dense.nbytes
    monkeypatch.setattr(type(bound), "operator", lambda self: pytest.fail("dense L built"))
    budget = (structured.nbytes + dense.nbytes) // 2      # between the two estimates
    problem = bound.to_cvxpy(memory_budget=budget)
    assert problem.lowering == "structured"
    assert problem.solve().status == "optimal"
    with pytest.raises(MemoryBudgetError) as err:     # dense forced: refused, L unbuilt
        bound.to_cvxpy(memory_budget=budget, lowering="dense")
    assert f"[{bound.P}, {bound.Y.size}, {bound.p * bound.q}]" in err.value.message
    with pytest.raises(MemoryBudgetError) as err:     # neither fits: the estimate is named
        bound.to_cvxpy(memory_budget=structured.nbytes - 1)
    assert "sparse, at most" in err.value.message and "would need about" in err.value.message


def test_the_planner_takes_the_column_form_where_the_full_block_is_large():
    assert cvxfootprint.nuclear_blocks(9, 160) == ("column", 160, 10)   # the digits CNN
    assert cvxfootprint.nuclear_blocks(3, 2) == ("full", 1, 5)
    # the estimate counts the PSD blocks' dense KKT blocks: for the digits CNN (P = 16)
    # the full form's are ~1.5 GiB per pattern (with the factor's copies), the column form's
    # 2560 blocks ~180 MiB in all
    squared = dict(loss_size=get_loss("squared").cvxpy_size, outputs=10)
    full = cvxfootprint.cvxpy_program(16, 17970, 9, 160, None, nnz=1, nuclear="full",
                                      **squared)
    column = cvxfootprint.cvxpy_program(16, 17970, 9, 160, None, nnz=1, nuclear="column",
                                        **squared)
    # (the rest, the operator and the KKT factor's other parts, is the same for both)
    assert full.nbytes - column.nbytes > 16 * (1 << 30) and full.nbytes > 20 * column.nbytes


def test_unknown_lowering_is_a_clear_error():
    bound = _bound("mlp", "gated_relu")
    with pytest.raises(BmdslError, match="lowering must be one of"):
        bound.to_cvxpy(lowering="sparse")
