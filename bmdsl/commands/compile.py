"""`bmdsl compile FILE [-o DIR]`: emit the stand-alone CVXPY module and torch trainer.

Both are generated from the derivation's tensor networks, so they cannot disagree with
each other or with `bmdsl solve` / `bmdsl train`. The files need only numpy + cvxpy
(resp. numpy + torch) to run: `python DIR/<model>_cvxpy.py data.npz`.
"""
from __future__ import annotations

from pathlib import Path

from ..cli import add_model_options, command, load_model
from ..errors import BmdslError


@command("compile", "derive a model and write its stand-alone CVXPY module and torch trainer")
def cmd_compile(args) -> int:
    from ..cvx import emit_cvxpy
    from ..trainer import emit_torch

    model = load_model(args)
    derivation = model.derive()
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BmdslError(f"cannot create output directory {out}: {exc.strerror}") from None
    for suffix, emit in (("cvxpy", emit_cvxpy), ("torch", emit_torch)):
        path = out / f"{model.name}_{suffix}.py"
        path.write_text(emit(derivation))
        print(f"wrote {path}")
    print(f"run them with: python {out / (model.name + '_cvxpy.py')} DATA.npz   "
          f"(arrays named {', '.join(t.name for t in (*model.inputs, model.target))})")
    return 0


def _configure(p) -> None:
    add_model_options(p)
    p.add_argument("-o", "--output", default=".", help="output directory (default: .)")


cmd_compile.configure = _configure
