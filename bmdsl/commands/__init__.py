"""The subcommands, one module each; importing a module registers its command in
registry.COMMANDS (`@command`). Command modules import only the shared helper modules
(registry, options, data_args, outputs, heldout, report, weights, distributed_args), never
each other."""
from importlib import import_module

for _name in ("check", "derive", "compile", "solve", "train", "certify", "run", "predict", "evaluate", "path",
              "layerwise"):
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a stage not built yet; anything else is a bug
        if _exc.name != f"{__name__}.{_name}":
            raise
