"""Trainer policy as data (runtime/policy.py): a BM method added by one table entry trains
end to end (docs/architecture.md, "Adding a BM method"); `auto` follows the table's order;
a method that does not apply is refused with all its reasons; the docs' tables are the
code's; the stand-alone trainer chooses through the same table."""
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import case, optimum

import bmdsl.commands  # noqa: F401  (registers the subcommands)
from bmdsl.cli import build_parser
from bmdsl.trainer import Trainer, TrainerError, emit_torch
from bmdsl.trainer.runtime import fit, policy
from bmdsl.trainer.runtime.steps import Method

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


class GradientDescent(Method):
    """The recipe's method: full-batch gradient descent with a fixed step, no ReLU cones
    (it would need the augmented Lagrangian's penalty tuned: refused instead)."""
    name = "gd"
    default_lr = 0.05

    @classmethod
    def refusals(cls, problem, m, full_batch):
        why = super().refusals(problem, m, full_batch)
        return why + (["it takes no ReLU cones"] if problem.cone else [])

    def step(self):
        t, lr = self.t, self.lr or self.default_lr
        gu, gv = torch.autograd.grad(t.objective(t.U, t.V), (t.U, t.V))
        with torch.no_grad():
            t.U -= lr * gu
            t.V -= lr * gv
            return float(t.objective(t.U, t.V))


@pytest.fixture
def gd(monkeypatch):
    """The one table entry of the recipe, undone after the test."""
    monkeypatch.setitem(policy.METHODS, "gd", GradientDescent)
    return GradientDescent


def test_a_method_added_by_one_entry_reaches_the_convex_optimum(gd):
    bound, pstar = case("mlp", "linear"), optimum("mlp", "linear")
    trainer = Trainer(bound, device="cpu", method="gd", progress=False)
    assert trainer.method_name == "gd" and trainer.warm is None   # named: measured alone
    result = trainer.fit(3000)
    f = [h[1] for h in result.history]
    assert f[-1] < 0.9 * f[0] and all(b <= a * (1 + 1e-12) for a, b in zip(f, f[1:]))
    assert abs(result.objective - pstar) <= 1e-4 * abs(pstar)
    assert result.certificate.gap_bound <= 1e-3
    # the stand-alone driver's loop runs the same entry
    problem = Trainer(bound, device="cpu", method="gd", progress=False).problem
    U, V, value, steps = fit.train(problem, trainer.m, steps=3000, method="gd")
    assert 0 < steps <= 3000 and abs(value - pstar) <= 1e-4 * abs(pstar)


def test_auto_takes_the_first_entry_that_accepts(gd, monkeypatch):
    monkeypatch.setattr(policy, "AUTO", ("gd",) + policy.AUTO)
    assert Trainer(case("mlp", "linear"), device="cpu").method_name == "gd"
    assert Trainer(case("mlp", "relu"), device="cpu").method_name == "newton"  # gd refuses
    monkeypatch.setattr(policy, "AUTO", ("newton",))
    with pytest.raises(TrainerError, match=r"no method of the automatic order applies: "
                                           r"newton: it needs C = R = l2 \(this model has C = l1"):
        Trainer(case("mlp", "gated_relu", C="l1"), device="cpu")


def test_a_method_that_does_not_apply_gets_all_its_reasons(gd):
    with pytest.raises(TrainerError, match=r"method 'als' does not apply here: it needs the "
                                           r"full batch .*; it solves ridge regressions"):
        Trainer(case("mlp", "relu"), device="cpu", method="als", batch_size=3)
    with pytest.raises(TrainerError, match=r"method 'newton' does not apply here: it needs the "
                                           r"full batch .*; it needs C = R = l2"):
        Trainer(case("mlp", "gated_relu", C="l1"), device="cpu", method="newton", batch_size=3)
    with pytest.raises(TrainerError, match="method 'gd' does not apply here: it takes no ReLU"):
        Trainer(case("mlp", "relu"), device="cpu", method="gd")


def test_the_cli_reads_method_and_the_old_spelling(gd, caplog, capsys):
    parse = build_parser().parse_args
    assert parse(["train", "m.bm", "--data", "d.npz"]).method == "auto"
    assert parse(["train", "m.bm", "--data", "d.npz", "--method", "gd"]).method == "gd"
    with caplog.at_level(logging.WARNING, logger="bmdsl"):
        args = parse(["run", "m.bm", "--optimizer", "lbfgs"])
    assert args.method == "lbfgs" and "--optimizer is deprecated: use --method" in caplog.text
    with pytest.raises(SystemExit):
        parse(["train", "--help"])
    shown = capsys.readouterr().out
    assert "--method" in shown and "--optimizer" not in shown      # the old one is hidden


def _table(heading: str):
    """The rows of the markdown table under `heading` in docs/trainer.md, as cell lists."""
    text = (ROOT / "docs" / "trainer.md").read_text()
    block = text.split(heading, 1)[1].split("\n\n", 2)[1]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row.strip("|"))]   # \| is no border
            for row in block.splitlines()[2:]]


def test_the_docs_tables_are_the_code_tables():
    auto = _table("`auto` tries the methods in this order")
    assert [r[1].strip("`") for r in auto] == list(policy.AUTO)
    assert [int(r[0]) for r in auto] == list(range(1, len(policy.AUTO) + 1))
    newton = policy.METHODS["newton"]
    assert f"<= {newton.MAX_VARS}" in auto[0][2]
    assert f"<= {newton.JACOBIAN_BUDGET:.0e}".replace("e+0", "e") in auto[0][2]
    methods = [r[0].strip("`") for r in _table("## The methods")]
    assert sorted(methods) == sorted(policy.METHODS)


def test_the_emitted_trainer_refuses_a_method_with_its_reasons(tmp_path):
    bound = case("mlp", "relu")
    path = tmp_path / "mlp_torch.py"
    path.write_text(emit_torch(bound.derivation))
    np.savez(tmp_path / "data.npz", **{k: bound.arrays[k] for k in ("X", "Y")})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runner = ("import sys, runpy; sys.modules['bmdsl'] = None; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", runner, str(path), str(tmp_path / "data.npz"),
                          "--device", "cpu", "--method", "als"], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 2 and re.search("method 'als' does not apply here: .*ridge "
                                             "regressions", out.stderr), out.stderr


def test_no_warm_start_gets_each_warm_starts_reason():
    relu = case("mlp", "relu", C="l1")        # cones with C = l1: no warm start applies
    with pytest.raises(TrainerError) as refused:
        Trainer(relu, device="cpu", warm_start=True)
    message = str(refused.value)
    assert re.search(r"no warm start applies: the lifted ADMM: it needs no ReLU cones; the "
                     r"lifted proximal Newton: it does not take ReLU cones[^;]*; the "
                     r"lifted majorization: it does not take ReLU cones; the "
                     r"lifted prox ADMM: it does not take ReLU cones; the "
                     r"cone interior point: it needs C = l2; the lifted FISTA: it does not "
                     r"take ReLU cones", message), message
