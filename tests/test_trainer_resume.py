"""Checkpoints, Ctrl-C and resume (bmdsl/trainer/fitloop.py): an interrupted and resumed
run ends exactly where an uninterrupted run with the same seed ends (float64)."""
import io

import numpy as np
import pytest
import torch
from test_trainer import case

from bmdsl.trainer import Trainer, TrainerError, TrainingInterrupted
from bmdsl.trainer import checkpoint as ckpt

STEPS, STOP_AT = 24, 9
RUNS = [("mlp", "gated_relu", "newton", None),      # damping state
        ("mlp", "relu", "lbfgs", None),             # L-BFGS memory + AL multipliers
        ("cnn", "gated_relu", "adam", 4)]           # moments, plateau, batch order


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def interrupt_at(k):
    def callback(step, trainer):
        if step == k:
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("arch,act,method,batch", RUNS)
def test_interrupt_and_resume_give_the_uninterrupted_result(tmp_path, arch, act, method,
                                                            batch):
    bound = case(arch, act)
    whole = Trainer(bound, method=method, batch_size=batch).fit(STEPS, tol=0, certify=False)
    path = tmp_path / "run.pt"
    first = Trainer(bound, method=method, batch_size=batch, checkpoint=str(path))
    with pytest.raises(TrainingInterrupted, match=f"after step {STOP_AT}; checkpoint saved "
                                                  f"to {path}") as info:
        first.fit(STEPS, tol=0, callback=interrupt_at(STOP_AT), certify=False)
    assert isinstance(info.value, KeyboardInterrupt) and "resume" in info.value.hint
    again = Trainer(bound, method=method, batch_size=batch)
    resumed = again.fit(STEPS, tol=0, resume=str(path), certify=False)
    assert resumed.steps == STEPS
    assert resumed.objective == whole.objective
    assert np.array_equal(resumed.U, whole.U) and np.array_equal(resumed.V, whole.V)
    assert [h[1] for h in resumed.history] == [h[1] for h in whole.history]


def test_periodic_checkpoints_resume_too(tmp_path):
    bound = case("attention", "gated_relu")
    path = tmp_path / "every.pt"
    whole = Trainer(bound, method="precgd", checkpoint=str(path), checkpoint_every=5) \
        .fit(12, tol=0, certify=False)
    assert ckpt.read(path)["run"]["step"] == 10
    resumed = Trainer(bound, method="precgd").fit(12, tol=0, resume=str(path), certify=False)
    assert resumed.objective == whole.objective


def test_resume_refuses_another_configuration(tmp_path):
    bound = case("mlp", "gated_relu")
    path = tmp_path / "a.pt"
    Trainer(bound, method="lbfgs", checkpoint=str(path), checkpoint_every=2).fit(
        2, certify=False)
    with pytest.raises(TrainerError, match="different configuration: method = 'lbfgs' there, "
                                           "'newton' here"):
        Trainer(bound, method="newton").fit(4, resume=str(path))
    with pytest.raises(TrainerError, match="seed = 0 there, 3 here"):
        Trainer(bound, method="lbfgs", seed=3).fit(4, resume=str(path))


def test_resume_refuses_files_that_are_not_checkpoints(tmp_path):
    bound = case("mlp", "linear")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(TrainerError, match="not a readable bmdsl checkpoint"):
        Trainer(bound).fit(3, resume=str(junk))
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(TrainerError, match="not a bmdsl trainer checkpoint"):
        Trainer(bound).fit(3, resume=str(tmp_path / "other.pt"))
    with pytest.raises(TrainerError, match="no checkpoint at"):
        Trainer(bound).fit(3, resume=str(tmp_path / "missing.pt"))


def test_checkpoint_write_errors_are_trainer_errors(tmp_path):
    with pytest.raises(TrainerError, match="cannot write the checkpoint"):
        ckpt.save(tmp_path / "no" / "such" / "dir.pt", {})


def test_progress_line_only_when_asked_or_on_a_terminal(capsys):
    bound = case("mlp", "linear")
    stream = io.StringIO()
    Trainer(bound, progress=stream).fit(5, tol=0, certify=False)
    text = stream.getvalue()
    assert text.startswith("\rstep ") and "objective" in text and "steps/s" in text
    assert text.endswith("\n")
    Trainer(bound, progress=False).fit(5, tol=0, certify=False)
    Trainer(bound).fit(5, tol=0, certify=False)          # stderr is not a TTY under pytest
    assert capsys.readouterr().err == ""


def test_certificate_every_and_early_stop():
    bound = case("mlp", "gated_relu")
    result = Trainer(bound, certificate_every=10).fit(500, cert_tol=1e-6, certify=False)
    assert result.stopped == "certificate"
    steps, gaps = zip(*result.certificates)
    assert all(s % 10 == 0 for s in steps) and gaps[-1] <= 1e-6 < min(gaps[:-1] + (1.0,))
