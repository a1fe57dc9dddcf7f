"""Data checks of `bind` (binding.validate): one clear DataError per kind of mistake, and the
exact-enumeration cap, which names the count it would have produced."""
import math

import numpy as np
import pytest

import bmdsl
from bmdsl.core.errors import BmdslError, DataError
from bmdsl.derive.patterns import PatternCountError, PatternSet
from test_derivation_helpers import MLP, model, rng
from model_texts import cnn, regularize

SIZED = MLP.replace("input   X[n, d]", "size    d = 3\ninput   X[n, d]")


@pytest.fixture(scope="module")
def mlp():
    return model(MLP, "gated_relu").derive()


def data(n=5, d=3, c=2, seed=0):
    g = rng(seed)
    return dict(X=g.standard_normal((n, d)), Y=g.standard_normal((n, c)))


def raises(derivation, arrays, *fragments, kind=DataError, **kw):
    with pytest.raises(kind) as info:
        derivation.bind(arrays, **kw)
    message = str(info.value)
    for f in fragments:
        assert f in message, (f, message)
    return info.value


def test_valid_data_binds(mlp):
    b = mlp.bind(data())
    assert (b.sizes["n"], b.sizes["d"], b.sizes["c"]) == (5, 3, 2)
    assert b.arrays["X"].dtype == np.float64


def test_missing_tensor(mlp):
    err = raises(mlp, {"X": data()["X"]}, "missing data for Y", "Y[n, c]")
    assert "given: X" in err.render()


def test_shape_mismatch_between_tensors(mlp):
    arrays = data()
    arrays["Y"] = arrays["Y"][:4]
    raises(mlp, arrays, "'Y' axis 0 (n) has length 4", "n = 5 from 'X' axis 0")


def test_shape_mismatch_with_a_declared_size():
    derivation = bmdsl.parse(SIZED.format(act="linear", m=2, C="l2", R="l2")).derive()
    raises(derivation, data(d=4), "'X' axis 1 (d) has length 4", "'size d = 3'")
    assert derivation.bind(data(d=3)).sizes["d"] == 3


def test_wrong_number_of_axes(mlp):
    arrays = data()
    arrays["X"] = arrays["X"][:, :, None]
    raises(mlp, arrays, "'X' has 3 axes [5, 3, 1]", "X[n, d]")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf(mlp, bad):
    arrays = data()
    arrays["X"][1, 2] = bad
    arrays["X"][3, 0] = bad
    raises(mlp, arrays, "'X' contains 2 NaN or infinite value(s)", "first at index [1, 2]")


def test_empty_input(mlp):
    arrays = data()
    arrays["X"] = np.zeros((0, 3))
    raises(mlp, arrays, "'X' is empty", "[0, 3]")


def test_non_numeric_input(mlp):
    arrays = data()
    arrays["X"] = [["a", "b", "c"]] * 5
    raises(mlp, arrays, "data for 'X' is not numeric")


def test_data_errors_point_at_the_declaration(tmp_path, mlp):
    path = tmp_path / "mlp.bm"
    path.write_text(MLP.format(act="linear", m=2, C="l2", R="l2"))
    arrays = data()
    arrays["Y"][0, 0] = np.nan
    err = raises(bmdsl.load(path).derive(), arrays, "'Y' contains 1 NaN")
    shown = err.render()
    assert shown.startswith(f"{path}:3:")                 # target Y[n, c] is line 3
    assert "data error" in shown and "^" in shown


def test_target_with_one_output_may_drop_its_axis():
    derivation = bmdsl.parse(SIZED.replace("target  Y[n, c]", "size c = 1\ntarget  Y[n, c]")
                             .format(act="linear", m=2, C="l2", R="l2")).derive()
    b = derivation.bind(dict(X=data()["X"], Y=np.ones(5)))
    assert b.Y.shape == (5, 1)


def test_images_smaller_than_the_kernel():
    text = cnn(m=2, padding=0, pool="global", activation="linear", loss="squared",
               regularize=regularize(), align=8)
    raises(bmdsl.parse(text).derive(), dict(I=np.ones((2, 1, 2, 2)), Y=np.ones((2, 1))),
           "images 'I' of size 2x2 are smaller than the kernel 3")


def test_given_patterns_of_the_wrong_shape(mlp):
    wrong = PatternSet(np.ones((2, 4)), np.ones((2, 3)), "sampled", 0, 2)
    raises(mlp, data(), "the given patterns have shape [4]", "[5]", patterns=wrong)


# -- the exact-enumeration cap --------------------------------------------------------------
def cover(n, r):
    return 2 * sum(math.comb(n - 1, k) for k in range(r))


def test_exact_enumeration_cap_names_the_count():
    derivation = model(MLP, "relu(patterns = exact)").derive()
    arrays = data(n=30, d=4)                    # 30 generic hyperplanes in R^4
    expected = cover(30, 4)
    assert expected == 8180
    err = raises(derivation, arrays, f"up to {expected} activation patterns", "cap = 1000",
                 "A[30]", kind=PatternCountError, pattern_cap=1000)
    assert isinstance(err, BmdslError) and "pattern_cap" in err.hint
    assert derivation.bind(data(n=8, d=2), pattern_cap=16).P == cover(8, 2) == 16


def test_cli_reports_the_cap_without_a_traceback(tmp_path, capsys):
    from bmdsl.cli import main
    from bmdsl.bind.datasets import save_data
    path, npz = tmp_path / "mlp.bm", tmp_path / "data.npz"
    path.write_text(MLP.format(act="relu(patterns = exact)", m=2, C="l2", R="l2"))
    save_data(npz, data(n=40, d=5))
    assert main(["derive", str(path), "--data", str(npz)]) == 1
    err = capsys.readouterr().err
    assert f"up to {cover(40, 5)} activation patterns" in err and "Traceback" not in err
    assert "too many patterns" in err and f"{path}:8:" in err     # the activation line


def test_operator_columns_equal_the_adjoint_of_the_basis_of_y():
    """operator() applies each L_k to the basis of p x q (memory |y| P p q); the adjoint of
    the basis of y (memory |y|^2) is the independent reference."""
    from test_trainer import CASES, case
    for arch, act in CASES:
        b = case(arch, act)
        ny = math.prod(b.y_shape)
        G = b.adjoint(np.eye(ny).reshape((ny,) + b.y_shape))
        want = G.reshape(ny, b.P, b.p * b.q).transpose(1, 0, 2)
        assert np.allclose(b.operator(), want, rtol=1e-13, atol=1e-13), (arch, act)
