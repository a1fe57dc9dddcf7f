"""`bmdsl predict`, `bmdsl evaluate` and the train/test metrics of `bmdsl train` and
`bmdsl run` (--test-data, --test-fraction), through bmdsl.cli.main."""
import json

import numpy as np
import pytest

import bmdsl
from bmdsl.cli import main
from bmdsl.bind.datasets import load_data, spiral
from bmdsl.bind.split import split_data
from model_texts import mlp, regularize

MODEL = mlp("tiny", activation="gated_relu(patterns = 6, seed = 0)", loss="{loss}",
            regularize=regularize("1e-2"))

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One cross-entropy training with a 25% test split; its files."""
    d = tmp_path_factory.mktemp("pe")
    (d / "tiny.bm").write_text(MODEL.format(loss="cross_entropy"))
    (d / "reg.bm").write_text(MODEL.format(loss="squared"))
    np.savez(d / "data.npz", **spiral(48, 3, seed=1))
    np.savez(d / "new.npz", **spiral(30, 3, seed=2))
    code = main(["train", str(d / "tiny.bm"), "--data", str(d / "data.npz"), "--no-progress",
                 "--test-fraction", "0.25", "--output", str(d / "w.npz")])
    assert code == 0
    return d


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_records_train_and_test_metrics_of_the_split(trained):
    record = json.loads((trained / "w.json").read_text())
    train, test = record["metrics"]["train"], record["metrics"]["test"]
    assert (train["n"], test["n"]) == (36, 12)          # 48 samples, round(0.25 * 48) held out
    assert set(train) == set(test) == {"n", "loss", "accuracy"}
    assert 0 <= test["accuracy"] <= 1 and train["accuracy"] > 1 / 3   # better than chance
    assert "--test-fraction 0.25" in record["test"]
    # the recorded test metrics are those of the held-out part, recomputed here
    model = bmdsl.load(trained / "tiny.bm")
    _, held = split_data(model, dict(load_data(trained / "data.npz")), 0.25, 0)
    again = bmdsl.evaluate(model, trained / "w.npz", held)
    assert again["accuracy"] == pytest.approx(test["accuracy"])
    assert again["loss"] == pytest.approx(test["loss"], rel=1e-9)


def test_predict_writes_npz_and_csv_equal_to_the_python_api(trained, capsys):
    model = bmdsl.load(trained / "tiny.bm")
    want = bmdsl.predict(model, trained / "w.npz", trained / "new.npz")
    assert want.shape == (30, 3) and np.all(np.isfinite(want))
    for name in ("p.npz", "p.csv"):
        code, out, _ = cli(capsys, "predict", str(trained / "tiny.bm"), "--weights",
                           str(trained / "w.npz"), "--data", str(trained / "new.npz"),
                           "-o", str(trained / name))
        assert code == 0 and "30 sample(s)" in out
        got = load_data(trained / name)
        assert np.allclose(got["Yhat"], want, rtol=1e-12, atol=1e-12)
        assert np.array_equal(got["class"], np.argmax(want, axis=1))
    code, out, _ = cli(capsys, "predict", str(trained / "tiny.bm"), "--weights",
                       str(trained / "w.npz"), "--data", str(trained / "new.npz"))
    lines = out.splitlines()
    assert code == 0 and lines[0] == "Yhat[0],Yhat[1],Yhat[2],class" and len(lines) == 31
    assert np.allclose([float(x) for x in lines[1].split(",")[:3]], want[0], rtol=1e-9)


def test_predictions_use_the_training_gates(trained):
    """Masks on new inputs come from the saved gates: the BM factors' own prediction."""
    from bmdsl.derive.patterns import PatternSet, masks_from_gates
    model = bmdsl.load(trained / "tiny.bm")
    with np.load(trained / "w.npz") as f:
        w = {k: f[k] for k in f.files}
    new = dict(load_data(trained / "new.npz"))
    patterns = PatternSet.from_npz_dict(w)
    fresh = model.derive().bind(new, patterns=PatternSet(
        masks_from_gates(lambda g: _layer(new["X"], g), patterns.gates), patterns.gates,
        "sampled"))
    assert np.allclose(bmdsl.predict(model, trained / "w.npz", new),
                       fresh.predict_bm(w["U"], w["V"]), rtol=1e-10, atol=1e-12)


