"""`bmdsl check` as a user runs it (subprocess): the summary on success; file:line:col, the
source line and a caret on a mistake, exit 1 and no traceback; every `--help`; and checking
a model imports neither torch nor cvxpy."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
MLP = str(ROOT / "models" / "mlp.bm")


def bmdsl(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bmdsl", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=120)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=120)


def test_check_good_file_prints_the_summary():
    run = bmdsl("check", "models/mlp_builtin.bm")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for expected in ("model mlp  (architecture mlp)", "sizes:",
                     "bound by data: input X axis 1", "(line 4 of architecture mlp)",
                     "units:         m = 5", "(line 4)\n", "W1[d]  (p = d)", "W2[c]  (q = c)",
                     "A[n] = sum_{i} X[n, i] * W1[i]", "gated_relu; patterns: 100 sampled (seed 0)",
                     "loss:          squared", "beta = 0.001, C = l2, R = l2",
                     "convex:        exact"):
        assert expected in out, expected
    assert run.stderr == ""


def test_check_overrides_and_several_files():
    run = bmdsl("check", "models/mlp.bm", "models/cnn.bm", "--activation", "relu",
                "--patterns", "exact", "--m", "7")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("relu; patterns: exact enumeration") == 2
    assert run.stdout.count("m = 7") == 2
    assert "NP-hard for ReLU with q = c > 1" in run.stdout or "exact if q = c" in run.stdout


def test_check_bad_file_shows_where_and_exits_1(tmp_path):
    bad = tmp_path / "bad.bm"
    bad.write_text((ROOT / "models" / "mlp.bm").read_text().replace(
        "X[n, i] * W1[i]", "X[n, i] * W1[i] * W1[i]"))
    run = bmdsl("check", str(bad))
    assert run.returncode == 1 and run.stdout == ""
    lines = run.stderr.splitlines()
    assert lines[0] == (f"{bad}:8:34: not convexifiable: the first layer is not linear in "
                        f"'W1': it appears 2 times in one term")
    assert lines[1] == "  layer   A[n] = X[n, i] * W1[i] * W1[i]"
    assert lines[2] == "  " + " " * 33 + "^^^^^"
    assert lines[3].startswith("  hint: ")
    assert "Traceback" not in run.stderr


def main(capsys, *args: str) -> tuple[int, str, str]:
    """`bmdsl ARGS` in this process (the CLI's own entry point): exit code, stdout, stderr."""
    from bmdsl.cli import main as cli_main
    try:
        code = cli_main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_check_syntax_error_and_unreadable_files(tmp_path, capsys):
    bad = tmp_path / "syntax.bm"
    bad.write_text("model x\ninput X[n, d\n")
    code, out, err = main(capsys, "check", str(bad))
    assert code == 1 and out == ""
    assert err.splitlines()[:3] == [
        f"{bad}:2:12: syntax error: the file ends in the middle of a statement; expected ',' "
        f"or ']'", "  input X[n, d", "  " + " " * 11 + "^"]
    binary = tmp_path / "binary.bm"
    binary.write_bytes(b"model x\xff\xfe\n")
    code, _, err = main(capsys, "check", str(binary))  # the first bad byte, by line and column
    assert code == 1 and err.startswith(f"{binary}:1:8: syntax error: not UTF-8 text"), err
    for path in (tmp_path / "missing.bm", tmp_path):
        code, _, err = main(capsys, "check", str(path))
        assert code == 1 and err.startswith(f"error: cannot read {path}"), err


def test_bad_options_are_user_errors(capsys):
    code, _, err = main(capsys, "check", MLP, "--patterns", "many")
    assert code == 1 and "--patterns must be a positive number or 'exact'" in err
    code, _, err = main(capsys, "check", MLP, "--seed", "-3")
    assert code == 1 and "--seed must be a whole number >= 0" in err
    code, _, err = main(capsys, "check", MLP, "--m", "0")
    assert code == 1 and "--m must be positive" in err
    code, _, err = main(capsys, "check", MLP, "--activation", "tanh")
    assert code == 2 and "invalid choice" in err  # argparse usage error
    code, _, err = main(capsys, "check")
    assert code == 2 and "required: file" in err


def test_help_for_bmdsl_and_every_subcommand():
    run = bmdsl("--help")
    assert run.returncode == 0 and "usage: bmdsl" in run.stdout and "check" in run.stdout
    assert bmdsl().returncode == 2  # no subcommand: the help, as a usage error
    # every registered subcommand (later stages register themselves on import)
    run = python("""
import contextlib, io
from bmdsl.cli import main, _register_backends
from bmdsl.commands.registry import COMMANDS
_register_backends()
for name in sorted(COMMANDS):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([name, "--help"])
        except SystemExit as exc:
            assert exc.code == 0, (name, exc.code)
    assert out.getvalue().startswith(f"usage: bmdsl {name}"), name
    print(name)
""")
    assert run.returncode == 0, run.stderr
    assert "check" in run.stdout.split()


def test_checking_imports_neither_torch_nor_cvxpy():
    run = python("""
import contextlib, io, sys
import bmdsl
model = bmdsl.load("models/cnn.bm")
model.summary()
bmdsl.parse(open("models/selfattention.bm").read()).with_activation("relu").summary()
from bmdsl.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["check", "models/mlp.bm", "models/cnn.bm"]) == 0
print(sorted(m for m in ("torch", "cvxpy") if m in sys.modules))
""")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
