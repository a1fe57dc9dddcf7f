"""A new user's mistakes, on bmdsl's command line and in the emitted stand-alone modules:
each one a message that says what is wrong and what is accepted, never a traceback, and
no output where it does not belong (docs/cli.md)."""
import re
import runpy

import numpy as np
import pytest

import bmdsl
from bmdsl.bind.datasets import spiral
from bmdsl.cli import main
from bmdsl.core.errors import DataError
from bmdsl.cvx import emit_cvxpy
from bmdsl.kernel.npz import numeric, read_npz
from bmdsl.trainer import emit_torch
from model_texts import TINY


@pytest.fixture
def files(tmp_path):
    (tmp_path / "tiny.bm").write_text(TINY)
    data = spiral(15, 3, seed=1)
    np.savez(tmp_path / "data.npz", **data)
    np.save(tmp_path / "x.npy", data["X"])
    (tmp_path / "text.npz").write_text("x0,x1,y\n1,2,0\n")
    (tmp_path / "empty.npz").write_bytes(b"")
    good = (tmp_path / "data.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[:len(good) // 2])
    return tmp_path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# -- the emitted modules' reader and data check (bmdsl/kernel/npz.py) ---------------------
@pytest.mark.parametrize("name", ["text.npz", "empty.npz", "cut.npz", "x.npy"])
def test_a_file_that_is_not_an_npz_is_named_not_unpickled(files, name):
    with pytest.raises(ValueError, match=f"data .*{name} is not a readable .npz") as info:
        read_npz(str(files / name))
    assert "pickle" not in str(info.value)


@pytest.mark.parametrize("value,message", [
    (np.zeros((4, 2, 1)), r"'X' has axes \[4, 2, 1\], not \[n, d\]"),
    (np.zeros((0, 2)), "'X' is empty"),
    (np.array([[1.0, np.nan]]), "'X' contains NaN or inf"),
    (np.ones((2, 2), dtype=complex), r"'X' is not an array of numbers \(dtype complex128\)"),
    (np.array([["1", "2"]]), "'X' is not an array of numbers"),
])
def test_numeric_says_what_is_wrong_with_an_array(value, message):
    with pytest.raises(ValueError, match=message):
        numeric({"X": value}, "X", ("n", "d"))
    with pytest.raises(ValueError, match=r"the data lack 'Y' \[n, c\] \(found: \['X'\]\)"):
        numeric({"X": value}, "Y", ("n", "c"))
    assert numeric({"Y": np.arange(3)}, "Y", ("n", "c"), short=True).shape == (3, 1)


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """The emitted torch and CVXPY modules of models/mlp.bm, loaded in this process."""
    directory = tmp_path_factory.mktemp("emitted")
    derivation = bmdsl.load("models/mlp.bm").derive()
    (directory / "t.py").write_text(emit_torch(derivation))
    (directory / "c.py").write_text(emit_cvxpy(derivation))
    data = spiral(12, 3, seed=2)
    np.savez(directory / "data.npz", **data)
    np.savez(directory / "rank3.npz", X=data["X"][:, :, None], Y=data["Y"])
    np.savez(directory / "none.npz", X=data["X"][:0], Y=data["Y"][:0])
    np.savez(directory / "masks.npz", masks=np.ones((3, 7)))         # for 7 samples, not 12
    (directory / "text.npz").write_text("x0,x1,y\n1,2,0\n")
    return (directory, runpy.run_path(str(directory / "t.py"), run_name="emitted"),
            runpy.run_path(str(directory / "c.py"), run_name="emitted"))


@pytest.mark.parametrize("argv,code,message", [
    (["rank3.npz"], 1, r"'X' has axes \[12, 2, 1\], not \[n, d\]"),
    (["none.npz"], 1, "'X' is empty"),
    (["data.npz", "--masks", "masks.npz"], 1, r"masks \[3, 7\] do not fit \[P, \*\[12\]\]"),
    (["data.npz", "--m", "0"], 2, "--m must be >= 1"),
    (["data.npz", "--output", "."], 1, "is a directory"),
])
def test_the_emitted_trainer_refuses_mistakes_in_one_line(modules, capsys, monkeypatch, argv,
                                                          code, message):
    directory, torch_module, _ = modules
    monkeypatch.chdir(directory)
    try:
        got = torch_module["main"](argv + ["--steps", "1"])
    except SystemExit as exit_:                 # the output rule exits before any work
        got = exit_.code
    err = capsys.readouterr().err
    assert got == code and err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_the_emitted_trainer_without_a_gpu_names_the_device(modules, capsys, monkeypatch):
    directory, torch_module, _ = modules
    monkeypatch.chdir(directory)
    monkeypatch.setattr(torch_module["torch"].cuda, "is_available", lambda: False)
    assert torch_module["main"](["data.npz", "--device", "cuda"]) == 2
    assert "no GPU here: --device cpu" in capsys.readouterr().err


def test_the_emitted_cvxpy_module_checks_data_like_the_trainer(modules, capsys, monkeypatch):
    directory, _, cvx_module = modules
    monkeypatch.chdir(directory)
    for data, message in (("rank3.npz", "'X' has axes [12, 2, 1], not [n, d]"),
                          ("text.npz", "text.npz is not a readable .npz")):
        assert cvx_module["main"](cvx_module["SPEC"], [data]) == 1
        assert message in capsys.readouterr().err


# -- bmdsl's commands ----------------------------------------------------------------------
@pytest.mark.parametrize("command", [["train", "--output"], ["solve", "-o"]])
def test_an_output_directory_is_refused_before_any_work(files, capsys, command):
    (files / "out").mkdir()
    code, err = run(capsys, command[0], files / "tiny.bm", "--data", files / "data.npz",
                    command[1], files / "out")
    assert code == 1 and "out is a directory, not an output file" in err
    assert "out.npz" in err                                # the hint names a file inside
    assert not (files / "out.npz").exists() and not (files / "out.json").exists()


def test_weights_that_are_not_an_npz_are_named_without_pickle_advice(files, capsys):
    for command in ("predict", "evaluate", "certify"):
        code, err = run(capsys, command, files / "tiny.bm", "--weights", files / "text.npz",
                        "--data", files / "data.npz")
        assert code == 1 and "text.npz: not a readable .npz file" in err, err
        assert "pickle" not in err


def test_a_named_array_missing_from_an_npz_lists_the_arrays_it_holds(files, capsys):
    code, err = run(capsys, "solve", files / "tiny.bm", "--data", f"Q={files / 'data.npz'}")
    assert code == 1 and "holds no array Q; it holds X, Y" in err


def test_missing_and_non_numeric_data_name_the_declaration():
    derivation = bmdsl.parse(TINY, path="tiny.bm").derive()
    data = spiral(15, 3, seed=1)
    with pytest.raises(DataError, match=r"the model needs X\[n, d\], Y\[n, c\]"):
        derivation.bind({"X": data["X"]})
    with pytest.raises(DataError, match=r"data for 'X' is not numeric \(dtype complex128\)"):
        derivation.bind(dict(data, X=data["X"].astype(complex)))


def test_compile_methods_without_names_says_so(files, capsys):
    code, err = run(capsys, "compile", files / "tiny.bm", "-o", files / "out", "--methods", ",")
    assert code == 1 and "--methods ',': no names given" in err
    assert not (files / "out").exists()


def test_a_data_error_names_the_data_file_beside_the_declaration(files, capsys):
    data = spiral(15, 3, seed=1)
    data["X"][2, 1] = np.nan
    np.savez(files / "nan.npz", **data)
    code, err = run(capsys, "solve", files / "tiny.bm", "--data", files / "nan.npz",
                    "-o", files / "s.npz")
    assert code == 1 and "tiny.bm:" in err and "'X' contains 1 NaN" in err
    assert f"(read from {files / 'nan.npz'})" in err and not (files / "s.npz").exists()


def test_weights_with_patterns_of_other_data_say_where_patterns_come_from(files, capsys):
    from bmdsl.derive.patterns import PatternSet
    rng = np.random.default_rng(0)
    saved = PatternSet(np.ones((3, 7)), rng.standard_normal((3, 2)), "sampled", 0)  # n = 7
    np.savez(files / "w.npz", U=rng.standard_normal((3, 2, 2)), V=rng.standard_normal((3, 2, 3)),
             **saved.to_npz_dict())
    code, err = run(capsys, "certify", files / "tiny.bm", "--data", files / "data.npz",
                    "--weights", files / "w.npz")
    assert code == 1 and "the given patterns have shape [7]" in err and "[15]" in err
    assert "saved with the weights" in err


def test_evaluate_reads_class_labels_as_training_does(files):
    """Labels [n] for Y[n, c] train as one-hot rows; evaluating with them gives the same
    report as with the one-hot target (it was refused: 'the target has shape (15,)')."""
    rng = np.random.default_rng(1)
    weights = {"U": rng.standard_normal((4, 2, 2)), "V": rng.standard_normal((4, 2, 3)),
               "gates": rng.standard_normal((4, 2)), "activation": "gated_relu"}
    data = spiral(15, 3, seed=1)
    onehot = bmdsl.evaluate(files / "tiny.bm", weights, data)
    labels = bmdsl.evaluate(files / "tiny.bm", weights, dict(data, Y=data["Y"].argmax(1)))
    assert labels == onehot and onehot["n"] == 15
