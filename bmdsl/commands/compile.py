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
    methods = {"torch": {"methods": args.methods}, "cvxpy": {}}
    # all emitted before any is written
    sources = [emit(derivation, **methods[suffix]) for suffix, emit in emitters]
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
    p.add_argument("--methods", default="auto", metavar="auto|all|NAME,NAME",
                   help="the BM methods and warm starts the torch trainer carries: auto (the "
                        "ones bmdsl's `auto` takes on moderate data: the first method and the "
                        "first warm start that apply to the model), all (every one that can "
                        "apply), or names, e.g. newton,lbfgs,admm (default: auto)")
    outputs.add_force_option(p)


cmd_compile.configure = _configure
