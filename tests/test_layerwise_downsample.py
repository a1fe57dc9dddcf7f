"""The paper's layerwise set-up (Sahiner et al. 2024, appendix C.2, after Belilovsky et al.
2019): the invertible space-to-depth down-sampling between stages, and a stage with the
softmax cross-entropy loss and a head averaged to a 2 x 2 grid (`adaptive(2x2)`, a = 4).
Small data in float64, checked against independent numpy computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import bmdsl
from model_texts import image_split
from bmdsl.bind.datasets import images
from bmdsl.cli import main
from bmdsl.core.errors import BmdslError
from bmdsl.layerwise import LayerwiseNetwork, StageOptions, train_layerwise
from bmdsl.layerwise import downsample as ds

STAGE = """
model stage
architecture cnn
pool P[a, k] = adaptive(2x2)
units m = 2
activation gated_relu(patterns = 3, seed = 0)
loss cross_entropy
regularize beta = 1e-2, C = l2, R = l2
"""


def _space_to_depth(H, f):
    """numpy, from the definition: channel (c, i, j) of cell (r, s) is H[c, f r + i, f s + j]."""
    n, C, h, w = H.shape
    H = np.pad(H, ((0, 0), (0, 0), (0, -h % f), (0, -w % f)))
    h2, w2 = H.shape[2] // f, H.shape[3] // f
    return H.reshape(n, C, h2, f, w2, f).transpose(0, 1, 3, 5, 2, 4).reshape(n, C * f * f,
                                                                              h2, w2)


@pytest.mark.parametrize("shape, f", [((2, 3, 4, 6), 2), ((1, 2, 5, 7), 2), ((2, 1, 6, 6), 3)])
def test_space_to_depth_is_exactly_invertible(shape, f):
    H = torch.as_tensor(np.random.default_rng(0).standard_normal(shape))
    out = ds.apply(f"invertible:{f}", H)
    assert list(out.shape) == [shape[0], *ds.shape(f"invertible:{f}", *shape[1:])]
    assert np.array_equal(out.numpy(), _space_to_depth(H.numpy(), f))
    back = torch.nn.functional.pixel_shuffle(out, f)[..., :shape[2], :shape[3]]
    assert torch.equal(back, H)                       # bit for bit: nothing is lost
    assert float((out ** 2).sum()) == pytest.approx(float((H ** 2).sum()), rel=1e-14)
    # the average pooling is not: a 2 x 2 block's detail is gone
    assert ds.apply("2", H).shape[1] == shape[1]


def test_downsample_tokens():
    assert ds.parse(2) == ds.parse("2") == "average:2"
    assert ds.parse("invertible") == "invertible:2" and ds.parse("invertible:3") == "invertible:3"
    for bad in ("0", "max", "invertible:0", "invertible:x", True, "2:2"):
        with pytest.raises(BmdslError, match="space-to-depth"):
            ds.parse(bad)


def test_adaptive_pool_is_torchs_adaptive_average():
    from bmdsl.kernel.layout import adaptive_pool
    for grid in ((8, 8), (5, 7), (2, 2), (1, 3)):
        x = np.random.default_rng(1).standard_normal((2, 3, *grid))
        P = adaptive_pool(grid, {"cells": (2, 2)})
        got = np.einsum("ak,nck->nca", P, x.reshape(2, 3, -1))
        want = torch.nn.functional.adaptive_avg_pool2d(torch.as_tensor(x), (2, 2))
        np.testing.assert_allclose(got, want.reshape(2, 3, -1).numpy(), atol=1e-15)
    spec = bmdsl.parse(STAGE).derive().bind(
        {"I": np.zeros((3, 1, 5, 5)), "Y": np.eye(2)[[0, 1, 0]]})
    assert spec.q == 2 * 4                            # c a = classes x 2 x 2 cells


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    train, test = image_split()
    model = bmdsl.parse(STAGE)
    directory = tmp_path_factory.mktemp("inv")
    opts = StageOptions(method="lbfgs", progress=False, refine_iters=0, max_steps=30)
    result = train_layerwise(model, train, test, 3, downsample="invertible", options=opts,
                             directory=directory)
    return model, train, test, opts, result, directory


def test_invertible_stages_predict_as_the_stacked_module(run, tmp_path):
    model, train, test, _, result, directory = run
    net = result.network
    assert net.downsamples == ["invertible:2", "invertible:2"]
    assert [r["input"] for r in result.stages] == [[1, 4, 4], [24, 2, 2], [24, 1, 1]]
    x = torch.as_tensor(test["images"])
    path = tmp_path / "deep.pt"
    net.save(path)
    loaded = LayerwiseNetwork.load(path)
    with torch.no_grad():
        yhat = loaded(x).numpy()
        assert np.array_equal(yhat, net(x).numpy())
        # stage by stage from the saved stage files, down-sampled by the numpy definition
        h = x.numpy()
        for s in (1, 2, 3):
            saved = torch.load(directory / f"stage{s}.pt", weights_only=True)
            stage = bmdsl.trainer.runtime.network.NetworkModule.from_dict(saved["network"])
            if s == 3:
                np.testing.assert_allclose(yhat, stage(torch.as_tensor(h)).numpy(),
                                           rtol=1e-12, atol=1e-13)
                break
            assert saved["downsample"] == "invertible:2"
            from bmdsl.layerwise.latent import representation
            H = representation(stage, torch.as_tensor(h), "average:1", 1.0).numpy()
            h = _space_to_depth(H, 2) / saved["scale"]
    accuracy = [np.mean(o.argmax(-1).numpy() == test["labels"]) for o in net.stage_outputs(x)]
    assert accuracy == [r["test_accuracy"] for r in result.stages]


def test_invertible_run_resumes_to_the_same_network(run, tmp_path):
    model, train, test, opts, result, _ = run
    train_layerwise(model, train, test, 1, options=opts, directory=tmp_path)
    resumed = train_layerwise(model, train, test, 3, downsample="invertible", options=opts,
                              directory=tmp_path, resume=True)
    assert [r["objective"] for r in resumed.stages] == [r["objective"] for r in result.stages]
    x = torch.as_tensor(test["images"])
    with torch.no_grad():
        assert torch.equal(resumed.network(x), result.network(x))
    with pytest.raises(BmdslError, match="down-sampling invertible:2, not average:2"):
        train_layerwise(model, train, test, 3, downsample=2, options=opts,
                        directory=tmp_path, resume=True)


def test_cli_takes_invertible_and_refuses_a_bad_mode(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["layerwise", "cnn", "--stages", "2", "--downsample", "shuffle"])
    assert exc.value.code == 2
    assert "--downsample: must be" in capsys.readouterr().err
    d = images(n=12, channels=1, height=4, width=4, classes=2, seed=0)
    np.savez("tiny.npz", x_train=d["I"], y_train=d["Y"].argmax(1))
    assert main(["layerwise", "cnn", "--data", "tiny.npz", "--patterns", "2", "--m", "1",
                 "--stages", "2", "--downsample", "invertible", "--steps", "5",
                 "--refine-iters", "0", "--no-progress", "--output", "run"]) == 0
    assert "    2          8x2x2" in capsys.readouterr().out      # 4 m P channels, 2 x 2


def test_cross_entropy_stage_with_a_2x2_head_reaches_its_cvxpy_optimum():
    # q = c a = 2 x 4 = 8: m = 8 units reach any rank of Z_k (eq. (23) -> (24))
    torch.set_num_threads(1)
    model = bmdsl.parse(STAGE.replace("units m = 2", "units m = 8"))
    d = images(n=16, channels=1, height=4, width=4, classes=2, seed=0)
    train = {"images": d["I"], "labels": d["Y"].argmax(1)}
    record = train_layerwise(model, train, None, 1, options=StageOptions(
        method="lbfgs", progress=False, refine_iters=200)).stages[0]
    bound = model.derive().bind({"I": train["images"], "Y": np.eye(2)[train["labels"]]})
    p_star = bound.to_cvxpy().solve().value
    gap = (record["objective"] - p_star) / p_star
    assert abs(gap) <= 1e-6, (record["objective"], p_star)
    assert gap - 1e-9 <= record["gap_bound"] < 1e-3


def test_a_version_1_network_file_still_loads(run, tmp_path):
    model, train, test, opts = run[:4]
    net = train_layerwise(model, train, None, 2, downsample=2, options=StageOptions(
        method="lbfgs", progress=False, refine_iters=0, max_steps=3)).network
    assert net.downsamples == ["average:2"]
    old = {"format": "bmdsl-layerwise-network", "version": 1, "windows": [2],
           "scales": [float(net.scales[0])], "stages": [s.to_dict() for s in net.stages]}
    torch.save(old, tmp_path / "v1.pt")
    x = torch.as_tensor(test["images"])
    with torch.no_grad():
        assert torch.equal(LayerwiseNetwork.load(tmp_path / "v1.pt")(x), net(x))
