"""Outputs never destroy inputs (bmdsl/core/outputs.py): no writing through symbolic
links, no output that is an input, no replaced file without --force, atomic writes; and
the commands check their outputs before any work."""
import os

import numpy as np
import pytest

from bmdsl.cli import main
from bmdsl.core import outputs
from bmdsl.core.outputs import OutputError, check_outputs, write_atomic
from bmdsl.bind.datasets import spiral
from model_texts import TINY

MODEL = TINY


@pytest.fixture
def files(tmp_path):
    (tmp_path / "tiny.bm").write_text(MODEL)
    np.savez(tmp_path / "data.npz", **spiral(15, 3, seed=1))
    return tmp_path


def snapshot(directory):
    """Every file's bytes (links as their target), to show that nothing changed."""
    return {p.name: (os.readlink(p) if p.is_symlink() else p.read_bytes())
            for p in sorted(directory.iterdir()) if not p.is_dir()}


# -- the module ---------------------------------------------------------------------------
def test_a_symbolic_link_is_refused_even_with_force(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.py").symlink_to(victim)
    for force in (False, True):
        with pytest.raises(OutputError, match="is a symbolic link .* does not write through"):
            check_outputs([tmp_path / "out.py"], [], force)
    assert victim.read_text() == "keep me"


def test_an_input_is_refused_even_with_force_also_under_another_name(tmp_path):
    data = tmp_path / "d.npz"
    data.write_bytes(b"data")
    os.link(data, tmp_path / "hard.npz")
    with pytest.raises(OutputError, match="d.npz is an input of this command; writing it "
                                          "would destroy the input"):
        check_outputs([data], [str(data)], force=True)
    with pytest.raises(OutputError, match=r"hard.npz is an input .*\(the same file as "):
        check_outputs([tmp_path / "hard.npz"], [str(data)], force=True)
    assert data.read_bytes() == b"data"


def test_existing_files_need_force_directories_never(tmp_path):
    (tmp_path / "old.npz").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists") as info:
        check_outputs([tmp_path / "old.npz"], [], force=False)
    assert "--force" in info.value.hint
    assert check_outputs([tmp_path / "old.npz"], [], force=True) == [tmp_path / "old.npz"]
    with pytest.raises(OutputError, match="is a directory"):
        check_outputs([tmp_path], [], force=True)
    with pytest.raises(OutputError, match="named for two outputs"):
        check_outputs([tmp_path / "a.npz", tmp_path / "." / "a.npz"], [], force=True)


def test_missing_directories_are_refused_unless_the_command_makes_them(tmp_path):
    deep = tmp_path / "no" / "such" / "x.npz"
    with pytest.raises(OutputError, match="does not exist"):
        check_outputs([deep], [])
    assert check_outputs([deep], [], make_dirs=True) == [deep]
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a directory"):
        check_outputs([tmp_path / "file" / "x.npz"], [], make_dirs=True)


def test_write_atomic_replaces_a_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    outputs.write_text_atomic(link, "new")
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        assert tmp.endswith(".npz") and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OutputError, match="cannot write .*No space left"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["out.npz"]
    write_atomic(target, lambda tmp: np.savez(tmp, a=np.arange(3)))
    with np.load(target) as f:
        assert f["a"].tolist() == [0, 1, 2]
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


# -- the commands ----------------------------------------------------------------------------
def test_compile_does_not_write_through_a_link_nor_replace_without_force(files, capsys):
    out = files / "out"
    out.mkdir()
    victim = files / "victim.txt"
    victim.write_text("keep me")
    (out / "tiny_torch.py").symlink_to(victim)
    assert main(["compile", str(files / "tiny.bm"), "-o", str(out), "--force"]) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "keep me" and not (out / "tiny_cvxpy.py").exists()
    new = files / "new" / "dir"                     # created by compile
    assert main(["compile", str(files / "tiny.bm"), "-o", str(new)]) == 0
    first = (new / "tiny_cvxpy.py").read_text()
    (new / "tiny_cvxpy.py").write_text("# mine")
    assert main(["compile", str(files / "tiny.bm"), "-o", str(new)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (new / "tiny_cvxpy.py").read_text() == "# mine"
    assert main(["compile", str(files / "tiny.bm"), "-o", str(new), "--force"]) == 0
    assert (new / "tiny_cvxpy.py").read_text() == first


@pytest.mark.parametrize("argv", [
    ["solve", "{m}", "--data", "{d}", "-o", "{d}", "--force"],
    ["solve", "{m}", "--data", "X={d}", "--data", "Y={d}", "-o", "{stem}"],   # + .npz
    ["train", "{m}", "--data", "{d}", "--output", "{d}", "--force"],
    ["train", "{m}", "--data", "{d}", "--checkpoint", "{d}"],
    ["train", "{m}", "--data", "{d}", "--output", "{dir}/x.npz", "--checkpoint", "{m}",
     "--force"],
])
def test_solve_and_train_refuse_to_overwrite_their_inputs_before_any_work(files, capsys,
                                                                           argv):
    before = snapshot(files)
    values = {"m": files / "tiny.bm", "d": files / "data.npz", "stem": files / "data",
              "dir": files}
    code = main([a.format(**values) for a in argv])
    err = capsys.readouterr()
    assert code == 1 and "is an input of this command" in err.err
    assert "model tiny" not in err.out            # refused before the model was bound
    assert snapshot(files) == before


def test_train_refuses_to_checkpoint_over_the_checkpoint_it_resumes(files, capsys):
    ck = files / "run.pt"
    assert main(["train", str(files / "tiny.bm"), "--data", str(files / "data.npz"),
                 "--no-progress", "--no-warm-start", "--epochs", "2", "--checkpoint", str(ck),
                 "--checkpoint-every", "1", "--output", str(files / "a.npz")]) == 0
    saved = ck.read_bytes()
    assert main(["train", str(files / "tiny.bm"), "--data", str(files / "data.npz"),
                 "--resume", str(ck), "--checkpoint", str(ck), "--output",
                 str(files / "b.npz"), "--force"]) == 1
    assert "run.pt is an input of this command" in capsys.readouterr().err
    assert ck.read_bytes() == saved and not (files / "b.npz").exists()


def test_run_refuses_an_existing_record_without_force(files, capsys):
    out = files / "runs"
    out.mkdir()
    (out / "tiny_run.json").write_text("{}")
    assert main(["run", str(files / "tiny.bm"), "--data", str(files / "data.npz"),
                 "--output", str(out), "--no-plot"]) == 1
    captured = capsys.readouterr()
    assert "tiny_run.json already exists" in captured.err and "[1/3]" not in captured.out
    assert (out / "tiny_run.json").read_text() == "{}"


def test_the_emitted_trainer_keeps_the_output_rule(files, monkeypatch, capsys):
    """`python tiny_torch.py DATA --output OUT`: the same refusals, before any work (run
    in this process as __main__, which is what `python tiny_torch.py` does)."""
    import runpy
    import sys

    import bmdsl
    from bmdsl.trainer import emit_torch
    module = files / "tiny_torch.py"
    module.write_text(emit_torch(bmdsl.load(str(files / "tiny.bm")).derive()))
    (files / "victim.txt").write_text("keep me")
    (files / "link.npz").symlink_to(files / "victim.txt")
    (files / "old.npz").write_bytes(b"old")

    def emitted(*args):
        monkeypatch.setattr(sys, "argv", [str(module), str(files / "data.npz"), "--device",
                                          "cpu", "--steps", "2", *args])
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(module), run_name="__main__")
        return info.value.code, capsys.readouterr()
    before = snapshot(files)
    for args, message in [(["--output", str(files / "data.npz"), "--force"], "is an input"),
                          (["--out", str(files / "data")], "is an input"),       # + .npz
                          (["--output", str(files / "link.npz"), "--force"], "symbolic link"),
                          (["--output=" + str(files / "old.npz")], "already exists")]:
        code, out = emitted(*args)
        assert code == 1 and message in out.err and "objective" not in out.out
    assert snapshot(files) == before
    code, out = emitted("--output", str(files / "old.npz"), "--force")
    assert code == 0 and "objective" in out.out
    with np.load(files / "old.npz") as f:
        assert f["U"].shape[1:] == (5, 2)


def test_predict_output_never_replaces_an_input_and_needs_force(tmp_path, capsys):
    import numpy as np

    from bmdsl.cli import main
    from bmdsl.bind.datasets import save_data
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    save_data(data, {"X": rng.normal(size=(20, 2)), "Y": rng.normal(size=(20, 3))})
    weights = tmp_path / "w.npz"
    assert main(["train", "models/mlp.bm", "--patterns", "4", "--data", str(data),
                 "--output", str(weights), "--epochs", "5", "--no-progress"]) in (0, 3)
    before = data.read_bytes()
    assert main(["predict", "models/mlp.bm", "--weights", str(weights), "--data", str(data),
                 "-o", str(data), "--force"]) == 1
    assert data.read_bytes() == before and "input" in capsys.readouterr().err
    out = tmp_path / "p.csv"
    args = ["predict", "models/mlp.bm", "--weights", str(weights), "--data", str(data),
            "-o", str(out)]
    assert main(args) == 0 and out.read_text().startswith("Yhat")
    assert main(args) == 1 and "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
