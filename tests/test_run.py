"""`bmdsl run` (the main job) on each model at small size: it finishes, writes its record
and plot, and its numbers agree: p_BM >= p* (up to solver tolerance) and the true gap is
within the duality-gap bound it reports."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bmdsl.bind import datasets
from bmdsl.cli import main

SMALL = {
    "models/mlp.bm": lambda: datasets.spiral(n=30, seed=1),
    "models/cnn.bm": lambda: datasets.images(n=6, height=4, width=4),
    "models/selfattention.bm": lambda: datasets.sequences(n=4, tokens=3, features=2),
    "models/relu.bm": lambda: datasets.spiral_scalar(n=20, seed=1),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.mark.parametrize("model", sorted(SMALL))
def test_run_reports_consistent_numbers(model, tmp_path, capsys):
    data = tmp_path / "data.npz"
    np.savez(data, **SMALL[model]())
    out = tmp_path / "out"
    code = main(["run", model, "--data", str(data), "--output", str(out),
                 "--certificate-every", "25"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "duality-gap bound" in printed and "p_BM" in printed
    name = Path(model).stem                     # each model is named as its file
    record = json.loads((out / f"{name}_run.json").read_text())
    p_star, bm = record["convex"]["p_star"], record["bm"]
    assert p_star is not None
    assert bm["objective"] >= p_star * (1 - 1e-6)
    assert record["true_gap"] <= bm["certificate"]["gap_bound"] + 1e-9
    png = (out / f"{name}_run.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_run_on_builtin_data_skips_an_oversized_convex_program(tmp_path, capsys):
    code = main(["run", "models/mlp.bm", "--output", str(tmp_path), "--no-plot",
                 "--max-convex-vars", "10", "--steps", "50"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed and "built-in spiral" in printed
    record = json.loads((tmp_path / "mlp_run.json").read_text())
    assert record["convex"]["p_star"] is None and record["true_gap"] is None


def test_run_on_a_bad_data_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((5, 3)))            # no target, and the wrong width
    assert main(["run", "models/mlp.bm", "--data", str(bad), "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "data error" in err and "Traceback" not in err


@pytest.mark.parametrize("flag", [[], ["--no-warm-start"]])
def test_run_says_whether_it_warm_started(flag, tmp_path, capsys):
    data = tmp_path / "data.npz"
    np.savez(data, **SMALL["models/mlp.bm"]())
    out = tmp_path / "out"
    assert main(["run", "models/mlp.bm", "--data", str(data), "--output", str(out),
                 "--no-plot", *flag]) == 0
    printed = capsys.readouterr().out
    warm = json.loads((out / "mlp_run.json").read_text())["bm"]["warm_start"]
    if flag:
        assert warm is None and "lifted ADMM" not in printed
    else:
        assert warm["iterations"] > 0 and "lifted ADMM warm start" in printed
