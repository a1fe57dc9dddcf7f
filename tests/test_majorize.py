"""The lifted majorization's step schedule (runtime/majorize.py): where its bound is exact
at the steps (a loss whose curvature is the declared bound, or Huber with every residual in
its quadratic zone) the steps are one program, solved tighter step by step and certified
early; where it is not (Huber with residuals beyond delta) the forcing sequence stands.
Both reach CVXPY's p* with a certificate >= the true gap (test_kron.check)."""
import pytest
from test_default_grid import bound_for, optimum
from test_interior_losses import HalfSquared
from test_kron import check, majorized

from bmdsl.kernel.lossforms import LOSS_KERNELS

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


class QuarterSquared(HalfSquared):
    """1/4 ||Yhat - Y||^2 declaring its smoothness 1/2: the majorization's bound B = I / 2
    is its Hessian, exact everywhere."""
    name, smoothness = "quarter_squared_exact", 0.5
    hessian_diag = torch_prox = None


def test_an_exact_bound_is_one_program_solved_tighter(monkeypatch):
    monkeypatch.setitem(LOSS_KERNELS, QuarterSquared.name, QuarterSquared)
    bound = bound_for("mlp", "gated_relu", QuarterSquared.name, "l2", "l1")
    pstar = optimum("mlp", "gated_relu", QuarterSquared.name, "l2", "l1")
    optimum.cache_clear()      # the name may be registered otherwise in another test
    result = majorized(bound).fit()
    info = result.warm_start
    assert info["method"] == "lifted majorization" and info["failed"] is None
    assert info["exact_steps"] == info["iterations"] <= 4
    check(result, pstar)


@pytest.mark.parametrize("arch,R", [("mlp", "l1"), ("cnn", "l2")])
def test_huber_beyond_its_zone_keeps_the_forcing_sequence(arch, R):
    """delta = 0.05: most residuals lie beyond it, so the bound has slack at the steps."""
    loss = "huber(delta = 0.05)"
    result = majorized(bound_for(arch, "gated_relu", loss, "l2", R)).fit()
    info = result.warm_start
    assert info["method"] == "lifted majorization" and info["failed"] is None
    assert info["exact_steps"] < info["iterations"]
    check(result, optimum(arch, "gated_relu", loss, "l2", R))
