"""Data in ordinary forms (issue 14): CSVs with any headers (`--target`, default the last
column), .npy/.npz by name, integer class labels made one-hot when the loss registry entry
accepts them, and the same `--data NAME=FILE` syntax on every command."""
from __future__ import annotations

import json

import numpy as np
import pytest

import bmdsl
from bmdsl.cli import main
from bmdsl.commands.data_args import read_data
from bmdsl.bind.datasets import DataFileError, load_data, spiral
from bmdsl.core.errors import DataError
from bmdsl.atoms.losses import LOSSES

MLP = "models/mlp.bm"
TWO_INPUTS = """model gated
input X[n, d]
input G[k, d]
target Y[n, c]
units m = 2
weights W1[d], W2[c]
layer A[n] = X[n, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation gated_relu(gates = G)
loss squared
regularize beta = 0.1, C = l2, R = l2
"""


@pytest.fixture(scope="module")
def spiral12():
    d = spiral(12, 3, seed=0)
    return d["X"], d["Y"], d["Y"].argmax(axis=1)


def write_csv(path, header, *columns):
    rows = np.column_stack(columns)
    path.write_text(",".join(header) + "\n" + "\n".join(
        ",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    return path


def test_ordinary_headers_last_column_is_the_target(tmp_path, spiral12):
    X, Y, labels = spiral12
    path = write_csv(tmp_path / "d.csv", ["x0", "x1", "y"], X, labels)
    model = bmdsl.load(MLP)
    data = read_data([str(path)], model)
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["Y"], labels)
    bound = model.derive().bind(data)              # labels -> one-hot (loss squared)
    np.testing.assert_array_equal(bound.Y, Y)


def test_target_option_picks_columns_anywhere(tmp_path, spiral12):
    X, Y, labels = spiral12
    path = write_csv(tmp_path / "d.csv", ["label", "sepal length", "w"], labels, X)
    data = read_data([str(path)], bmdsl.load(MLP), target="label")
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["Y"], labels)
    two = write_csv(tmp_path / "two.csv", ["a", "y0", "b", "y1", "y2"],
                    X[:, 0], Y[:, 0], X[:, 1], Y[:, 1], Y[:, 2])
    data = load_data(two, tensors=("X", "Y"), target=["y0", "y1", "y2"])
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["Y"], Y)
    with pytest.raises(DataFileError, match="no column named 'z'") as info:
        load_data(two, tensors=("X", "Y"), target=["z"])
    assert "a, y0, b, y1, y2" in info.value.render()
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(DataError, match="no --data FILE is a .csv"):
        read_data([f"X={tmp_path / 'x.npy'}"], target="y")


def test_tensor_headers_still_name_arrays(tmp_path, spiral12):
    X, Y, _ = spiral12
    path = write_csv(tmp_path / "d.csv", ["Y[0]", "X[1]", "Y[1]", "X[0]", "Y[2]"],
                     Y[:, 0], X[:, 1], Y[:, 1], X[:, 0], Y[:, 2])
    data = read_data([str(path)], bmdsl.load(MLP))
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["Y"], Y)


def test_csv_header_mistakes_say_what_is_accepted(tmp_path):
    (tmp_path / "n.csv").write_text("1.0,2.0\n3,4\n")
    with pytest.raises(DataFileError, match="bad header") as info:
        load_data(tmp_path / "n.csv", tensors=("X", "Y"))
    assert "header row" in info.value.render() and "--target" in info.value.render()
    (tmp_path / "p.csv").write_text(",x0,y\n0,1.5,1\n")          # pandas' index column
    with pytest.raises(DataFileError, match="header cell 1 is empty") as info:
        load_data(tmp_path / "p.csv", tensors=("X", "Y"))
    assert "index=False" in info.value.render()
    (tmp_path / "o.csv").write_text("x0,x1,y\n1,2,0\n")       # ordinary, without a model
    with pytest.raises(DataFileError, match="missing X; found x0, x1, y"):
        load_data(tmp_path / "o.csv", names=["X"])      # each plain header is an array
    assert set(load_data(tmp_path / "o.csv", target=["y"])) == {"X", "Y"}


def test_model_with_several_inputs_needs_tensor_headers(tmp_path, spiral12):
    X, _, labels = spiral12
    path = write_csv(tmp_path / "d.csv", ["x0", "x1", "y"], X, labels)
    with pytest.raises(DataFileError, match="2 data inputs") as info:
        read_data([str(path)], bmdsl.parse(TWO_INPUTS))
    assert "--data NAME=FILE" in info.value.render()


