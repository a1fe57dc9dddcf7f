"""Trainer numerics and honest training results: every retry loop is bounded, a NaN or
infinite objective is TrainingFailed (exit 3), never "objective: inf" with exit 0;
--cert-tol not reached exits 3 with the honest status saved; loss parameters and the
Trainer/fit arguments are checked before any work; an impossible gap is flagged."""
import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.certificates.result import gap_warnings
from bmdsl.cli import main
from bmdsl.bind.datasets import spiral, spiral_scalar
from bmdsl.core.errors import SemanticError, SolverError
from bmdsl.trainer import Trainer, TrainerError
from bmdsl.trainer.errors import TrainingFailed
from bmdsl.trainer.runtime import newton, ridged
from bmdsl.trainer.runtime.gram import Gram
from bmdsl.trainer.runtime.lifted import LiftedADMM
from model_texts import mlp, regularize

MLP = mlp("tiny", m=3, activation="gated_relu(patterns = 6, seed = 0)", loss="{loss}",
          regularize=regularize("1e-2"))
RELU = mlp("tinyrelu", m=2, scalar=True, activation="relu(patterns = 6, seed = 0)", loss="squared",
           regularize=regularize("1e-2"))

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def mlp(loss="squared"):
    return bmdsl.parse(MLP.format(loss=loss))


def mlp_bound(scale_x=1.0, scale_y=1.0, beta=None):
    model = mlp()
    if beta is not None:      # below the language's range: only the Python API reaches it
        model = dataclasses.replace(model, regularizer=dataclasses.replace(
            model.regularizer, beta=beta))
    data = spiral(15, 3, seed=1)
    return model.derive().bind({"X": data["X"] * scale_x, "Y": data["Y"] * scale_y})


@pytest.fixture
def files(tmp_path):
    (tmp_path / "tiny.bm").write_text(MLP.format(loss="squared"))
    (tmp_path / "relu.bm").write_text(RELU)
    data = spiral(15, 3, seed=1)
    np.savez(tmp_path / "data.npz", **data)
    np.savez(tmp_path / "y300.npz", X=data["X"], Y=data["Y"] * 1e300)
    np.savez(tmp_path / "x200.npz", X=data["X"] * 1e200, Y=data["Y"])
    relu = spiral_scalar(24, seed=2)
    np.savez(tmp_path / "relu_x200.npz", X=relu["X"] * 1e200, Y=relu["Y"])
    np.savez(tmp_path / "relu_x0.npz", X=relu["X"] * 0.0, Y=relu["Y"])
    return tmp_path


# -- the three loops that hung, run as a user runs them: in a subprocess with a timeout -----
HUNG = [("tiny.bm", "x200.npz", "overflows float64"),       # lifted._inverse (G not finite)
        ("relu.bm", "relu_x200.npz", "overflows float64"),   # ridged.ridged_cholesky
        ("tiny.bm", "y300.npz", "is inf")]                   # newton_step, mu growing
SCRIPT = """
import contextlib, io, json, sys
from bmdsl.cli import main
codes = []
for model, data, out in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", model, "--data", data, "--no-progress", "--output", out])
    codes.append((code, err.getvalue()))
print(json.dumps(codes))
"""


def test_overflowing_data_ends_with_exit_3_and_a_cause_not_a_hang(files):
    """One interpreter for the three runs (importing torch is the slow part)."""
    runs = [(str(files / model), str(files / data), str(files / f"out{i}.npz"))
            for i, (model, data, _) in enumerate(HUNG)]
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(runs)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for (code, err), (_, _, cause), (_, _, out) in zip(results, HUNG, runs):
        assert code == 3, err
        assert "training failed" in err and cause in err and "rescale" in err
        assert "Traceback" not in err
        assert not (files / out).exists()            # nothing saved as if it were a solution


def test_bounded_loops_raise_their_cause():
    # lifted ADMM: G not finite; rho underflowed to 0 by beta = 5e-324 gets a floor
    G = torch.eye(4, dtype=torch.float64)
    gram = Gram(G * math.inf, torch.ones(4, dtype=torch.float64), 1.0, (1, 2, 2))
    with pytest.raises(FloatingPointError, match="not finite"):
        LiftedADMM(gram, 1e-2).run(5)
    ok = LiftedADMM(Gram(G, torch.ones(4, dtype=torch.float64), 4.0, (1, 2, 2)), 5e-324)
    ok.run(5)
    assert 0 < ok.rho < 1e-10 and torch.isfinite(ok.x).all()
    # interior point: a NaN system raises, an all-zero block gets a ridge (it looped forever)
    with pytest.raises(FloatingPointError, match="not finite"):
        ridged.ridged_cholesky(torch.full((2, 3, 3), math.nan, dtype=torch.float64))
    L = ridged.ridged_cholesky(torch.zeros(2, 3, 3, dtype=torch.float64))
    assert torch.isfinite(L).all()


def test_newton_step_refuses_a_non_finite_objective():
    bound = mlp_bound()
    t = Trainer(bound, method="newton", warm_start=False, progress=False)
    U, V = t.U.detach(), t.V.detach()
    active = torch.ones(U.shape[:2], dtype=torch.bool)
    with pytest.raises(FloatingPointError, match="not finite"):
        newton.newton_step(t.problem, U, V, active,
                           lambda u, v: t.objective(u, v) * math.inf, 1e-3)


