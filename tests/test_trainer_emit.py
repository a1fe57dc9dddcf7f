"""emit_torch: a stand-alone trainer module (torch + numpy only) that trains like bmdsl."""
import ast
import dataclasses
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_trainer import case, trained

import bmdsl
from bmdsl.core.errors import SemanticError
from bmdsl.trainer import emit_torch
from bmdsl.trainer.emit import _literal

# run the emitted file with bmdsl made unimportable (it is never installed; this is belt
# and braces in case it is)
RUNNER = ("import sys, runpy; sys.modules['bmdsl'] = None; sys.argv = sys.argv[1:]; "
          "runpy.run_path(sys.argv[0], run_name='__main__')")


def run_emitted(bound, tmp_path, *extra):
    path = tmp_path / f"{bound.model.name}_torch.py"
    path.write_text(emit_torch(bound.derivation))
    names = [t.name for t in bound.model.inputs] + [bound.model.target.name]
    np.savez(tmp_path / "data.npz", **{k: bound.arrays[k] for k in names})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(tmp_path / "data.npz"),
                          "--device", "cpu", *extra], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("arch,act", [("mlp", "gated_relu"), ("cnn", "relu")])
def test_emitted_module_trains_to_the_same_objective(tmp_path, arch, act):
    bound, _, result = trained(arch, act)
    stdout = run_emitted(bound, tmp_path, "--output", str(tmp_path / "uv.npz"))
    value = float(stdout.split("objective ")[1].split()[0])
    assert value == pytest.approx(result.objective, rel=1e-6)
    with np.load(tmp_path / "uv.npz") as f:
        assert np.allclose(bound.predict_bm(f["U"], f["V"]), bound.predict_bm(result.U, result.V),
                           atol=1e-5)
        assert np.array_equal(f["masks"], bound.masks)     # the same sampled patterns
        assert np.array_equal(f["gates"], bound.patterns.gates)   # what predict needs
    if act == "relu":
        assert float(stdout.split("cone violation ")[1].split()[0]) <= 1e-6


def test_emitted_source_is_plain_and_generic():
    source = emit_torch(case("attention", "relu").derivation)
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"argparse", "math", "os", "sys", "threading", "time", "functools",
                        "zipfile", "numpy", "torch"}
    assert "bmdsl" not in imported and "from ." not in source
    top = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert len(top) == len(set(top)), "two pasted runtime files define the same name"
    # the model enters only as the SPEC literal (and the opening comments): the code
    # after it is the same for another model with the same facts (runtime.FACTS)
    model = case("attention", "relu").derivation.model
    renamed = dataclasses.replace(model, name="other",
                                  target=dataclasses.replace(model.target, name="T"))
    other = emit_torch(renamed.derive())
    assert "SPEC = " in other and "'other'" in other and "'T'" in other
    assert source.split("SPEC = ")[1].split("\n}\n", 1)[1] == \
        other.split("SPEC = ")[1].split("\n}\n", 1)[1]


@pytest.mark.parametrize("value", ["X; import os", "a b", float("inf"), object()])
def test_literals_refuse_what_they_cannot_vouch_for(value):
    with pytest.raises(SemanticError, match="cannot emit"):
        _literal({"name": value})


def test_literals_round_trip():
    spec = {"a": (1, 2.5, None, True, ("x", (3,))), "b": -0.1}
    assert eval(_literal(spec)) == spec                    # noqa: S307 (our own literal)


def test_emitted_module_samples_the_same_patterns(tmp_path):
    """Without --masks it samples gates as bmdsl.derive.patterns.sample_patterns does."""
    bound, _, _ = trained("attention", "gated_relu")
    stdout = run_emitted(bound, tmp_path, "--steps", "3", "--output", str(tmp_path / "o.npz"))
    assert f"patterns {bound.P}" in stdout
    with np.load(tmp_path / "o.npz") as f:
        assert np.array_equal(f["masks"], bound.masks)


def _emitted_predict(path, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-c", RUNNER, str(path), "predict", *map(str, args)],
                          capture_output=True, text=True, cwd=path.parent, env=env, timeout=300)


