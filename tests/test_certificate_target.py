"""The certificate's two cuts outside the solver: no refinement once the unrefined bound
meets the caller's target (still a valid bound >= the true gap), and the predictions and
adjoints contracted by torch.einsum on numpy arrays equal numpy's einsum."""
import numpy as np
import pytest

import bmdsl
from bmdsl.bind.datasets import images, sequences
from bmdsl.certificates import certify
from bmdsl.cvx import build_problem
from model_texts import attention, cnn

TEXT = "activation gated_relu(patterns = 6, seed = 1)\nloss squared\n" \
       "regularize beta = 0.05, C = l2, R = l2\n"


def _bound(arch):
    if arch == "cnn":
        return bmdsl.parse(cnn(align=8) + TEXT).derive().bind(images(n=4, height=4, width=4,
                                                                     seed=2))
    return bmdsl.parse(attention(align=7) + TEXT).derive().bind(
        sequences(n=3, tokens=3, features=2, outputs=2, seed=4))


def _fitted(bound, steps=300):
    r = bound.to_torch(device="cpu", progress=False, warm_start=False).fit(steps)
    return r.U, r.V


def test_a_met_target_skips_the_refinement_and_stays_a_valid_bound():
    bound = _bound("cnn")
    U, V = _fitted(bound)
    p_star = build_problem(bound).solve().value
    plain = certify(bound, U, V, refine_iters=0)
    skipped = certify(bound, U, V, refine_iters=100, target=2 * plain.gap_bound)
    refined = certify(bound, U, V, refine_iters=100, target=1e-300)
    assert skipped.refine_iterations == 0 and skipped.refinement.startswith("skipped")
    assert skipped.gap_bound == pytest.approx(plain.gap_bound, rel=1e-12)
    assert refined.refine_iterations > 0 and refined.gap_bound <= skipped.gap_bound
    true_gap = (skipped.objective - p_star) / p_star
    assert skipped.gap_bound >= true_gap - 1e-6         # p* from Clarabel, to its accuracy


@pytest.mark.parametrize("arch", ["cnn", "attention"])
def test_torch_contractions_equal_numpy(arch):
    bound = _bound(arch)
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((bound.P, bound.p, bound.q))[:, ::-1]    # negative strides too
    yhat = bound.predict_lifted(Z)
    fast = bound.predict_lifted(Z, backend="numpy_by_torch")
    assert isinstance(fast, np.ndarray)
    assert np.allclose(fast, yhat, rtol=1e-12, atol=1e-12 * np.abs(yhat).max())
    R = rng.standard_normal(yhat.shape)
    G = bound.adjoint(R)
    assert np.allclose(bound.adjoint(R, backend="numpy_by_torch"), G, rtol=1e-12,
                       atol=1e-12 * np.abs(G).max())