# -- divergence and the honest exit of train --------------------------------------------------
def test_divergence_names_the_method_and_learning_rate():
    t = Trainer(mlp_bound(), method="sgd", lr=1e3, warm_start=False, progress=False)
    with pytest.raises(TrainingFailed) as info:
        t.fit(50)
    err = info.value
    assert isinstance(err, SolverError) and err.method == "sgd" and err.lr == 1e3
    assert "diverged" in err.message and "learning rate 1000" in err.message
    assert "smaller learning rate" in err.hint


def test_non_finite_objective_exits_3_in_process(files, capsys):
    out = files / "o.npz"
    code = main(["train", str(files / "tiny.bm"), "--data", str(files / "y300.npz"),
                 "--no-progress", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 3 and "objective is inf" in err and "objective:" not in err
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_cert_tol_not_reached_exits_3_with_the_status_saved(files, capsys):
    out = files / "c.npz"
    code = main(["train", str(files / "tiny.bm"), "--data", str(files / "data.npz"),
                 "--no-progress", "--no-warm-start", "--epochs", "2", "--certificate-every",
                 "1", "--cert-tol", "1e-300", "--output", str(out)])
    text = capsys.readouterr().out
    assert code == 3 and "cert_tol not reached" in text
    record = json.loads(out.with_suffix(".json").read_text())["result"]
    assert record["status"] == "cert_tol not reached" and record["cert_tol_reached"] is False


def test_cert_tol_in_the_python_api():
    t = Trainer(mlp_bound(), method="newton", warm_start=False, progress=False)
    result = t.fit(2, cert_tol=1e-300, certificate_every=1)
    assert result.cert_tol_reached is False and result.status == "cert_tol not reached"
    assert Trainer(mlp_bound(), progress=False).fit(3).status == "finished"


# -- tracebacks that were: zero data, tiny beta -------------------------------------------------
def test_all_zero_inputs_with_relu_train_to_the_zero_network():
    relu = spiral_scalar(24, seed=2)
    bound = bmdsl.parse(RELU).derive().bind({"X": relu["X"] * 0.0, "Y": relu["Y"]})
    result = Trainer(bound, progress=False).fit(10)
    # the prediction is 0 whatever the weights: p* = F(0) = 1/2 |Y|^2, reached
    assert result.objective == pytest.approx(0.5 * np.sum(relu["Y"] ** 2), rel=1e-9)
    assert result.warm_start is None       # the interior point declines: no row to bind


@pytest.mark.parametrize("method", ["auto", "als", "precgd"])
def test_beta_below_rounding_gives_a_finite_result_not_linalg_error(method):
    result = Trainer(mlp_bound(beta=1e-300), method=method, progress=False).fit(5)
    assert math.isfinite(result.objective) and result.certificate is not None


# -- arguments and loss parameters -----------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"lr": -1.0}, {"lr": math.nan}, {"lr": math.inf},
                                    {"batch_size": 0}, {"m": 0}, {"init_scale": 0.0},
                                    {"certificate_every": -1}, {"checkpoint_every": 0}])
def test_trainer_arguments_are_checked(kwargs):
    with pytest.raises(TrainerError, match=next(iter(kwargs))):
        Trainer(mlp_bound(), progress=False, **kwargs)


@pytest.mark.parametrize("kwargs", [{"max_steps": -1}, {"epochs": -3}, {"time_limit": 0.0},
                                    {"certificate_every": -1}, {"cert_tol": math.nan},
                                    {"tol": -1.0}, {"max_steps": 2.5}])
def test_fit_arguments_are_checked_before_any_step(kwargs):
    t = Trainer(mlp_bound(), method="newton", warm_start=False, progress=False)
    U = t.U.detach().clone()
    with pytest.raises(TrainerError, match="must be"):
        t.fit(**kwargs)
    assert torch.equal(t.U.detach(), U)


def test_huber_delta_outside_its_range_is_an_error_at_its_span():
    with pytest.raises(SemanticError) as info:
        bmdsl.parse(MLP.format(loss="huber(delta = 5e-324)"))
    assert info.value.line == 9 and info.value.column == 20
    assert "1e-08 <= delta <= 1e+08" in info.value.message
    assert bmdsl.parse(MLP.format(loss="huber(delta = 0.5)")).loss.params == (("delta", 0.5),)
    with pytest.raises(SemanticError, match="delta"):
        mlp().with_loss("huber", delta=1e20)


def test_a_negative_gap_beyond_rounding_is_flagged():
    assert gap_warnings(1.0, 1.0 - 1e-12) == ()
    assert gap_warnings(1.0, 1.0 + 1e-13) == ()                  # rounding
    (warning,) = gap_warnings(0.5, 1.0)
    assert "exceeds the objective" in warning and "not to be trusted" in warning


def test_a_non_finite_start_is_caught_with_mini_batches_too():
    t = Trainer(mlp_bound(scale_y=1e300), method="adam", batch_size=5, progress=False)
    with pytest.raises(TrainingFailed, match=r"\|Y\| = 1e\+300") as info:
        t.fit(3)
    assert info.value.step == 0 and "rescale" in info.value.hint


def test_newton_that_cannot_progress_stops_as_stalled_not_after_max_steps():
    # targets near 1e150: F ~ 1e300 jitters by rounding above tol, so the steps never look
    # calm; newton settles at every step and the fit stops after 20 of them
    t = Trainer(mlp_bound(scale_y=1e150), method="newton", warm_start=False, progress=False)
    result = t.fit(500, certify=False)
    assert result.stopped == "stalled" and result.steps < 100
    assert math.isfinite(result.objective)
