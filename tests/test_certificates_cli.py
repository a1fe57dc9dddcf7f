"""`bmdsl certify FILE --data DATA --weights W.npz` (bmdsl/commands/certify.py)."""
import json

import numpy as np
import pytest

import bmdsl
from bmdsl.cli import main
from bmdsl.bind.datasets import save_data, spiral
from bmdsl.derive.patterns import sample_patterns
from model_texts import mlp, regularize

MODEL = mlp(m=2, activation="gated_relu(patterns = 5, seed = 0)", loss="squared",
            regularize=regularize())


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "mlp.bm"
    model.write_text(MODEL)
    data = spiral(n=10, classes=2, seed=1)
    save_data(tmp_path / "data.npz", data)
    bound = bmdsl.parse(MODEL).derive().bind(data)
    # patterns of ANOTHER seed, saved with the factors: the certificate must use these
    pats = sample_patterns(bound.pre_activation, bound.w1_shape, 7, seed=3)
    rng = np.random.default_rng(0)
    U = rng.standard_normal((pats.count, 2, 2))
    V = rng.standard_normal((pats.count, 2, 2))
    np.savez(tmp_path / "w.npz", U=U, V=V, **pats.to_npz_dict())
    return tmp_path, pats, data


def _run(capsys, *argv):
    code = main(["certify", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_certify_prints_text_and_json_with_saved_patterns(files, capsys):
    d, pats, data = files
    code, out, err = _run(capsys, d / "mlp.bm", "--data", d / "data.npz", "--weights", d / "w.npz",
                          "--refine-iters", "20")
    assert code == 0, err
    assert "duality-gap bound" in out and f"P = {pats.count} patterns" in out
    assert "Theorem 3.4" in out and "scope" in out
    code, out, err = _run(capsys, d / "mlp.bm", "--data", d / "data.npz", "--weights", d / "w.npz",
                          "--json", "--refine-iters", "0")
    cert = json.loads(out)
    assert code == 0 and cert["P"] == pats.count and len(cert["dual_norms"]) == pats.count
    bound = bmdsl.parse(MODEL).derive().bind(data, patterns=pats)
    w = np.load(d / "w.npz")
    assert cert["objective"] == pytest.approx(bound.objective_bm(w["U"], w["V"]), rel=1e-12)
    assert cert["gap_bound"] >= 0 and not cert["vacuous"]


@pytest.mark.parametrize("arrays,needle", [
    (None, "no such file"),
    ({"A": np.zeros(3)}, "neither U and V nor Z"),
    ({"U": np.zeros((7, 2, 3)), "V": np.zeros((7, 2, 2)), "masks": np.zeros((7, 10))},
     "but not gates"),
    ({"U": np.zeros((4, 2, 2)), "V": np.zeros((4, 2, 2))}, "expected [P = "),
    ({"U": np.full((5, 2, 2), np.nan), "V": np.zeros((5, 2, 2))}, "NaN"),
])
def test_bad_weight_files_exit_1_without_traceback(files, capsys, arrays, needle):
    d, _, _ = files
    path = d / "bad.npz"
    if arrays is not None:
        np.savez(path, **arrays)
    code, out, err = _run(capsys, d / "mlp.bm", "--data", d / "data.npz", "--weights", path)
    assert code == 1 and needle in err and "Traceback" not in err + out


def test_not_an_npz(files, capsys):
    d, _, _ = files
    (d / "junk.npz").write_text("not a zip")
    code, _, err = _run(capsys, d / "mlp.bm", "--data", d / "data.npz", "--weights", d / "junk.npz")
    assert code == 1 and "not a readable .npz" in err


def test_patterns_for_a_linear_model_are_rejected(files, capsys):
    d, _, _ = files
    code, _, err = _run(capsys, d / "mlp.bm", "--activation", "linear", "--data", d / "data.npz",
                        "--weights", d / "w.npz")
    assert code == 1 and "carries activation patterns" in err
