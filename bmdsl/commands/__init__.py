"""Subcommands beyond `check`, one module per pipeline stage (derive, cvxpy, train,
certify, run). Each module registers itself with `bmdsl.cli.command` on import."""
from importlib import import_module

for _name in ("derive", "compile", "solve", "train", "certify", "run", "predict", "evaluate", "path",
              "layerwise"):
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a stage not built yet; anything else is a bug
        if _exc.name != f"{__name__}.{_name}":
            raise
