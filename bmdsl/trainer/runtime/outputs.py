"""The output rule of bmdsl's commands (bmdsl/core/outputs.py), for the stand-alone
module: `--output OUT` must not be one of the files named on the command line (the data,
the masks, the weights), nor a symbolic link, and replaces an existing file only with
`--force`. Checked before any work; stdlib only (emit.py pastes it, not in MODULES)."""
import os
import sys


def _output_at(argv):
    """(index of the value of --output, or of its --output=VALUE token; None) in argv;
    argparse's abbreviations (--out, --o, ...) count too."""
    for i, token in enumerate(argv):
        name, eq, _ = token.partition("=")
        if len(name) >= 3 and "--output".startswith(name):
            if eq:
                return i, True
            return (i + 1, False) if i + 1 < len(argv) else (None, False)
    return None, False


def refuse_unsafe_output(argv):
    """argv without --force, after checking its --output; SystemExit(1) with a message
    when the output would destroy an input, follow a link or replace a file."""
    force = "--force" in argv
    argv = [a for a in argv if a != "--force"]
    at, inline = _output_at(argv)
    if at is None:
        return argv
    out = argv[at].partition("=")[2] if inline else argv[at]
    target = out if out.endswith(".npz") else out + ".npz"      # what numpy.savez writes
    inputs = [a for k, a in enumerate(argv) if k != at and os.path.isfile(a)]

    def refuse(why, hint):
        print(f"error: --output {out}: {why}\n  hint: {hint}", file=sys.stderr)
        raise SystemExit(1)
    if os.path.islink(target):
        refuse(f"{target} is a symbolic link; outputs are never written through links",
               "remove the link or choose another output path")
    if os.path.isdir(target):
        refuse(f"{target} is a directory", "choose a file name for the output")
    if os.path.exists(target):
        st = os.stat(target)
        for a in inputs:
            sa = os.stat(a)
            if (sa.st_dev, sa.st_ino) == (st.st_dev, st.st_ino):
                refuse(f"{target} is an input ({a}); writing it would destroy the input",
                       "choose another output path (--force never allows this)")
        if not force:
            refuse(f"{target} already exists", "pass --force to replace it")
    return argv
