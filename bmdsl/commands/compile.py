"""`bmdsl compile FILE [-o DIR]`: emit the stand-alone CVXPY module and torch trainer.

Both are generated from the derivation's tensor networks, so they cannot disagree with
each other or with `bmdsl solve` / `bmdsl train`. The files need only numpy + cvxpy
(resp. numpy + torch) to run: `python DIR/<model>_cvxpy.py data.npz`.
"""
from __future__ import annotations

from pathlib import Path

from .registry import add_model_options, command, load_model
from ..core import outputs


@command("compile", "derive a model and write its stand-alone CVXPY module and torch trainer")
def cmd_compile(args) -> int:
    from ..cvx import emit_cvxpy
    from ..trainer import emit_torch

    model = load_model(args)
    out = Path(args.output)
    emitters = (("cvxpy", emit_cvxpy), ("torch", emit_torch))
    # before any work: never a link, an input or (without --force) an existing file
    paths = outputs.check_outputs([out / f"{model.name}_{suffix}.py" for suffix, _ in emitters],
                                  outputs.command_inputs(args), args.force, make_dirs=True)
    derivation = model.derive()
    sources = [emit(derivation) for _, emit in emitters]   # all emitted before any is written
    outputs.make_directory(out)
    for path, source in zip(paths, sources):
        outputs.write_text_atomic(path, source)
        print(f"wrote {path}")
    print(f"run them with: python {out / (model.name + '_cvxpy.py')} DATA.npz   "
          f"(arrays named {', '.join(t.name for t in (*model.inputs, model.target))})")
    return 0


def _configure(p) -> None:
    add_model_options(p)
    p.add_argument("-o", "--output", default=".", help="output directory (default: .)")
    outputs.add_force_option(p)


cmd_compile.configure = _configure