def test_named_files_npy_and_whole_csv(tmp_path, spiral12):
    X, Y, labels = spiral12
    np.save(tmp_path / "x.npy", X)
    write_csv(tmp_path / "labels.csv", ["species"], labels)
    np.savez(tmp_path / "both.npz", X=X, Y=Y, extra=np.ones(2))
    data = read_data([f"X={tmp_path / 'x.npy'}", f"Y={tmp_path / 'labels.csv'}"])
    np.testing.assert_array_equal(data["Y"], labels)
    data = read_data([f"Y={tmp_path / 'both.npz'}", f"X={tmp_path / 'x.npy'}"])
    assert set(data) == {"X", "Y"}                  # one array of the .npz, by name
    with pytest.raises(DataError, match="name it, e.g. --data X="):
        read_data([str(tmp_path / "x.npy")])
    with pytest.raises(DataError, match="given twice"):
        read_data([str(tmp_path / "both.npz"), f"X={tmp_path / 'x.npy'}"])


def test_loss_registry_declares_which_losses_take_class_labels():
    assert {n for n, s in LOSSES.items() if s.accepts_class_labels} == {"squared",
                                                                        "cross_entropy"}


def test_class_labels_one_hot_for_cross_entropy(spiral12):
    X, Y, labels = spiral12
    model = bmdsl.load(MLP).with_loss("cross_entropy")
    np.testing.assert_array_equal(model.derive().bind({"X": X, "Y": labels}).Y, Y)


def test_class_labels_checked_against_the_declared_classes(spiral12):
    X, _, labels = spiral12
    sized = bmdsl.parse(open(MLP).read().replace("input   X[n, d]",
                                                 "size c = 2\ninput   X[n, d]")).derive()
    with pytest.raises(DataError, match="class label 2, but c = 2 classes"):
        sized.bind({"X": X, "Y": labels})
    derivation = bmdsl.load(MLP).derive()
    with pytest.raises(DataError, match="not class labels") as info:
        derivation.bind({"X": X, "Y": labels + 0.5})
    assert "0..c-1" in info.value.render()
    declared = bmdsl.parse(open(MLP).read().replace("input   X[n, d]",
                                                    "size c = 5\ninput   X[n, d]")).derive()
    assert declared.bind({"X": X, "Y": labels}).Y.shape == (12, 5)   # classes absent: zeros


def test_losses_without_class_labels_say_which_do(spiral12):
    X, _, labels = spiral12
    huber = bmdsl.parse(open(MLP).read().replace("loss       squared", "loss huber"))
    with pytest.raises(DataError, match="has 1 axes") as info:
        huber.derive().bind({"X": X, "Y": labels})
    assert "squared, cross_entropy" in info.value.render()


def test_same_data_syntax_on_run_and_solve(tmp_path, capsys, spiral12):
    X, Y, labels = spiral12
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", labels.astype(np.int64))     # integer labels, one-hot'ed
    out = tmp_path / "runs"
    code = main(["run", MLP, "--data", f"X={tmp_path / 'x.npy'}", "--data",
                 f"Y={tmp_path / 'y.npy'}", "--output", str(out), "--no-plot",
                 "--steps", "5", "--no-progress", "--patterns", "4"])
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "mlp_run.json").read_text())
    assert record["sizes"]["c"] == 3 and "x.npy" in record["data"]
    csv = write_csv(tmp_path / "d.csv", ["y", "f0", "f1"], labels, X)
    code = main(["solve", MLP, "--data", str(csv), "--target", "y", "--patterns", "4",
                 "-o", str(tmp_path / "sol.npz")])
    assert code == 0, capsys.readouterr().err
    assert "optimal value" in capsys.readouterr().out


def test_spreadsheet_habits_bom_and_semicolons(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeffx0,x1,y\n1.5,2,0\n".encode("utf-8"))
    data = load_data(tmp_path / "bom.csv", tensors=("X", "Y"), target="y")
    np.testing.assert_array_equal(data["X"], [[1.5, 2.0]])
    (tmp_path / "semi.csv").write_text("x0;x1;y\n1.5;2;0\n")
    with pytest.raises(DataFileError, match="not a number") as info:
        load_data(tmp_path / "semi.csv", tensors=("X", "Y"))
    assert "separated by ';'" in info.value.render()
    (tmp_path / "comma.csv").write_text("x0;x1;y\n1,5;2;0\n")      # a decimal comma
    with pytest.raises(DataFileError, match="line 2 has 2 cells") as info:
        load_data(tmp_path / "comma.csv", tensors=("X", "Y"))
    assert "separated by ';'" in info.value.render()


def test_named_npz_member_reads_only_that_member(tmp_path, spiral12):
    X, _, _ = spiral12
    np.savez(tmp_path / "mixed.npz", X=X, notes=np.array([{"a": 1}], dtype=object),
             allow_pickle=True)
    np.testing.assert_array_equal(load_data(tmp_path / "mixed.npz", name="X")["X"], X)
    with pytest.raises(DataFileError, match="member 'notes.npy'"):
        load_data(tmp_path / "mixed.npz")            # all members: the object one refused
