"""The output rule of bmdsl's commands (bmdsl/core/outputs.py), for the stand-alone
module: `--output OUT` must not be one of the files named on the command line (the data,
the masks, the weights), nor a symbolic link, and replaces an existing file only with
`--force`. Checked before any work; stdlib only (emit.py pastes it, not in MODULES)."""
import os
import sys


def refuse_unsafe_output(argv):
    """argv without --force, after checking its --output (or argparse's abbreviations,
    --out, --o=...); SystemExit(1) with a message when the output would destroy an input,
    follow a link or replace a file."""
    force, argv = "--force" in argv, [a for a in argv if a != "--force"]
    at = next((i for i, a in enumerate(argv) if len(a.partition("=")[0]) >= 3 and
               "--output".startswith(a.partition("=")[0])), None)
    value = at if at is None or "=" in argv[at] else at + 1     # --output=OUT or --output OUT
    if value is None or value == len(argv):
        return argv
    out = argv[value].partition("=")[2] if value == at else argv[value]
    target = out if out.endswith(".npz") else out + ".npz"      # what numpy.savez writes
    exists = os.path.exists(target)
    clash = next((a for k, a in enumerate(argv) if k != value and os.path.isfile(a) and exists
                  and os.path.samefile(a, target)), None)
    for refused, why, hint in (
            (os.path.islink(target), f"{target} is a symbolic link; outputs are never "
             "written through links", "remove the link or choose another output path"),
            (os.path.isdir(target), f"{target} is a directory", "choose a file name for the "
             "output"),
            (clash, f"{target} is an input ({clash}); writing it would destroy the input",
             "choose another output path (--force never allows this)"),
            (exists and not force, f"{target} already exists", "pass --force to replace it")):
        if refused:
            print(f"error: --output {out}: {why}\n  hint: {hint}", file=sys.stderr)
            raise SystemExit(1)
    return argv
