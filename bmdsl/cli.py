"""The command line: `bmdsl check|derive|compile|solve|train|certify|run FILE`.

Every user mistake becomes a `BmdslError`, printed with file, line, column and a caret;
the exit code is 1 for a rejected model, data or option, 2 for bad command-line usage,
3 when a solver or trainer ran but produced no solution (SolverError), 130 for Ctrl-C.
"""
from __future__ import annotations

import argparse
import sys

from .core.version import __version__
from .core.errors import BmdslError, SolverError
from .commands.registry import COMMANDS, add_model_options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bmdsl", description="Derive convex programs and Burer-Monteiro trainers for "
        "two-layer networks from a short declaration.")
    parser.add_argument("--version", action="version", version=f"bmdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, help) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        getattr(fn, "configure", add_model_options)(p)
        add_verbosity_options(p)
        p.set_defaults(run=fn)
    return parser


def add_verbosity_options(p: argparse.ArgumentParser) -> None:
    """--quiet / --verbose on every command: the level of the `bmdsl` logger (logs.py).
    A command that defines its own --verbose (solve: the solver's log) keeps it; it raises
    the logger's level as well."""
    taken = p._option_string_actions     # argparse's own table of the options defined
    if "--quiet" not in taken:
        p.add_argument("-q", "--quiet", action="store_true",
                       help="only warnings and errors on stderr; no progress bar")
    if "--verbose" not in taken:
        p.add_argument("-v", "--verbose", action="store_true",
                       help="more detail on stderr (e.g. every certificate during training)")


def main(argv=None) -> int:
    """The CLI. Its last line of defence: an exception that is no `BmdslError` is a bug of
    bmdsl's, reported in two lines with exit code 70 (EX_SOFTWARE), its traceback only when
    BMDSL_DEBUG=1; Ctrl-C (130) and a closed pipe keep their own handling."""
    try:
        return _main(argv)
    except Exception as exc:  # noqa: BLE001 - whatever it is, no traceback for a user
        return internal_error(exc)


INTERNAL_ERROR = 70


def internal_error(exc: BaseException) -> int:
    import os
    import traceback
    from .core.source import clip
    if os.environ.get("BMDSL_DEBUG") == "1":
        traceback.print_exception(exc, file=sys.stderr)
    try:
        what = clip(f"{type(exc).__name__}: {exc}", 300)
    except Exception:  # noqa: BLE001 - an exception whose str() fails
        what = type(exc).__name__
    try:
        print(f"bmdsl: internal error: {what}\n  this is a bug in bmdsl, not a mistake in your "
              f"input: please report it with the command that caused it (BMDSL_DEBUG=1 shows "
              f"the traceback)", file=sys.stderr)
    except (OSError, ValueError):  # stderr closed or gone: the exit code still says it
        pass
    return INTERNAL_ERROR


def _main(argv=None) -> int:
    _register_backends()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from .core.logs import configure, reset as reset_logging, verbosity
    if getattr(args, "quiet", False) and getattr(args, "verbose", False):
        parser.error("--quiet and --verbose exclude each other")
    configure(verbosity(args))
    try:
        return args.run(args)
    except BmdslError as exc:
        print(exc.render(), file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bmdsl check ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    finally:
        reset_logging()          # main() run in-process leaves the bmdsl logger as it was


# Exit codes (docs/cli.md): the first class an error is an instance of decides. 3: the
# solver or trainer ran but produced no solution; 130: interrupted (TrainingInterrupted is
# both a SolverError and a KeyboardInterrupt); 1: any other mistake of the user's.
EXIT_CODES = ((KeyboardInterrupt, 130), (SolverError, 3), (BmdslError, 1))


def exit_code(exc: BaseException) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


def _register_backends() -> None:
    """Subcommands of later stages live beside their stage; importing registers them."""
    import importlib
    importlib.import_module("bmdsl.commands")
