"""Memory planning (bmdsl.core.memory, bmdsl.core.footprint): estimates are checked before allocation.

Every test sets a small budget (BMDSL_MEMORY_BUDGET or an argument), so nothing here ever
allocates much: a refusal happens before the array exists, within seconds.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

import bmdsl
from bmdsl.core import cvxfootprint, footprint, memory, warmfootprint
from bmdsl.cli import main
from bmdsl.core.memory import MemoryBudgetError

ROOT = Path(__file__).resolve().parents[1]
MLP = (ROOT / "models" / "mlp.bm").read_text()
CNN = (ROOT / "models" / "cnn.bm").read_text()


@pytest.fixture(autouse=True)
def _no_budget_env(monkeypatch):
    monkeypatch.delenv(memory.BUDGET_ENV, raising=False)


def _model(tmp_path, text, name="m.bm"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _mlp_data(n=40, d=2, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"X": rng.standard_normal((n, d)), "Y": np.eye(c)[rng.integers(0, c, n)]}


# -- the budget -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, nbytes", [("2G", 2 << 30), ("512M", 512 << 20), ("1.5GiB",
                         int(1.5 * (1 << 30))), ("3000", 3000), ("64kb", 64 << 10), (4096, 4096)])
def test_parse_size(text, nbytes):
    assert memory.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "lots", "-2G", "0", "2X", "G"])
def test_parse_size_refuses_with_what_is_accepted(text):
    with pytest.raises(MemoryBudgetError) as err:
        memory.parse_size(text)
    assert "memory size" in err.value.message or "not positive" in err.value.message
    assert "2G" in err.value.hint


def test_budget_precedence(monkeypatch):
    free = memory.available()
    assert free is None or free > 0
    default, origin = memory.resolve()
    assert default > 0 and ("available" in origin or "assumed" in origin)
    monkeypatch.setenv(memory.BUDGET_ENV, "3M")
    assert memory.resolve() == (3 << 20, f"{memory.BUDGET_ENV}=3M")
    with memory.limit("5M"):
        assert memory.budget() == 5 << 20
        with memory.limit(None):                   # no-op: the outer block stays in force
            assert memory.budget() == 5 << 20
        assert memory.budget("7M") == 7 << 20      # an explicit argument wins
    assert memory.budget() == 3 << 20
    monkeypatch.setenv(memory.BUDGET_ENV, "many")
    with pytest.raises(MemoryBudgetError, match=memory.BUDGET_ENV):
        memory.budget()


def test_human_units():
    assert memory.human(512) == "512 B"
    assert memory.human(1536) == "1.5 KiB"
    assert memory.human(3 << 30) == "3 GiB"


def test_require_message_names_allocation_estimate_budget_and_advice():
    est = memory.Estimate("the dense operator L_k [9, 9, 9]", 5 << 20, "fewer patterns")
    memory.require(est, "6M")                     # fits: nothing happens
    with pytest.raises(MemoryBudgetError) as err:
        memory.require(est, "1M")
    text = err.value.render()
    assert "L_k [9, 9, 9]" in text and "5 MiB" in text and "1 MiB" in text
    assert "fewer patterns" in text and f"{memory.BUDGET_ENV}=5M" in text
    huge = memory.Estimate("everything", 1 << 60)
    with pytest.raises(MemoryBudgetError) as err:
        memory.require(huge, "1M")
    free = memory.available()
    assert free is None or "too little even with a larger budget" in err.value.hint


# -- the reproducers: refused with the estimate, before any allocation ----------------------------
REPRODUCERS = {
    # (model text, what the refusal names)
    "patterns": (MLP.replace("patterns = 100", "patterns = 1000000"), "sampled patterns"),
    "units": (MLP.replace("units   m = 5 ", "units   m = 1000000"), "BM trainer"),
    "padding": (CNN.replace("padding = 1)", "padding = 10000)"), "pooling matrix P"),
    "size": (MLP.replace("units", "size d = 1000000000\nunits", 1), "sampled patterns"),
}


@pytest.mark.parametrize("case", sorted(REPRODUCERS))
def test_reproducers_refused_by_check(tmp_path, capsys, monkeypatch, case):
    text, what = REPRODUCERS[case]
    monkeypatch.setenv(memory.BUDGET_ENV, "16M")
    path = _model(tmp_path, text)
    t0 = time.perf_counter()
    assert main(["check", str(path)]) == 1
    assert time.perf_counter() - t0 < 30
    err = capsys.readouterr().err
    assert "memory budget" in err and what in err and "16 MiB" in err
    assert re.search(r"about [0-9.]+ [KMGTP]iB \(estimate\)", err), err


@pytest.mark.parametrize("case", sorted(REPRODUCERS))
def test_reproducers_refused_by_run_before_data(tmp_path, capsys, monkeypatch, case):
    text, what = REPRODUCERS[case]
    monkeypatch.setenv(memory.BUDGET_ENV, "16M")
    path = _model(tmp_path, text)
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert "memory budget" in err and what in err
    assert not (tmp_path / "out" / "mlp_run.json").exists()


def test_bind_refuses_patterns_with_data_sizes(tmp_path):
    """The model alone fits (n = 1); with 2000 samples 100000 masks do not: bind refuses
    before sampling, with the shapes it would have built."""
    model = bmdsl.load(_model(tmp_path, MLP.replace("patterns = 100", "patterns = 100000")))
    data = _mlp_data(n=2000)
    t0 = time.perf_counter()
    with memory.limit("64M"), pytest.raises(MemoryBudgetError) as err:
        model.derive().bind(data)
    assert time.perf_counter() - t0 < 10
    assert "masks [100000, 2000]" in err.value.message and "64 MiB" in err.value.message


def test_bind_refuses_patches_and_pooling(tmp_path):
    """Both fit at the model's least sizes (one 1x1 image) and not with these images: bind
    refuses with the data's shapes, before building them."""
    text = CNN.replace("padding = 1)", "padding = 300)").replace("average(2x2)", "global") \
              .replace("gated_relu(patterns = 32, seed = 0)", "linear")
    model = bmdsl.load(_model(tmp_path, text))
    data = {"I": np.zeros((4, 1, 6, 6)), "Y": np.eye(2)[[0, 1, 0, 1]]}
    with memory.limit("64M"), pytest.raises(MemoryBudgetError) as err:
        model.derive().bind(data)
    assert "the patches X [4, 364816, 9]" in err.value.message
    # pooling: the dense matrix [a, K] (a window of 1 keeps a = K cells)
    text = CNN.replace("padding = 1)", "padding = 20)").replace("average(2x2)", "average(1x1)")
    model = bmdsl.load(_model(tmp_path, text, "pool.bm"))
    with memory.limit("24M"), pytest.raises(MemoryBudgetError) as err:
        model.derive().bind({"I": np.zeros((1, 1, 6, 6)), "Y": np.eye(2)[[0]]})
    assert "the pooling matrix P [1936, 1936]" in err.value.message