def _layer(X, gates):
    return np.asarray(gates) @ X.T                    # A(h) = X h for each gate: [P, n]


def test_evaluate_table_and_json(trained, capsys):
    args = ["evaluate", str(trained / "tiny.bm"), "--weights", str(trained / "w.npz"),
            "--data", str(trained / "new.npz")]
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "accuracy" in out and "30 samples" in out
    code, out, _ = cli(capsys, *args, "--json")
    report = json.loads(out)
    assert code == 0 and report["activation"] == "gated_relu" and report["loss"] == "cross_entropy"
    Yhat = bmdsl.predict(bmdsl.load(trained / "tiny.bm"), trained / "w.npz", trained / "new.npz")
    Y = load_data(trained / "new.npz")["Y"]
    assert report["metrics"]["accuracy"] == pytest.approx(
        np.mean(np.argmax(Yhat, 1) == np.argmax(Y, 1)))
    assert report["metrics"]["n"] == 30


def test_a_regression_loss_reports_mse_and_r2(trained, capsys):
    d = trained
    code, out, _ = cli(capsys, "train", str(d / "reg.bm"), "--data", str(d / "data.npz"),
                       "--no-progress", "--test-data", str(d / "new.npz"), "--output",
                       str(d / "r.npz"))
    assert code == 0 and "test mse" in out and "train r2" in out
    test = json.loads((d / "r.json").read_text())["metrics"]["test"]
    Yhat = bmdsl.predict(bmdsl.load(d / "reg.bm"), d / "r.npz", d / "new.npz")
    Y = load_data(d / "new.npz")["Y"]
    assert test["mse"] == pytest.approx(np.mean((Yhat - Y) ** 2), rel=1e-9)
    assert test["r2"] == pytest.approx(
        1 - np.sum((Y - Yhat) ** 2) / np.sum((Y - Y.mean(0)) ** 2), rel=1e-9)


def test_run_reports_test_metrics(trained, capsys, tmp_path):
    code, out, _ = cli(capsys, "run", str(trained / "tiny.bm"), "--data",
                       str(trained / "data.npz"), "--test-fraction", "0.5", "--no-plot",
                       "--max-convex-vars", "0", "--output", str(tmp_path), "--steps", "20")
    assert code == 0 and "test accuracy" in out and "24 samples" in out
    record = json.loads((tmp_path / "tiny_run.json").read_text())
    assert record["metrics"]["test"]["n"] == record["metrics"]["train"]["n"] == 24


