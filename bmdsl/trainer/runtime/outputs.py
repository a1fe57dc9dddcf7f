"""The output rule of bmdsl's commands (bmdsl/core/outputs.py), for the stand-alone
module: `--output OUT` must not be one of the files named on the command line (the data,
the masks, the weights), nor a symbolic link, and replaces an existing file only with
`--force`. Checked before any work; stdlib only (emit.py pastes it, not in MODULES)."""
import os
import sys


def refuse_unsafe_output(out, inputs, force):
    """SystemExit(1) with a message when writing `out` (numpy.savez adds .npz) would
    destroy one of `inputs`, follow a link or, without `force`, replace a file."""
    target = out if out.endswith(".npz") else out + ".npz"      # what numpy.savez writes
    exists = os.path.exists(target)
    clash = next((a for a in inputs if isinstance(a, str) and exists and os.path.isfile(a)
                  and os.path.samefile(a, target)), None)
    for refused, why, hint in (
            (os.path.islink(target), f"{target} is a symbolic link; outputs are never "
             "written through links", "remove the link or choose another output path"),
            (os.path.isdir(out) or os.path.isdir(target), f"{out} is a directory", "choose "
             "a file name for the output"),     # (savez would write OUT.npz beside it)
            (clash, f"{target} is an input ({clash}); writing it would destroy the input",
             "choose another output path (--force never allows this)"),
            (exists and not force, f"{target} already exists", "pass --force to replace it")):
        if refused:
            print(f"error: --output {out}: {why}\n  hint: {hint}", file=sys.stderr)
            raise SystemExit(1)