# -- the convex program -------------------------------------------------------------------
def test_cvxpy_refused_before_the_operator_is_built(tmp_path, monkeypatch):
    bound = bmdsl.load(ROOT / "models" / "mlp.bm").derive().bind(_mlp_data(n=200))
    est = cvxfootprint.cvxpy_for(bound)
    dense = bound.P * bound.Y.size * bound.p * bound.q * 8
    assert est.nbytes >= dense                      # at least the dense operator itself
    built = []
    monkeypatch.setattr(type(bound), "operator", lambda self: built.append(1))
    with pytest.raises(MemoryBudgetError) as err:
        bound.to_cvxpy(memory_budget=est.nbytes - 1)
    assert not built                                # refused before L_k was built
    assert est.what in err.value.message             # the planned lowering, with its shapes


def test_solve_refuses_with_exit_1_and_the_estimate(tmp_path, capsys, monkeypatch):
    data = tmp_path / "d.npz"
    np.savez(data, **_mlp_data(n=200))
    monkeypatch.setenv(memory.BUDGET_ENV, "1M")
    out = tmp_path / "sol.npz"
    assert main(["solve", str(ROOT / "models" / "mlp.bm"), "--data", str(data),
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "CVXPY program" in err and "1 MiB" in err and "bmdsl train" in err
    assert not out.exists()


def test_run_skips_cvxpy_that_does_not_fit_and_trains(tmp_path, capsys, monkeypatch):
    """The program's estimate (~7.7 MiB) is over 6M, the lbfgs trainer's (~5 MiB) is not:
    run says so, with the estimate, and trains alone."""
    monkeypatch.setenv(memory.BUDGET_ENV, "6M")
    code = main(["run", str(ROOT / "models" / "mlp.bm"), "--method", "lbfgs", "--steps",
                 "3", "--no-warm-start", "--no-plot", "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "skipped: the CVXPY program" in out and "6 MiB" in out and "trainer goes on" in out
    assert "p_BM (BM objective)" in out


# -- the trainer -------------------------------------------------------------------------
def test_trainer_refused_before_factors(tmp_path):
    bound = bmdsl.load(ROOT / "models" / "mlp.bm").derive().bind(_mlp_data(n=100))
    t0 = time.perf_counter()
    with pytest.raises(MemoryBudgetError) as err:
        bound.to_torch(device="cpu", m=200_000, memory_budget="64M")
    assert time.perf_counter() - t0 < 10
    assert f"U [{bound.P}, 200000, 2]" in err.value.message
    est = footprint.trainer_for(bound, 200_000, 8, "auto")
    assert est.nbytes > 2 * bound.P * 200_000 * (bound.p + bound.q) * 8  # factors + grads


def test_warm_start_skipped_or_refused_when_it_does_not_fit(tmp_path):
    """ReLU, scalar output, d = 20, P = 200: the cone interior point's matrices (~60 MB)
    exceed a 40M budget that the lbfgs trainer (~21 MB) fits. "auto" trains without it;
    warm_start=True refuses with its estimate. Neither builds it."""
    from bmdsl.trainer.runtime.interior import ConeInteriorPoint
    text = MLP.replace("gated_relu(patterns = 100, seed = 0)", "relu(patterns = 200, seed = 0)") \
              .replace("target  Y[n, c]", "target  Y[n]").replace("W2[c]", "W2") \
              .replace("Yhat[n, o] = act(A)[n] * W2[o]", "Yhat[n] = act(A)[n] * W2")
    rng = np.random.default_rng(1)
    bound = bmdsl.load(_model(tmp_path, text)).derive().bind(
        {"X": rng.standard_normal((500, 20)), "Y": rng.standard_normal(500)})
    need = warmfootprint.cone_interior(bound.P, bound.p, bound.Y.size, 500)
    fits = footprint.trainer_for(bound, 2, 8)
    assert fits.nbytes < 40 << 20 < need.nbytes
    trainer = bound.to_torch(device="cpu", m=2, memory_budget="40M")
    assert ConeInteriorPoint.accepts(trainer.problem, 2) is None   # it would apply ...
    assert trainer.warm is None                                # ... but does not fit
    with pytest.raises(MemoryBudgetError, match="interior point") as err:
        bound.to_torch(device="cpu", m=2, memory_budget="40M", warm_start=True)
    assert "40 MiB" in err.value.message


# -- normal models still run -----------------------------------------------------------------
def test_normal_models_pass_with_the_default_budget(capsys):
    for name in ("mlp.bm", "cnn.bm"):
        assert main(["check", str(ROOT / "models" / name)]) == 0
    out = capsys.readouterr().out
    assert out.count("memory:") == 2 and "budget" in out


def test_normal_model_runs_end_to_end_under_a_modest_budget():
    bound = bmdsl.load(ROOT / "models" / "mlp.bm").derive().bind(_mlp_data(n=30))
    with memory.limit("512M"):
        value = bound.to_cvxpy().solve().value
        result = bound.to_torch(device="cpu").fit(max_steps=20)
    assert np.isfinite(value) and result.objective >= value - 1e-6 * abs(value)
    assert result.warm_start is not None       # the lifted ADMM fitted the budget too


def test_model_least_sizes_are_lower_bounds(tmp_path):
    model = bmdsl.load(ROOT / "models" / "cnn.bm")
    least = footprint.least_sizes(model)
    assert least["k"] == 1 and least["h"] == 9 and least["a"] == 1
    padded = bmdsl.load(_model(tmp_path, CNN.replace("padding = 1)", "padding = 10000)")))
    assert footprint.least_sizes(padded)["k"] == (1 + 2 * 10000 - 3 + 1) ** 2


def test_copied_constants_match_their_sources():
    """footprint.py stays free of torch (bmdsl check imports it): the constants it copies
    from the trainer must stay equal to the originals, and every warm start has an estimate."""
    from bmdsl.trainer import methods
    from bmdsl.trainer.runtime import gram, warm
    assert footprint.NEWTON_MAX_VARS == methods.METHODS["newton"].MAX_VARS
    assert warmfootprint.GRAM_CHUNK == gram.GRAM_CHUNK
    assert warmfootprint.GRAM_BLOCKS == gram.GRAM_BLOCKS
    assert footprint.JACOBIAN_BUDGET == methods.METHODS["newton"].JACOBIAN_BUDGET
    assert set(warmfootprint.WARM_STARTS) == {k.__name__ for k in warm.WARM_STARTS}
    assert set(footprint.METHOD_COPIES) == set(methods.METHODS)
