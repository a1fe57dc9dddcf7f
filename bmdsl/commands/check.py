"""`bmdsl check FILE...`: parse and check models, print their summaries (docs/cli.md)."""
from __future__ import annotations

from .registry import add_model_options, command, load_model


@command("check", "parse and check a model; print its summary")
def cmd_check(args) -> int:
    for path in args.files:
        args.file = path
        model = load_model(args)
        print(model.summary())
        if len(args.files) > 1:
            print()
    return 0


cmd_check.configure = lambda p: add_model_options(p, files=True)
