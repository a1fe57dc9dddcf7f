"""`bmdsl train` (bmdsl/commands/train.py): outputs, the JSON record, shared patterns,
and clean errors (exit 1, no traceback)."""
import json

import numpy as np
import pytest

from bmdsl.cli import main
from bmdsl.bind.datasets import spiral
from model_texts import TINY

MODEL = TINY


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.fixture
def files(tmp_path):
    (tmp_path / "tiny.bm").write_text(MODEL)
    np.savez(tmp_path / "data.npz", **spiral(15, 3, seed=1))
    return tmp_path


def train(files, *args):
    return main(["train", str(files / "tiny.bm"), "--data", str(files / "data.npz"),
                 "--no-progress", *args])


def test_train_saves_factors_patterns_and_a_record(files, capsys):
    out = files / "run.npz"
    assert train(files, "--output", str(out)) == 0
    text = capsys.readouterr().out
    assert "method newton on cpu (float64)" in text and "certificate:" in text
    with np.load(out) as f:
        assert f["U"].shape[1:] == (5, 2) and f["V"].shape[1:] == (5, 3)
        assert f["masks"].shape[0] == f["U"].shape[0] and str(f["source"]) == "sampled"
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["method"] == "newton" and record["config"]["device"] == "cpu"
    assert record["result"]["objective"] == pytest.approx(
        float(text.split("objective:")[1].split()[0]), rel=1e-10)
    assert record["certificate"]["gap_bound"] <= 1e-6
    assert set(record["versions"]) == {"bmdsl", "torch", "numpy", "python"}


def test_warm_start_is_reported_and_can_be_switched_off(files, capsys):
    out = files / "run.npz"
    assert train(files, "--output", str(out)) == 0
    text = capsys.readouterr().out
    assert "warm start:     lifted ADMM" in text
    warm = json.loads(out.with_suffix(".json").read_text())["result"]["warm_start"]
    assert warm["iterations"] > 0 and warm["history"]
    assert train(files, "--output", str(out), "--no-warm-start", "--force") == 0
    text = capsys.readouterr().out
    assert "warm start" not in text and "method newton" in text
    assert json.loads(out.with_suffix(".json").read_text())["result"]["warm_start"] is None


def test_patterns_file_is_reused(files, capsys):
    first = files / "first.npz"
    assert train(files, "--output", str(first)) == 0
    second = files / "second.npz"
    assert train(files, "--patterns", str(first), "--seed", "5", "--method", "lbfgs",
                 "--epochs", "3", "--output", str(second)) == 0
    with np.load(first) as a, np.load(second) as b:
        assert np.array_equal(a["masks"], b["masks"]) and np.array_equal(a["gates"], b["gates"])
    record = json.loads(second.with_suffix(".json").read_text())
    assert record["patterns"]["file"] == str(first) and record["result"]["steps"] == 3
    third = files / "third.npz"
    assert train(files, "--patterns-from", str(first), "--epochs", "2",
                 "--output", str(third)) == 0
    with np.load(first) as a, np.load(third) as c:
        assert np.array_equal(a["masks"], c["masks"])
    capsys.readouterr()


def test_checkpoint_and_resume_from_the_command_line(files, capsys):
    ck = files / "ck.pt"
    assert train(files, "--method", "adam", "--batch-size", "5", "--epochs", "4",
                 "--checkpoint", str(ck), "--checkpoint-every", "6",
                 "--output", str(files / "a.npz")) == 0
    assert train(files, "--method", "adam", "--batch-size", "5", "--epochs", "4",
                 "--resume", str(ck), "--output", str(files / "b.npz")) == 0
    with np.load(files / "a.npz") as a, np.load(files / "b.npz") as b:
        assert np.array_equal(a["U"], b["U"])
    capsys.readouterr()


@pytest.mark.parametrize("args,message", [
    (["--method", "als", "--batch-size", "4"], "needs the full batch"),
    (["--device", "tpu"], "unknown device"),
    (["--resume", "nowhere.pt"], "no checkpoint at nowhere.pt"),
    (["--patterns", "missing.npz"], "cannot read patterns"),
    (["--m", "0"], "--m must be positive"),
])
def test_mistakes_exit_1_without_traceback(files, capsys, args, message):
    assert train(files, *args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_data_file(files, capsys):
    assert main(["train", str(files / "tiny.bm"), "--data", str(files / "none.npz")]) == 1
    assert "no such file" in capsys.readouterr().err