def test_emitted_predict_is_the_bmdsl_network(tmp_path):
    """`python model_torch.py predict W NEW` (and predict() with a saved network) give the
    predictions of trainer.network() on new inputs; bad data is a one-line error, exit 1."""
    bound, trainer, result = trained("cnn", "gated_relu")
    path = tmp_path / "cnn_torch.py"
    path.write_text(emit_torch(bound.derivation))
    np.savez(tmp_path / "w.npz", U=result.U, V=result.V, gates=bound.patterns.gates)
    rng = np.random.default_rng(5)
    images = rng.standard_normal((7,) + bound.arrays["I"].shape[1:])
    np.savez(tmp_path / "new.npz", I=images)                # inputs only, no target
    net = trainer.network()
    want = net(images).detach().numpy()
    out = _emitted_predict(path, tmp_path / "w.npz", tmp_path / "new.npz", "--output",
                           tmp_path / "pred.npz")
    assert out.returncode == 0, out.stderr
    with np.load(tmp_path / "pred.npz") as f:
        assert np.allclose(f["Yhat"], want, rtol=1e-12, atol=1e-14)
    net.save(tmp_path / "net.pt")                           # one file, read weights-only
    emitted = runpy.run_path(str(path), run_name="emitted")
    assert issubclass(emitted["NetworkModule"], torch.nn.Module)
    got = emitted["predict"](emitted["SPEC"], str(tmp_path / "net.pt"), {"I": images})
    assert np.array_equal(got, want)
    np.savez(tmp_path / "bad.npz", I=np.concatenate([images, images], axis=1))  # 2 channels
    bad = _emitted_predict(path, tmp_path / "w.npz", tmp_path / "bad.npz")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr and "trained with" in bad.stderr


def test_emitted_training_refuses_bad_data_without_a_traceback(tmp_path):
    """One entry point (runtime/driver.py) for training and `predict`: a missing file or
    data without the model's arrays is a one-line error, exit 1, as `predict`'s."""
    import bmdsl
    path = tmp_path / "selfattention_torch.py"
    path.write_text(emit_torch(bmdsl.load("models/selfattention.bm").derive()))
    np.savez(tmp_path / "x.npz", X=np.zeros((2, 3, 4)))          # no target Y
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for data, message in (("none.npz", "data none.npz: no such file"),
                          ("x.npz", "the data lack 'Y'")):
        out = subprocess.run([sys.executable, "-c", RUNNER, str(path), data], cwd=tmp_path,
                             capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 1 and out.stderr.startswith("error: ")
        assert message in out.stderr and "Traceback" not in out.stderr


def test_emitted_relu_method_ends_on_the_cones_as_bmdsl():
    """A method with the augmented Lagrangian (lbfgs) on ReLU ends with the violating units
    projected on their cones, as bmdsl's fit does (restore_cones): before, the module moved
    them along their gates and rescaled them (into_cones, the initial factors' rule) and
    ended at another objective than bmdsl's Trainer."""
    from model_texts import mlp, regularize
    from bmdsl.trainer import Trainer
    model = bmdsl.parse(mlp("relu1", m=2, scalar=True, activation="relu(patterns = 3, seed = 0)",
                            loss="squared", regularize=regularize("1e-2")))
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((11, 2)), "Y": rng.standard_normal(11)}
    bound = model.derive().bind(data)
    ns = {"__name__": "emitted"}
    exec(compile(emit_torch(bound.derivation), "relu1_torch.py", "exec"), ns)  # noqa: S102
    _, _, f, _ = ns["train"](ns["setup"](ns["SPEC"], data), 2, 3, 0, method="lbfgs")
    result = Trainer(bound, device="cpu", progress=False, method="lbfgs",
                     warm_start=False).fit(max_steps=3, certificate_every=0, certify=False)
    assert result.violation_before > 1e-3          # the restoration decides the objective
    assert f == pytest.approx(result.objective, rel=1e-12)


def test_emitted_mixed_norm_pair_keeps_its_l2_side():
    """C = l2, R = l1: 'both norms are p = 2' is false, but C is: the module keeps C's sum
    of squares and `euclidean(C)`, so the cone interior point starts as in bmdsl and the
    module ends at p*. Before, every p = 2 test was written False for such a pair and the
    module trained from random factors (15.96 against p* 9.80 in bench/check_emitted.py)."""
    from model_texts import mlp, regularize
    from bmdsl.trainer.runtime.fit import setup
    from bmdsl.trainer.runtime.warm import warm_start_for
    from bmdsl.trainer.spec import build_spec
    model = bmdsl.parse(mlp("relu1", m=2, scalar=True, activation="relu(patterns = 3, seed = 0)",
                            loss="squared", regularize=regularize("1e-2", R="l1")))
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((11, 2)), "Y": rng.standard_normal(11)}
    bound = model.derive().bind(data)
    ns = {"__name__": "emitted"}
    exec(compile(emit_torch(bound.derivation), "relu1_torch.py", "exec"), ns)  # noqa: S102
    problem = ns["setup"](ns["SPEC"], data)
    want = warm_start_for(setup(build_spec(bound.derivation), data), 2)
    assert want is not None and type(ns["warm_start_for"](problem, 2)).__name__ == \
        type(want).__name__
    _, _, f, _ = ns["train"](problem, 2, 50, 0)
    assert f == pytest.approx(bound.to_cvxpy().solve().value, rel=1e-6)