@pytest.mark.parametrize("argv,needle", [
    (["evaluate", "tiny.bm", "--weights", "w.npz", "--data", "bad.npz"],
     "d = 3 on axis 1, but the network was trained with d = 2"),
    (["evaluate", "tiny.bm", "--weights", "w.npz", "--data", "noY.npz"],
     "lacks the target 'Y'"),
    (["predict", "tiny.bm", "--weights", "nothere.npz", "--data", "new.npz"], "no such file"),
    (["predict", "tiny.bm", "--weights", "w.npz", "--data", "new.npz", "-o", "p.txt"],
     ".npz or .csv"),
    (["predict", "tiny.bm", "--weights", "w.npz", "--data", "new.npz", "--activation", "relu"],
     "trained with gated_relu"),
    (["predict", "tiny.bm", "--weights", "data.npz", "--data", "new.npz"], "lack U, V"),
    (["train", "tiny.bm", "--data", "data.npz", "--test-data", "bad.npz", "--no-progress"],
     "test data has d = 3"),
])
def test_mistakes_are_clean_errors(trained, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(trained)
    np.savez(trained / "bad.npz", X=np.zeros((4, 3)), Y=np.eye(3)[[0, 1, 2, 0]])
    np.savez(trained / "noY.npz", X=np.zeros((4, 2)))
    code, out, err = cli(capsys, *argv)
    assert code == 1 and needle in err and "Traceback" not in err


@pytest.mark.parametrize("options,needle", [
    (["--test-fraction", "0.2", "--test-data", "new.npz"], "not allowed with"),
    (["--test-fraction", "1.5"], "strictly between 0 and 1, not '1.5'"),
    (["--test-fraction", "nan"], "strictly between 0 and 1"),
    (["--test-fraction", "0.2", "--split-seed", "-1"], "--split-seed"),
])
def test_bad_test_options_are_usage_errors(trained, capsys, options, needle):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(trained / "tiny.bm"), "--data", str(trained / "data.npz"),
              *options])
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_split_is_seeded_and_covers_the_data():
    model = bmdsl.parse(MODEL.format(loss="squared"))
    data = spiral(30, 3, seed=0)
    a_train, a_test = split_data(model, data, 0.3, seed=4)
    b_train, b_test = split_data(model, data, 0.3, seed=4)
    _, c_test = split_data(model, data, 0.3, seed=5)
    assert np.array_equal(a_test["X"], b_test["X"]) and not np.array_equal(a_test["X"],
                                                                            c_test["X"])
    assert len(a_test["X"]) == 9 and len(a_train["X"]) == 21
    rows = {tuple(r) for r in np.concatenate([a_train["X"], a_test["X"]])}
    assert rows == {tuple(r) for r in data["X"]}
    for bad in (0, 1, 1.5, float("nan"), True):
        with pytest.raises(bmdsl.BmdslError, match="strictly between 0 and 1"):
            split_data(model, data, bad)


def test_large_data_is_predicted_in_chunks_with_the_same_result(trained, monkeypatch):
    import bmdsl.workflow.prediction as prediction
    model = bmdsl.load(trained / "tiny.bm")
    whole = bmdsl.predict(model, trained / "w.npz", trained / "new.npz")
    monkeypatch.setattr(prediction, "BATCH_ENTRIES", 7)    # a few samples per pass
    net, _ = prediction.network_from_weights(model, trained / "w.npz")
    assert prediction._chunk(net, load_data(trained / "new.npz"),
                             {"X": 0}) < 30
    chunked = bmdsl.predict(model, trained / "w.npz", trained / "new.npz")
    assert np.allclose(chunked, whole, rtol=1e-12, atol=1e-13)   # only the sum order differs


def test_no_chunks_when_samples_interact():
    """A graph convolution S[n, n] X[n, d] mixes samples: predicted in one pass."""
    from bmdsl.workflow.prediction import _samples_separate
    from bmdsl.trainer.spec import build_spec
    gcn = bmdsl.parse("""model gcn
input S[n, n]
input X[n, d]
target Y[n, c]
units m = 2
weights W1[d], W2[c]
layer A[n] = S[n, j] * X[j, i] * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation relu(patterns = 4, seed = 0)
loss squared
regularize beta = 1e-2, C = l2, R = l2
""")
    assert not _samples_separate(build_spec(gcn.derive()))
    with pytest.raises(bmdsl.BmdslError, match="'S' has the sample axis n 2 times"):
        split_data(gcn, {"S": np.eye(4), "X": np.ones((4, 2)), "Y": np.ones((4, 1))}, 0.5)
    from test_trainer import ACT, ATTENTION, CNN
    for text in (MODEL.format(loss="squared"), CNN.format(m=2, act=ACT["relu"], C="l2"),
                 ATTENTION.format(m=2, act=ACT["gated_relu"], C="l2")):
        assert _samples_separate(build_spec(bmdsl.parse(text).derive()))
