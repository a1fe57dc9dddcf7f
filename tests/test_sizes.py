"""Sizes the benchmarks do not use (bench/check_sizes.py): the trainer's memory estimate
follows the path the Trainer takes (Newton's Hessian and Jacobian copies, none of the
Jacobian with the Gram), Newton's Gram block made by patterns, and awkward shapes that
must give the right answer or a clear error."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.bind.datasets import images, spiral
from bmdsl.core import footprint
from bmdsl.core.errors import DataError
from bmdsl.trainer import Trainer
from bmdsl.trainer.trainer import estimate

ROOT = Path(__file__).resolve().parent.parent


def _text(name, **subs):
    text = (ROOT / "models" / f"{name}.bm").read_text()
    for pattern, new in subs.items():
        text = re.sub(pattern.replace("_", " "), new, text, flags=re.M)
    return text


def _mlp(loss="squared", n=40, d=3, c=3, P=8):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    Y = np.eye(c)[rng.integers(0, c, n)]
    text = re.sub(r"^loss\s+\w+", f"loss {loss}", (ROOT / "models/mlp.bm").read_text(),
                  flags=re.M).replace("patterns = 100", f"patterns = {P}")
    return bmdsl.parse(text).derive().bind({"X": X, "Y": Y})


def test_newton_estimate_counts_the_jacobian_only_where_it_is_built():
    N, ny = 1000, 5000          # P m (p + q) variables; |y| entries
    hessian = footprint.HESSIAN_COPIES * N * N * 8
    assert footprint._newton(N, ny, 8, gram=True) == hessian
    assert footprint._newton(N, ny, 8) == hessian + footprint.JACOBIAN_COPIES * ny * N * 8
    # above the Jacobian's budget Newton refuses without the Gram (curvature.Newton)
    big = footprint.JACOBIAN_BUDGET // N + 1
    assert footprint._newton(N, big, 8) == 0
    assert footprint._newton(N, big, 8, gram=True) == hessian
    assert footprint._newton(footprint.NEWTON_MAX_VARS + 1, ny, 8) == 0


@pytest.mark.parametrize("loss,dtype", [("squared", "float64"), ("squared", "float32"),
                                        ("huber", "float64")])
def test_trainer_estimate_assumes_the_gram_path_the_trainer_takes(loss, dtype):
    bound = _mlp(loss)
    trainer = Trainer(bound, device="cpu", dtype=dtype, progress=False)
    on = trainer.problem.gram is not None
    assert on == (loss == "squared" and dtype == "float64")
    want = footprint.trainer_for(bound, trainer.m, trainer.dtype.itemsize, gram=on)
    assert estimate(bound, trainer.m, dtype).nbytes == want.nbytes
    assert estimate(bound, trainer.m, dtype, gram=False).nbytes == footprint.trainer_for(
        bound, trainer.m, trainer.dtype.itemsize).nbytes


def test_gauss_newton_by_pattern_chunks_equals_the_direct_block():
    """G J_z a pattern at a time (chunk=1), all at once, and J^T J from the samples."""
    bound = _mlp(c=4, P=6)
    viagram = Trainer(bound, device="cpu", gram=True, progress=False).problem
    direct = Trainer(bound, device="cpu", gram=False, progress=False).problem
    gen = torch.Generator().manual_seed(3)
    U = torch.randn((viagram.P, 3, viagram.p), generator=gen, dtype=torch.float64)
    V = torch.randn((viagram.P, 3, viagram.q), generator=gen, dtype=torch.float64)
    active = torch.rand((viagram.P, 3), generator=gen) > 0.4
    want = direct.gauss_newton(U, V, active)
    for chunk in (1, 4_000_000):
        assert torch.allclose(viagram.gram.gauss_newton(U, V, active, chunk=chunk), want,
                              rtol=1e-9, atol=1e-9)


def test_cross_entropy_with_one_class_is_refused_clearly():
    model = bmdsl.parse(_text("mlp", **{r"^loss\s+\w+": "loss cross_entropy"})).derive()
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(DataError, match="2 or more classes.*logistic"):
        model.bind({"X": X, "Y": np.ones((10, 1))})


@pytest.mark.parametrize("subs,shape", [
    ({r"stride = 1, padding = 1": "stride = 2, padding = 0"}, (8, 8)),   # 3 positions: odd
    ({}, (7, 9)),                                   # 2x2 pooling of a 7 x 9 grid
])
def test_cnn_on_images_not_a_multiple_of_stride_or_pool_matches_cvxpy(subs, shape):
    text = _text("cnn", **subs).replace("patterns = 32", "patterns = 8")
    bound = bmdsl.parse(text).derive().bind(images(n=8, height=shape[0], width=shape[1]))
    result = Trainer(bound, device="cpu", progress=False).fit(cert_tol=1e-6, time_limit=60)
    p_star = bound.to_cvxpy().solve().value
    assert result.certificate.gap_bound <= 1e-6
    assert result.objective == pytest.approx(p_star, rel=1e-5)


def test_more_patterns_than_distinct_masks_and_a_single_pattern():
    data = spiral(5, 3, seed=0)
    many = bmdsl.parse(_text("mlp").replace("patterns = 100", "patterns = 500")).derive() \
        .bind(data)
    assert many.P <= 2 * 5        # distinct masks of 5 points in the plane, de-duplicated
    one = bmdsl.parse(_text("mlp").replace("patterns = 100", "patterns = 1")).derive() \
        .bind(spiral(30, 3, seed=0))
    assert one.P == 1
    for bound in (many, one):
        result = Trainer(bound, device="cpu", progress=False).fit(cert_tol=1e-6, time_limit=30)
        assert result.certificate.gap_bound <= 1e-6
        assert result.objective == pytest.approx(bound.to_cvxpy().solve().value, rel=1e-5)


def test_second_order_warm_starts_leave_large_n_to_the_fista():
    """The CNN with logistic at |y| >= N = P p q = 2592: the proximal Newton and the prox
    ADMM refuse (N > SECOND_ORDER_N_MAX; at n = 5000 they took 301 s and > 323 s where
    the lifted FISTA certified in 38 s), the FISTA takes it."""
    from bmdsl.trainer.runtime.gram import SECOND_ORDER_N_MAX
    from bmdsl.trainer.runtime.pnewton import LiftedProxNewton
    from bmdsl.trainer.runtime.proxadmm import LiftedProxADMM
    from bmdsl.trainer.runtime.proxgrad import LiftedFISTA
    data = images(n=2600)
    data["Y"] = np.where(data["Y"][:, :1] > 0.5, 1.0, -1.0)
    bound = bmdsl.parse(_text("cnn", **{r"^loss\s+\w+": "loss logistic"})).derive().bind(data)
    problem = Trainer(bound, device="cpu", warm_start=False, progress=False).problem
    N = problem.P * problem.p * problem.q
    assert problem.outputs >= N > SECOND_ORDER_N_MAX
    for start in (LiftedProxNewton, LiftedProxADMM):
        assert f"> {SECOND_ORDER_N_MAX}" in start.accepts(problem, 4)
    assert LiftedFISTA.accepts(problem, 4) is None
