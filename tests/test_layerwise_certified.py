"""Layerwise stages solved by the default trainer path to a certificate (layerwise/solve.py):
`--method auto` (the lifted ADMM warm start on the squared loss's Gram block), m = "full"
(min(p, q) units per pattern, every optimum's rank) and cert_tol. Small data, float64,
against CVXPY's optimum of each stage's convex program (Sahiner et al. 2024, eq. (23))."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import bmdsl
from model_texts import image_split
from bmdsl.cli import main
from bmdsl.core.errors import BmdslError
from bmdsl.layerwise import StageOptions, train_layerwise

# the cnn's 2 x 2 average head: q = c a = 2 x 4 = 8 on the 4 x 4 images (stage 1), 2 x 1
# on the 2 x 2 latent grid (stage 2); p = 9 and 9 m P
STAGE = """
model stage
architecture cnn
units m = 1
activation gated_relu(patterns = 2, seed = 0)
loss squared
regularize beta = 1e-2, C = l2, R = l2
"""
TOL = 1e-4
TIGHT = dict(tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    train, test = image_split()
    model = bmdsl.parse(STAGE)
    result = train_layerwise(model, train, test, 2, downsample=2, options=StageOptions(
        m="full", cert_tol=TOL, progress=False))
    return model, train, result


def test_each_stage_is_certified_by_the_default_path(run):
    model, train, result = run
    xs = result.network.representations(torch.as_tensor(train["images"]))
    for x, record in zip(xs, result.stages):
        assert record["m"] == min(record["p"], record["q"])       # m = "full"
        assert record["method"] and record["warm_start"] is not None
        assert record["stopped"] == "certificate" and record["certified"]
        bound = model.derive().bind({"I": x.numpy(), "Y": np.eye(2)[train["labels"]]})
        # CLARABEL's default tolerances left p* 2.4e-7 (relative) below the optimum of
        # stage 2 here (measured: tight tolerances and SCS at eps 1e-10 agree to 1e-9)
        p_star = bound.to_cvxpy().solve("CLARABEL", **TIGHT).value
        gap = (record["objective"] - p_star) / p_star
        # valid (>= the true gap, up to CVXPY's own accuracy) and below the target
        assert gap - 1e-9 <= record["gap_bound"] <= TOL, (record["stage"], gap)
    # stage 2 reads stage 1's m P channels, all of them (zero units included)
    assert result.stages[1]["input"][0] == result.stages[0]["latent_channels"] == 2 * 8


def test_fewer_units_than_the_optimum_rank_are_not_certified(run):
    # the same stage 1 with m = 1: its BM points have rank 1, the optimum's Z_k more
    model, train, result = run
    record = train_layerwise(model, train, None, 1, options=StageOptions(
        m=1, cert_tol=TOL, max_steps=200, progress=False)).stages[0]
    assert not record["certified"] and record["gap_bound"] > 1e-2
    assert record["objective"] > result.stages[0]["objective"] * (1 + 1e-3)


def test_units_must_be_a_count_or_full(run):
    model, train, _ = run
    with pytest.raises(BmdslError, match="m must be a positive whole number or 'full'"):
        train_layerwise(model, train, None, 1, options=StageOptions(m="all", progress=False))


def test_cli_takes_m_full_and_cert_tol(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "stage.bm"
    path.write_text(STAGE)
    x = np.concatenate([d["images"] for d in image_split()])
    y = np.concatenate([d["labels"] for d in image_split()])
    np.savez(tmp_path / "d.npz", x_train=x[:16], y_train=y[:16], x_test=x[16:],
             y_test=y[16:])
    assert main(["layerwise", str(path), "--data", "d.npz", "--stages", "1", "--m", "full",
                 "--cert-tol", "1e-4", "--no-progress", "--output", "run"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("1 "))
    assert row.split()[3] == "8" and float(row.split()[7]) <= 1e-4     # m, gap bound
    with pytest.raises(SystemExit):
        main(["layerwise", str(path), "--stages", "1", "--m", "0", "--output", "run2"])
