"""Protected checkpoints (bmdsl/trainer/checkpoint.py, resume.py, fitloop.py): a sha256
over every byte, a digest of the model, all data arrays and the patterns, hand edits
refused with a TrainerError, the warm start's record restored, Ctrl-C during the final
certificate saved, and Ctrl-C's file next to the output instead of /tmp."""
import functools
import os
import signal

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.cli import main
from bmdsl.bind.datasets import spiral
from bmdsl.trainer import Trainer, TrainerError, TrainingInterrupted, fitloop
from bmdsl.trainer import checkpoint as ckpt
from model_texts import mlp, regularize

MODEL = mlp("tiny", m=5, activation="gated_relu(patterns = {P}, seed = {seed})", loss="{loss}",
            regularize=regularize("1e-2"))
DATA = spiral(15, 3, seed=1)

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def bound(P=6, seed=0, loss="squared", data=DATA):
    return bmdsl.parse(MODEL.format(P=P, seed=seed, loss=loss)).derive().bind(dict(data))


def stop_at(k):
    def callback(step, trainer):
        if step == k:
            raise KeyboardInterrupt
    return callback


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of 3 lbfgs steps (AL-free gated ReLU: method + run state)."""
    path = tmp_path_factory.mktemp("ck") / "run.pt"
    with pytest.raises(TrainingInterrupted):
        Trainer(bound(), method="lbfgs", checkpoint=str(path)).fit(
            8, tol=0, callback=stop_at(3), certify=False)
    return path


def test_the_file_starts_with_its_sha256(saved):
    raw = saved.read_bytes()
    head, payload = raw.split(b"\n", 1)
    assert head.startswith(b"BMDSL-CHECKPOINT 2 sha256=")
    import hashlib
    assert head.split(b"sha256=")[1].decode() == hashlib.sha256(payload).hexdigest()
    assert ckpt.read(saved)["run"]["step"] == 3


def test_every_flipped_byte_is_refused_at_load_time(saved, tmp_path):
    raw = saved.read_bytes()
    bad = tmp_path / "bad.pt"
    for i in range(0, len(raw), max(1, len(raw) // 400)):      # ~400 positions, all parts
        flipped = bytearray(raw)
        flipped[i] ^= 0x10
        bad.write_bytes(bytes(flipped))
        with pytest.raises(TrainerError, match="corrupt|damaged|not a readable|version"):
            ckpt.read(bad)
    bad.write_bytes(raw[:-100])                                  # a truncated copy
    with pytest.raises(TrainerError, match="is corrupt: the sha256"):
        Trainer(bound(), method="lbfgs").fit(8, resume=str(bad), certify=False)


def reseal(state, path):
    """A hand edit with a valid hash: what checks beyond the sha256 must catch."""
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    path.write_bytes(ckpt.encode(state))
    return str(path)


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.pop("method"), "incomplete checkpoint: no method"),
    (lambda s: s.update(U=s["U"][:, :2]), "holds U of shape"),
    (lambda s: s.update(V="zeros"), "holds V of shape str"),
    (lambda s: s["U"].view(-1).__setitem__(0, float("nan")), "non-finite"),
    (lambda s: s.update(method={"opt": {"state": 1}}), "does not hold a state this trainer"),
    (lambda s: s["run"].pop("history"), "does not hold a state this trainer"),
    (lambda s: s.update(perm=torch.tensor([0, 0, 1])), "not a permutation"),
    (lambda s: s.update(config="x"), "its config is not a table"),
])
def test_hand_edited_checkpoints_are_trainer_errors(saved, tmp_path, edit, message):
    state = ckpt.read(saved)
    edit(state)
    trainer = Trainer(bound(), method="lbfgs")
    U0 = trainer.U.detach().clone()
    with pytest.raises(TrainerError, match=message):
        trainer.fit(8, resume=reseal(state, tmp_path / "edited.pt"), certify=False)
    assert torch.equal(trainer.U.detach(), U0)                 # nothing half-restored


@pytest.mark.parametrize("other,what", [
    (dict(data={**DATA, "X": DATA["X"] * 1.01}), "the data .* differ"),   # same Y
    (dict(seed=3), "the activation patterns .* differ"),
    (dict(loss="huber(delta = 2)"), "the model .* differ"),
])
def test_resume_refuses_other_data_patterns_or_model(saved, other, what):
    with pytest.raises(TrainerError, match="different configuration: .*" + what):
        Trainer(bound(**other), method="lbfgs").fit(8, resume=str(saved), certify=False)


def test_resume_restores_the_warm_start_record_and_certifies_as_well(tmp_path):
    b = bound()
    whole = Trainer(b).fit(12, tol=0)
    assert whole.warm_start is not None and whole.warm_start["method"] == "lifted ADMM"
    path = tmp_path / "warm.pt"
    first = Trainer(b, checkpoint=str(path))
    with pytest.raises(TrainingInterrupted):
        first.fit(12, tol=0, callback=stop_at(2))
    again = Trainer(b)
    resumed = again.fit(12, tol=0, resume=str(path))
    # the lifted ADMM's dual hint, which the certificate tries (on the n = 150 spiral a
    # resume without it certified 1.4e-7 instead of 2.4e-8)
    assert len(again.hints) == 1 and torch.equal(again.hints[0], first.hints[0])
    timeless = lambda ws: ({k: v for k, v in ws.items() if k not in ("seconds", "history")},  # noqa
                           [(h[0], h[1], h[3]) for h in ws["history"]])
    assert timeless(resumed.warm_start) == timeless(whole.warm_start)   # the record kept
    assert resumed.objective == whole.objective
    assert resumed.certificate.gap_bound == whole.certificate.gap_bound


def test_ctrl_c_during_the_final_certificate_saves_the_checkpoint(tmp_path, monkeypatch):
    b = bound()
    whole = Trainer(b, method="newton").fit(6, tol=0)
    real = fitloop.certify_factors

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(fitloop, "certify_factors", interrupted)
    path = tmp_path / "final.pt"
    with pytest.raises(TrainingInterrupted, match="during the final certificate, after step 6; "
                                                  "checkpoint saved"):
        Trainer(b, method="newton", checkpoint=str(path)).fit(6, tol=0)
    monkeypatch.setattr(fitloop, "certify_factors", real)
    resumed = Trainer(b, method="newton").fit(6, tol=0, resume=str(path))
    assert resumed.steps == 6 and resumed.objective == whole.objective
    assert resumed.certificate.gap_bound == whole.certificate.gap_bound


def test_ctrl_c_without_a_path_writes_a_free_name_in_the_current_directory(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-interrupted.pt").write_text("an older file, kept")
    with pytest.raises(TrainingInterrupted, match="saved to tiny-interrupted-2.pt"):
        Trainer(bound(), method="lbfgs").fit(5, callback=stop_at(1), certify=False)
    assert (tmp_path / "tiny-interrupted.pt").read_text() == "an older file, kept"
    assert ckpt.read(tmp_path / "tiny-interrupted-2.pt")["run"]["step"] == 1


def test_cli_ctrl_c_checkpoint_goes_next_to_the_output_and_resumes(tmp_path, monkeypatch,
                                                                   capsys):
    (tmp_path / "tiny.bm").write_text(MODEL.format(P=6, seed=0, loss="squared"))
    np.savez(tmp_path / "data.npz", **DATA)

    def sigint_at_step_2(step, trainer):                     # a real SIGINT, mid-run
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(Trainer, "fit", functools.partialmethod(Trainer.fit,
                                                                callback=sigint_at_step_2))
    argv = ["train", str(tmp_path / "tiny.bm"), "--data", str(tmp_path / "data.npz"),
            "--no-progress", "--method", "lbfgs", "--epochs", "4",
            "--output", str(tmp_path / "out" / "f.npz")]
    (tmp_path / "out").mkdir()
    assert main(argv) == 130
    saved = tmp_path / "out" / "f.interrupted.pt"
    assert f"checkpoint saved to {saved}" in capsys.readouterr().err
    assert not (tmp_path / "out" / "f.npz").exists()
    monkeypatch.undo()
    assert main(argv + ["--resume", str(saved)]) == 0
    assert (tmp_path / "out" / "f.npz").is_file()
