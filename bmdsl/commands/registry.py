"""The subcommand table: `@command(name, help)` registers `fn(args)` (and `fn.configure(p)`
for its options); `add_model_options` and `load_model` are the model options every
command that reads a .bm file shares (--activation, --patterns, --seed, --m)."""
from __future__ import annotations

import argparse

from ..atoms.activations import ACTIVATIONS
from ..core.errors import BmdslError
from ..core.limits import RANGES
from ..check.loading import load
from ..core.source import clip

COMMANDS = {}


def command(name: str, help: str):
    """Register a subcommand: `fn(args)` plus `fn.configure(parser)` for its options."""
    def wrap(fn):
        COMMANDS[name] = (fn, help)
        return fn
    return wrap


def add_model_options(p: argparse.ArgumentParser, *, files: bool = False) -> None:
    """The model file (several with `files=True`) and the overrides of its declaration."""
    if files:
        p.add_argument("files", nargs="+", metavar="file", help=".bm model file(s)")
    else:
        p.add_argument("file", help="a .bm model file")
    p.add_argument("--activation", choices=list(ACTIVATIONS),
                   help="override the model's activation")
    p.add_argument("--patterns", help="override the pattern count (a number or 'exact')")
    p.add_argument("--seed", type=int, help="override the pattern seed")
    p.add_argument("--m", type=int, help="override the number of units")


def load_model(args):
    model = load(args.file)  # a file too large or not UTF-8 is a BmdslError with its line
    if getattr(args, "seed", None) is not None and args.seed not in RANGES["seed"]:
        raise BmdslError(f"--seed must be a whole number >= 0 ({RANGES['seed'].words('seed')}), "
                         f"not {args.seed}")
    if getattr(args, "activation", None) or getattr(args, "patterns", None) or \
            getattr(args, "seed", None) is not None:
        patterns = args.patterns
        if patterns is not None and patterns != "exact":
            if not (patterns.isascii() and patterns.isdigit() and len(patterns) <= 18) or \
                    int(patterns) not in RANGES["patterns"]:
                raise BmdslError(f"--patterns must be a positive number or 'exact' "
                                 f"({RANGES['patterns'].words('patterns')}), not "
                                 f"{clip(patterns)!r}")
            patterns = int(patterns)
        model = model.with_activation(args.activation or model.activation.name, patterns, args.seed)
    if getattr(args, "m", None) is not None:
        if args.m not in RANGES["units"]:
            raise BmdslError(f"--m must be positive ({RANGES['units'].words('m')}), not {args.m}")
        model = model.with_units(args.m)
    return model
