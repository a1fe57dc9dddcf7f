"""The command line: `bmdsl check|derive|compile|solve|train|certify|run FILE`.

Every user mistake becomes a `BmdslError`, printed with file, line, column and a caret;
the exit code is 1 for a rejected model or data, 2 for bad command-line usage.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__, load
from .errors import BmdslError

COMMANDS = {}


def command(name: str, help: str):
    """Register a subcommand: `fn(args)` plus `fn.configure(parser)` for its options."""
    def wrap(fn):
        COMMANDS[name] = (fn, help)
        return fn
    return wrap


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .bm model file")
    p.add_argument("--activation", choices=["linear", "gated_relu", "relu"],
                   help="override the model's activation")
    p.add_argument("--patterns", help="override the pattern count (a number or 'exact')")
    p.add_argument("--seed", type=int, help="override the pattern seed")
    p.add_argument("--m", type=int, help="override the number of units")


def load_model(args):
    try:
        model = load(args.file)
    except UnicodeDecodeError as exc:  # bmdsl.load lets it through: a binary or non-UTF-8 file
        raise BmdslError(f"cannot read {args.file}: not UTF-8 text (byte {exc.start})",
                         hint="a model file is plain text") from None
    if getattr(args, "seed", None) is not None and args.seed < 0:
        raise BmdslError(f"--seed must be a whole number >= 0, not {args.seed}")
    if getattr(args, "activation", None) or getattr(args, "patterns", None) or \
            getattr(args, "seed", None) is not None:
        patterns = args.patterns
        if patterns is not None and patterns != "exact":
            if not patterns.isdigit() or int(patterns) <= 0:
                raise BmdslError(f"--patterns must be a positive number or 'exact', not "
                                 f"{patterns!r}")
            patterns = int(patterns)
        model = model.with_activation(args.activation or model.activation.name, patterns, args.seed)
    if getattr(args, "m", None) is not None:
        if args.m <= 0:
            raise BmdslError("--m must be positive")
        model = model.with_units(args.m)
    return model


@command("check", "parse and check a model; print its summary")
def cmd_check(args) -> int:
    for path in args.files:
        args.file = path
        model = load_model(args)
        print(model.summary())
        if len(args.files) > 1:
            print()
    return 0


def _configure_check(p):
    p.add_argument("files", nargs="+", metavar="file", help=".bm model file(s)")
    p.add_argument("--activation", choices=["linear", "gated_relu", "relu"],
                   help="override the model's activation")
    p.add_argument("--patterns", help="override the pattern count (a number or 'exact')")
    p.add_argument("--seed", type=int, help="override the pattern seed")
    p.add_argument("--m", type=int, help="override the number of units")


cmd_check.configure = _configure_check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bmdsl", description="Derive convex programs and Burer-Monteiro trainers for "
        "two-layer networks from a short declaration.")
    parser.add_argument("--version", action="version", version=f"bmdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, help) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        getattr(fn, "configure", add_model_options)(p)
        p.set_defaults(run=fn)
    return parser


def main(argv=None) -> int:
    _register_backends()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except BmdslError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bmdsl check ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


def _register_backends() -> None:
    """Subcommands of later stages live beside their stage; importing registers them."""
    import importlib
    importlib.import_module("bmdsl.commands")
