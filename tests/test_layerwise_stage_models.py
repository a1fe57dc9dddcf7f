"""One stage model per stage (Sahiner et al. 2024, section 4.2, with a stage of its own after
the first): stage 2 of 1 x 1 patches and more gates reads stage 1's BM latent
representation, reaches its own CVXPY optimum with a valid certificate, the stacked module
predicts as the stages do, a resumed run is checked against every stage model, and the
command takes several model files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import bmdsl
from model_texts import image_split, layerwise_stage
from bmdsl.cli import main
from bmdsl.core.errors import BmdslError
from bmdsl.layerwise import LayerwiseNetwork, StageOptions, train_layerwise

FIRST = layerwise_stage("first", patterns=2)
# 1 x 1 patches: p = the previous stage's m P channels, so P can grow at a small Gram block
LATER = layerwise_stage("later", patterns=5, patches="patches X[n, k, h] = im2col(I, "
                        "kernel = 1, stride = 1, padding = 0)\n")
OPTIONS = dict(progress=False, refine_iters=200)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    train, test = image_split()
    models = [bmdsl.parse(FIRST), bmdsl.parse(LATER)]
    directory = tmp_path_factory.mktemp("run")
    result = train_layerwise(models, train, test, 3, downsample=[2, 1],
                             options=StageOptions(**OPTIONS), directory=directory)
    return models, train, test, result, directory


def test_each_stage_is_its_own_model_and_reaches_its_cvxpy_optimum(run):
    models, train, _, result, _ = run
    first, later = result.stages[0], result.stages[1]
    assert [r["model"] for r in result.stages] == ["first", "later", "later"]   # last repeats
    assert (first["P"], later["P"]) == (2, 5)
    # 1 x 1 patches: a stage's patch is one grid cell of its input, p = the m P channels
    assert later["p"] == first["latent_channels"] == 4
    assert result.stages[2]["p"] == later["latent_channels"] == 10
    assert [net.spec["patches"][0]["kernel"] for net in result.network.stages] == [3, 1, 1]
    xs = result.network.representations(torch.as_tensor(train["images"]))
    for x, model, record in zip(xs, [*models, models[1]], result.stages):
        bound = model.derive().bind({"I": x.numpy(), "Y": np.eye(2)[train["labels"]]})
        assert bound.P == record["P"]
        p_star = bound.to_cvxpy().solve().value
        gap = (record["objective"] - p_star) / p_star
        assert abs(gap) <= 1e-6, (record["stage"], record["objective"], p_star)
        assert gap - 1e-9 <= record["gap_bound"] < 1e-3


def test_stacked_module_predicts_as_the_stages(run, tmp_path):
    _, _, test, result, _ = run
    x = torch.as_tensor(test["images"])
    result.network.save(tmp_path / "deep.pt")
    loaded = LayerwiseNetwork.load(tmp_path / "deep.pt")
    with torch.no_grad():
        assert torch.equal(loaded(x), result.network(x))
    accuracy = [float(np.mean(o.argmax(-1).numpy() == test["labels"]))
                for o in loaded.stage_outputs(x)]
    assert accuracy == [r["test_accuracy"] for r in result.stages]


def test_resume_checks_every_stage_model(run, tmp_path):
    models, train, test, result, _ = run
    opts = StageOptions(**OPTIONS)
    train_layerwise(models, train, test, 1, options=opts, directory=tmp_path)
    resumed = train_layerwise(models, train, test, 3, downsample=[2, 1], options=opts,
                              directory=tmp_path, resume=True)
    x = torch.as_tensor(test["images"])
    with torch.no_grad():
        assert torch.equal(resumed.network(x), result.network(x))
    other = bmdsl.parse(LATER.replace("patterns = 5", "patterns = 4"))
    with pytest.raises(BmdslError, match="another configuration"):
        train_layerwise([models[0], other], train, test, 3, downsample=[2, 1], options=opts,
                        directory=tmp_path, resume=True)
    with pytest.raises(BmdslError, match="no stage model"):
        train_layerwise([], train, test, 1)


def test_cli_takes_one_model_file_per_stage(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, _ = image_split()
    np.savez("tiny.npz", x_train=train["images"], y_train=train["labels"])
    (tmp_path / "first.bm").write_text(FIRST)
    (tmp_path / "later.bm").write_text(LATER)
    args = ["layerwise", "first.bm", "later.bm", "--data", "tiny.npz", "--output", "run",
            "--refine-iters", "0", "--no-progress", "--downsample", "2"]
    assert main(args + ["--stages", "2"]) == 0
    out = capsys.readouterr().out
    assert "layerwise first, later: 2 stage(s)" in out
    assert "    2          4x2x2    5" in out                   # stage 2: 5 gates on m P = 4
    assert main(["layerwise", "first.bm", "later.bm", "cnn", "--stages", "2"]) == 1
    err = capsys.readouterr().err
    assert "3 stage models for 2 stage(s)" in err and "Traceback" not in err
