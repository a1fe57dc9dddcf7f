"""Built-in data: shapes, determinism, balance; load_data round trips and errors."""
import numpy as np
import pytest

from bmdsl.bind.datasets import (DataFileError, images, load_data, save_data, sequences, spiral,
                                 spiral_scalar)


def test_spiral_shapes_balance_determinism():
    d = spiral()
    assert d["X"].shape == (150, 2) and d["Y"].shape == (150, 3)
    assert d["X"].dtype == np.float64
    np.testing.assert_array_equal(d["Y"].sum(axis=0), [50, 50, 50])
    np.testing.assert_array_equal(d["Y"].sum(axis=1), 1)
    assert np.abs(d["X"]).max() <= 0.5 and np.linalg.norm(d["X"], axis=1).min() > 0
    np.testing.assert_array_equal(d["X"], spiral()["X"])
    assert not np.array_equal(d["X"], spiral(seed=1)["X"])
    counts = spiral(n=46, classes=3)["Y"].sum(axis=0)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 46


def test_spiral_scalar():
    d = spiral_scalar(40, seed=0)
    assert d["X"].shape == (40, 2) and d["Y"].shape == (40,)
    assert set(np.unique(d["Y"])) == {-1.0, 1.0} and d["Y"].sum() == 0


def test_images():
    d = images()
    assert d["I"].shape == (16, 1, 6, 6) and d["Y"].shape == (16, 2)
    np.testing.assert_array_equal(d["Y"].sum(axis=0), [8, 8])
    np.testing.assert_array_equal(d["I"], images()["I"])
    # learnable: the brighter half predicts the class on every sample
    left, right = d["I"][..., :3].sum(axis=(1, 2, 3)), d["I"][..., 3:].sum(axis=(1, 2, 3))
    np.testing.assert_array_equal((right > left).astype(float), d["Y"][:, 1])
    assert images(n=9, channels=3, height=5, width=9, classes=3)["I"].shape == (9, 3, 5, 9)


def test_sequences():
    d = sequences()
    assert d["X"].shape == (8, 4, 3) and d["Y"].shape == (8, 4, 2)
    assert abs(d["Y"].std() - 1) < 1e-12
    np.testing.assert_array_equal(d["Y"], sequences()["Y"])
    assert not np.array_equal(d["Y"], sequences(seed=1)["Y"])


def test_roundtrip_npz_and_csv(tmp_path):
    arrays = {"X": spiral(12)["X"], "Y": spiral(12)["Y"], "y": spiral_scalar(12)["Y"],
              "I": images(n=12, channels=2, height=2, width=3)["I"]}
    for name in ("d.npz", "d.csv"):
        save_data(tmp_path / name, arrays)
        back = load_data(tmp_path / name, names=["X", "Y"])
        assert set(back) == set(arrays)
        for k, v in arrays.items():
            assert back[k].shape == v.shape and back[k].dtype == np.float64
            np.testing.assert_array_equal(back[k], v)       # repr() round-trips floats


def test_csv_column_order_and_plain_names(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("Y, X[1],X[0]\n1,2,3\n\n-1,5,6\n")
    d = load_data(p)
    np.testing.assert_array_equal(d["X"], [[3, 2], [6, 5]])
    np.testing.assert_array_equal(d["Y"], [1, -1])


def test_npy_needs_a_name(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(3, 2))
    assert load_data(tmp_path / "a.npy", names="X")["X"].shape == (3, 2)
    with pytest.raises(DataFileError, match="names="):
        load_data(tmp_path / "a.npy")


@pytest.mark.parametrize("text, match", [
    ("X[0],X[1]\n1,2\n3,oops\n", r"line 3, column 'X\[1\]': 'oops' is not a number"),
    ("X[0],X[1]\n1,2\n3\n", "line 3 has 1 cells"),
    ("X[0],X[q]\n1,2\n", "bad header cell 2"),
    ("1.0,2.0\n3,4\n", "bad header"),
    ("X[0],X[2]\n1,2\n", "do not cover"),
    ("X,X[0]\n1,2\n", "repeats or mixes"),
    ("X[0]\n", "no data rows"),
    ("", "empty file"),
    ("X[0]\nnan\n", "not finite"),
])
def test_csv_errors(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataFileError, match=match) as info:
        load_data(p)
    assert str(p) in str(info.value) and isinstance(info.value, ValueError)


def test_file_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        load_data(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataFileError, match="cannot read"):
        load_data(tmp_path / "junk.npz")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataFileError, match="unsupported"):
        load_data(tmp_path / "d.txt")
    np.savez(tmp_path / "d.npz", X=np.ones((2, 2)))
    with pytest.raises(DataFileError, match="missing Y; found X"):
        load_data(tmp_path / "d.npz", names=["X", "Y"])
    np.savez(tmp_path / "s.npz", X=np.array(["a", "b"]))
    with pytest.raises(DataFileError, match="not numeric"):
        load_data(tmp_path / "s.npz")
