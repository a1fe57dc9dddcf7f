"""Layerwise training from convex stages (Sahiner et al. 2024, section 4.2), small data in
float64: each stage reaches its own CVXPY optimum with a valid certificate, stage 2 reads
stage 1's BM latent representation, the stacked module predicts as the stages do, and a
resumed run ends where an uninterrupted one does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import bmdsl
from model_texts import image_split, layerwise_stage
from bmdsl.cli import main
from bmdsl.bind.datasets import images
from bmdsl.core.errors import BmdslError
from bmdsl.layerwise import LayerwiseNetwork, StageOptions, read_images, train_layerwise
from bmdsl.layerwise.solve import batches
from bmdsl.core import footprint

# global pooling: q = c = 2, so Z_k has rank <= 2 and m = 2 units can reach the optimum
STAGE = layerwise_stage()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    train, test = image_split()
    model = bmdsl.parse(STAGE)
    run = tmp_path_factory.mktemp("run")
    result = train_layerwise(model, train, test, 2, downsample=2,
                             options=StageOptions(progress=False, refine_iters=200),
                             directory=run)
    return model, train, test, result, run


def _numpy_latent(bound, U, window, scale=None):
    """D_k X_i u_kj on the patch grid, from the bound's masks and patches (not torch)."""
    X, D = bound.arrays["X"], bound.masks                       # [n, K, h], [P, n, K]
    H = np.einsum("knr,nrh,kjh->nkjr", D, X, U)                 # [n, P, m, K]
    n, P, m, K = H.shape
    side = int(round(np.sqrt(K)))
    H = H.reshape(n, P * m, side // window, window, side // window, window).mean(axis=(3, 5))
    scale = np.sqrt(np.mean(H ** 2)) if scale is None else scale
    return H / scale, scale


def test_stage_two_reads_stage_one_latent_representation(setup):
    model, train, test, result, _ = setup
    stage1 = result.network.stages[0]
    bound = model.derive().bind({"I": train["images"], "Y": np.eye(2)[train["labels"]]})
    P, m = bound.P, 2
    U = stage1.W1.detach().numpy().reshape(P, m, -1)
    expected, _ = _numpy_latent(bound, U, 2)
    x2 = result.network.representations(torch.as_tensor(train["images"]))[1].numpy()
    assert x2.shape == (16, P * m, 2, 2) == (16, *result.stages[1]["input"][:1], 2, 2)
    np.testing.assert_allclose(x2, expected, rtol=1e-12, atol=1e-13)
    assert result.stages[0]["latent_channels"] == P * m
    assert result.stages[0]["convex_latent_channels"] == P * bound.q


def test_each_stage_reaches_its_cvxpy_optimum_with_a_valid_certificate(setup):
    model, train, _, result, _ = setup
    xs = result.network.representations(torch.as_tensor(train["images"]))
    for x, record in zip(xs, result.stages):
        bound = model.derive().bind({"I": x.numpy(), "Y": np.eye(2)[train["labels"]]})
        p_star = bound.to_cvxpy().solve().value
        gap = (record["objective"] - p_star) / p_star
        assert abs(gap) <= 1e-6, (record["stage"], record["objective"], p_star)
        assert record["gap_bound"] >= gap - 1e-9
        assert record["gap_bound"] < 1e-3          # the certificate says it, too


def test_stacked_module_predicts_as_the_stages(setup, tmp_path):
    model, train, test, result, run = setup
    x = torch.as_tensor(test["images"])
    net = result.network
    path = tmp_path / "deep.pt"
    net.save(path)
    loaded = LayerwiseNetwork.load(path)
    with torch.no_grad():
        yhat = loaded(x).numpy()
        assert np.array_equal(yhat, net(x).numpy())
    # stage-wise, independently: stage 1's units in numpy with masks from its gates on the
    # new images, pooled and scaled as in training, then stage 2's saved network
    s1, s2 = net.stages
    bound = model.derive().bind({"I": test["images"], "Y": np.eye(2)[test["labels"]]})
    gates = s1.gates.numpy()                                     # [P, h]
    masks = (np.einsum("nrh,kh->knr", bound.arrays["X"], gates) >= 0).astype(float)
    bound.masks = masks
    U = s1.W1.detach().numpy().reshape(gates.shape[0], 2, -1)
    x2, _ = _numpy_latent(bound, U, 2, float(net.scales[0]))
    saved = torch.load(run / "stage2.pt", weights_only=True)
    from bmdsl.trainer.runtime.network import NetworkModule
    with torch.no_grad():
        expected = NetworkModule.from_dict(saved["network"])(torch.as_tensor(x2)).numpy()
    np.testing.assert_allclose(yhat, expected, rtol=1e-10, atol=1e-12)
    accuracy = [np.mean(o.argmax(-1).numpy() == test["labels"])
                for o in net.stage_outputs(x)]
    assert accuracy == [r["test_accuracy"] for r in result.stages]


def test_resume_after_stage_one_ends_as_an_uninterrupted_run(setup, tmp_path):
    model, train, test, result, _ = setup
    opts = StageOptions(progress=False, refine_iters=200)
    first = train_layerwise(model, train, test, 1, options=opts, directory=tmp_path)
    assert len(first.stages) == 1
    resumed = train_layerwise(model, train, test, 2, downsample=2, options=opts,
                              directory=tmp_path, resume=True)
    assert resumed.stages[1]["objective"] == result.stages[1]["objective"]
    x = torch.as_tensor(test["images"])
    with torch.no_grad():
        assert torch.equal(resumed.network(x), result.network(x))
    with pytest.raises(BmdslError, match="another configuration"):
        train_layerwise(model, train, test, 2, downsample=2, directory=tmp_path, resume=True,
                        options=StageOptions(progress=False, refine_iters=200, seed=1))


def test_mini_batches_when_the_full_batch_does_not_fit(setup):
    model, train, _, _, _ = setup
    bound = model.derive().bind({"I": train["images"], "Y": np.eye(2)[train["labels"]]})
    full = footprint.trainer_for(bound, 2, 8, "auto", None).nbytes
    half = footprint.trainer_for(bound, 2, 8, "adam", 8).nbytes
    assert half < full
    opts = StageOptions(m=2, memory_budget=(full + half) // 2)
    assert batches(bound, opts, 2) == ("adam", 8)
    assert batches(bound, StageOptions(m=2), 2) == ("auto", None)


def test_data_file_layout(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x_train=np.zeros((5, 4, 4)), y_train=np.arange(5) % 2,
             x_test=np.zeros((2, 1, 4, 4)), y_test=[0, 1])
    train, test = read_images(good)
    assert train["images"].shape == (5, 1, 4, 4) and test["labels"].tolist() == [0, 1]
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((5, 1, 4, 4)), Y=np.zeros(5))
    with pytest.raises(BmdslError, match="x_train"):
        read_images(bad)
    np.savez(bad, x_train=np.zeros((5, 1, 4, 4)), y_train=[0.5, 1, 0, 1, 0])
    with pytest.raises(BmdslError, match="whole class labels"):
        read_images(bad)


@pytest.mark.parametrize("argv, code, message", [
    (["cnn", "--stages", "0"], 2, "--stages: must be a whole number >= 1"),
    (["cnn", "--stages", "x"], 2, "--stages: must be a whole number"),
    (["cnn", "--stages", "3", "--downsample", "2,2,2"], 1, "need 2 down-sampling(s)"),
    (["cnn", "--stages", "2", "--downsample", "0"], 2, "--downsample: must be"),
    (["mlp", "--stages", "2"], 1, "needs one image input with one `patches`"),
])
def test_cli_errors_are_clear(argv, code, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(["layerwise", *argv])
    except SystemExit as exc:                 # argparse: a usage error
        status = exc.code
    assert status == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / f"{argv[0]}_layerwise").exists()    # refused before any work


def test_cli_runs_resumes_and_protects_its_outputs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = images(n=20, channels=1, height=4, width=4, classes=2, seed=0)
    np.savez("tiny.npz", x_train=d["I"], y_train=d["Y"].argmax(1))
    args = ["layerwise", "cnn", "--data", "tiny.npz", "--patterns", "3", "--m", "2",
            "--output", "run", "--refine-iters", "0", "--no-progress"]
    assert main(args + ["--stages", "1"]) == 0
    assert main(args + ["--stages", "1"]) == 1                  # exists: --force or --resume
    assert "already exists" in capsys.readouterr().err
    assert main(args + ["--stages", "2", "--downsample", "2", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "    2          6x2x2" in out and (tmp_path / "run" / "network.pt").is_file()
    net = LayerwiseNetwork.load(tmp_path / "run" / "network.pt")
    assert len(net.stages) == 2
    (tmp_path / "run" / "stage1.pt").write_bytes(b"changed")
    assert main(args + ["--stages", "2", "--downsample", "2", "--resume"]) == 1
    assert "missing or changed" in capsys.readouterr().err
    np.savez("bad.npz", X=d["I"])
    assert main(["layerwise", "cnn", "--stages", "1", "--data", "bad.npz", "-q"]) == 1
    assert "x_train" in capsys.readouterr().err


def test_builtin_digits_are_real_images_in_the_package():
    from bmdsl.layerwise import digits, split
    data, test = digits()
    assert test is None and data["images"].shape == (1797, 1, 8, 8)
    assert data["images"].min() == 0 and data["images"].max() == 1
    assert sorted(set(data["labels"].tolist())) == list(range(10))
    train, held = split(data, 0.2, 0)
    assert len(held["labels"]) == 359 and len(train["labels"]) == 1438


def test_api_refuses_bad_images_stages_and_an_occupied_directory(setup, tmp_path):
    model, train, test, _, run = setup
    with pytest.raises(BmdslError, match=r"images \[n, channels, height, width\]"):
        train_layerwise(model, {"images": train["images"][:, 0], "labels": train["labels"]},
                        None, 1)
    with pytest.raises(BmdslError, match="number of stages"):
        train_layerwise(model, train, None, 0)
    with pytest.raises(BmdslError, match="already holds a layerwise run"):
        train_layerwise(model, train, test, 1, directory=run)
