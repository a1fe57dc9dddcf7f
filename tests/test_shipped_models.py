"""The example models ship with the package and load by name (`bmdsl run mlp`,
`bmdsl.load("relu")`) from any directory; a real file wins over a shipped name; an unknown
name lists the shipped ones."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import bmdsl
from bmdsl.cli import main
from bmdsl.check.shipped import resolve, shipped_models

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(p.stem for p in (ROOT / "models").glob("*.bm"))


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    """Run from a directory with no models/ in it, as a user of an installed bmdsl does."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_example_model_is_shipped():
    assert NAMES and list(shipped_models()) == NAMES
    for name, path in shipped_models().items():
        assert path.read_text() == (ROOT / "models" / f"{name}.bm").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_load_by_name_is_the_file(name):
    by_name = bmdsl.load(name)
    by_file = bmdsl.load(ROOT / "models" / f"{name}.bm")
    assert by_name.summary() == by_file.summary()
    assert bmdsl.load(f"{name}.bm").summary() == by_file.summary()


def test_a_real_file_wins_over_a_shipped_name(elsewhere):
    (elsewhere / "mlp").write_text((ROOT / "models" / "relu.bm").read_text())
    assert bmdsl.load("mlp").name == "relu"          # the file in the working directory
    assert resolve("mlp") is not None                # though a shipped mlp exists


def test_an_unknown_name_lists_the_shipped_models(capsys):
    with pytest.raises(bmdsl.BmdslError) as err:
        bmdsl.load("perceptron")
    text = err.value.render()
    assert "cannot read perceptron: no such file, and it is not a shipped model" in text
    assert ", ".join(NAMES) in text
    assert main(["check", "perceptron"]) == 1
    err = capsys.readouterr().err
    assert "shipped models: " in err and "Traceback" not in err


def test_a_missing_path_is_not_looked_up_by_name(elsewhere):
    with pytest.raises(bmdsl.BmdslError, match="cannot read") as err:
        bmdsl.load(elsewhere / "sub" / "mlp.bm")
    assert "shipped" not in err.value.render()
    assert resolve("sub/mlp") is None and resolve("") is None
    with pytest.raises(bmdsl.BmdslError, match="too long"):   # the system's reason, no crash
        bmdsl.load("x" * 5000)


def test_commands_take_a_shipped_name(elsewhere, capsys):
    assert main(["check", "mlp", "cnn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model mlp") and "model cnn" in out
    assert main(["derive", "-q", "relu"]) == 0
    assert "derivation of model relu" in capsys.readouterr().out
    assert main(["compile", "-q", "selfattention", "-o", str(elsewhere / "out")]) == 0
    assert (elsewhere / "out" / "selfattention_torch.py").exists()


def test_pyproject_ships_models_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "bmdsl.models" in config["packages"]
    assert config["package-dir"]["bmdsl.models"] == "models"
    assert "*.bm" in config["package-data"]["bmdsl.models"]
    assert (ROOT / "models" / "__init__.py").exists()
