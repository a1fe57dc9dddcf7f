"""The training progress bar (tqdm) and the `bmdsl` logger behind --quiet / --verbose.

The bar: steps, rate, ETA, objective and gap bound; on a terminal by default, never
otherwise unless asked. The logger: configured by the CLI only; library code logs and
never prints."""
from __future__ import annotations

import io
import logging

import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from bmdsl.core import logs
from bmdsl.cli import main
from bmdsl.trainer import Trainer, emit_torch
from bmdsl.trainer.progress import Progress

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


@pytest.fixture(scope="module")
def bound():
    return bmdsl.load("models/mlp.bm").derive().bind(datasets.spiral(n=20, seed=0))


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, **datasets.spiral(n=20, seed=0))
    return str(path)


def test_the_bar_shows_rate_eta_objective_and_gap_bound(bound):
    stream = io.StringIO()
    Trainer(bound, progress=stream, warm_start=False, certificate_every=5,
            method="adam").fit(20, tol=0, certify=False)
    text = stream.getvalue()
    last = text.rstrip("\n").split("\r")[-1]          # the bar as it was left
    assert last.startswith("step 20/20 ") and "steps/s" in last
    assert "<00:00" in last                           # elapsed<remaining: the ETA
    assert "objective " in last and "gap <= " in last
    assert text.endswith("\n")


def test_the_warm_start_is_shown_as_such(bound):
    stream = io.StringIO()
    Trainer(bound, progress=stream, certificate_every=5).fit(10, certify=False)
    assert "warm start: objective" in stream.getvalue()


def test_no_bar_off_a_terminal_unless_asked(bound, capsys):
    Trainer(bound, progress=False, warm_start=False).fit(3, tol=0, certify=False)
    Trainer(bound, warm_start=False).fit(3, tol=0, certify=False)   # pytest: not a TTY
    assert capsys.readouterr() == ("", "")
    Trainer(bound, progress=True, warm_start=False).fit(3, tol=0, certify=False)
    out, err = capsys.readouterr()
    assert out == "" and err.rstrip().split("\r")[-1].startswith("step 3/3")


def test_progress_logs_each_new_certificate_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="bmdsl")
    p = Progress(False, 10)
    p.update(0, 3.0, 0.5, force=True)
    for step in (1, 2, 3):
        p.update(step, 2.0, 0.5 if step < 3 else 0.25)
    p.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "bmdsl.trainer"]
    assert messages == ["warm start: objective 3, duality-gap bound 5.000e-01",
                        "step 3: objective 2, duality-gap bound 2.500e-01"]


def test_verbose_train_logs_certificates_and_quiet_silences_stderr(data, tmp_path, capsys):
    args = ["train", "models/mlp.bm", "--data", data, "--certificate-every", "5",
            "--epochs", "10", "--method", "adam", "--output"]
    assert main(args + [str(tmp_path / "a.npz"), "--verbose"]) == 0
    out, err = capsys.readouterr()
    assert "objective:" in out                       # the result stays on stdout
    assert "bmdsl: DEBUG: step 5: objective" in err and "duality-gap bound" in err
    assert main(args + [str(tmp_path / "b.npz"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "objective:" in out and err == ""


def test_quiet_hides_info_and_default_shows_it(capsys):
    assert main(["check", "relu"]) == 0               # a shipped model, named: logged
    assert "bmdsl: relu: the shipped example model" in capsys.readouterr().err
    assert main(["check", "-q", "relu"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("model relu") and err == ""


@pytest.mark.parametrize("command", ["check", "derive", "compile", "solve", "train",
                                     "certify", "run"])
def test_every_command_takes_quiet_and_verbose(command, capsys):
    for flag in ("--quiet", "--verbose"):
        with pytest.raises(SystemExit) as exit_:
            main([command, flag, "--help"])
        assert exit_.value.code == 0
        assert "--quiet" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:         # both at once: a usage error
        main([command, "models/mlp.bm", "-q", "--verbose"])
    assert exit_.value.code == 2


def test_configure_replaces_its_handler_and_keeps_to_the_bmdsl_logger():
    stream = io.StringIO()
    for _ in range(3):                               # main() runs many times in one process
        logger = logs.configure("verbose", stream)
    assert len([h for h in logger.handlers if isinstance(h, logs._BarSafeHandler)]) == 1
    logging.getLogger("bmdsl.x").debug("one %s", "line")
    logging.getLogger("other").warning("not ours")
    assert stream.getvalue() == "bmdsl: DEBUG: one line\n"
    logs.configure("quiet", stream)
    logging.getLogger("bmdsl.x").info("hidden")
    assert stream.getvalue() == "bmdsl: DEBUG: one line\n"


def test_main_leaves_the_logger_as_it_found_it(capsys):
    assert main(["check", "--verbose", "relu"]) == 0
    logger = logging.getLogger("bmdsl")
    assert logger.level == logging.NOTSET and logger.propagate
    assert not [h for h in logger.handlers if isinstance(h, logs._BarSafeHandler)]
    capsys.readouterr()
    bmdsl.load("relu")                               # a library call after main: silent
    assert capsys.readouterr().err == ""


def test_the_emitted_trainer_needs_no_tqdm(bound):
    source = emit_torch(bound.derivation)
    assert "tqdm" not in source and "logging" not in source
