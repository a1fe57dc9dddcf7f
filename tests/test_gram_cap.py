"""The Gram path's size cap (runtime/gram.py): from time (a factorization of N^3 / 3 flops
within FACTOR_SECONDS), and from memory (the trainer checks warmfootprint.gram against the
memory budget before anything is built)."""
import numpy as np
import pytest

import bmdsl
from bmdsl.core.memory import MemoryBudgetError
from bmdsl.trainer import Trainer
from bmdsl.trainer.runtime import gram
from model_texts import mlp


def test_the_cap_is_the_largest_n_factored_in_the_time():
    for seconds, flops in ((10.0, 5e9), (1.0, 1e9), (60.0, 2e10)):
        n = gram.gram_max_n(seconds, flops)
        assert n ** 3 / 3 <= seconds * flops < (n + 1) ** 3 / 3
    # the default takes the n = 2000 CNN of bench_grid (P p q = 5184), which 4096 refused
    assert gram.GRAM_MAX_N == gram.gram_max_n() >= 5184


def _wide():
    """A gated MLP with N = P p q = 200 * 8 * 3 = 4800 > 4096 (squared loss)."""
    rng = np.random.default_rng(0)
    d = {"X": rng.standard_normal((200, 8)), "Y": rng.standard_normal((200, 3))}
    text = mlp(m=3, activation="gated_relu(patterns = 200, seed = 0)", loss="squared",
               regularize="beta = 1e-2, C = l2, R = l2")
    return bmdsl.parse(text).derive().bind(d)


def test_over_a_small_budget_the_gram_path_is_refused_with_the_estimate():
    bound = _wide()
    assert bound.P * bound.p * bound.q > 4096
    with pytest.raises(MemoryBudgetError) as refused:
        Trainer(bound, device="cpu", gram=True, warm_start=False, memory_budget="150M")
    assert "the Gram matrix's block G_F [1600, 1600]" in str(refused.value) and "estimate" in str(refused.value)
    # "auto" under that budget: no Gram path, nothing built, the trainer goes on without it
    trainer = Trainer(bound, device="cpu", memory_budget="150M")
    assert trainer.problem.gram is None
    assert np.isfinite(float(trainer.objective(trainer.U.detach(), trainer.V.detach())))
