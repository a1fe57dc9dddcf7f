"""Logging for the command line: the `bmdsl` logger, configured once by `bmdsl.cli.main`.

Library code logs to `logging.getLogger("bmdsl.<module>")` and never prints; a program
that imports bmdsl configures logging as it likes (bmdsl adds only a NullHandler, the
standard practice for libraries). The CLI's levels:

    --quiet     WARNING   warnings and errors only; no progress bar
    (default)   INFO      what each stage is doing
    --verbose   DEBUG     also every certificate and warm-start chunk of training

Messages go to stderr (results go to stdout), through `tqdm.write` so that they do not
tear a progress bar that is being drawn.
"""
from __future__ import annotations

import logging
import sys

LEVELS = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}
LOGGER = "bmdsl"


class _BarSafeHandler(logging.Handler):
    """A handler that prints above an active tqdm bar instead of through it, to `stream`
    or else to whatever sys.stderr is at the time (a test's capture, a redirection)."""

    def __init__(self, stream=None):
        super().__init__()
        self.fixed = stream

    def emit(self, record):
        try:
            from tqdm import tqdm
            tqdm.write(self.format(record), file=sys.stderr if self.fixed is None else self.fixed)
        except Exception:   # noqa: BLE001 - logging must never raise; the standard fallback
            self.handleError(record)


def configure(verbosity: str = "normal", stream=None) -> logging.Logger:
    """Set the `bmdsl` logger's level (a key of LEVELS) and its one handler (to `stream`,
    default stderr); calling it again replaces the handler."""
    logger = reset()
    handler = _BarSafeHandler(stream)
    handler.setFormatter(logging.Formatter("bmdsl: %(levelname)s: %(message)s"
                                           if verbosity == "verbose" else "bmdsl: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(LEVELS[verbosity])
    logger.propagate = False      # the CLI's own output; not doubled by a root handler
    return logger


def reset() -> logging.Logger:
    """Undo `configure`: the `bmdsl` logger as a library leaves it (no handler of ours, no
    level of its own), so `main` run in-process (tests, notebooks) leaves no trace."""
    logger = logging.getLogger(LOGGER)
    for h in [h for h in logger.handlers if isinstance(h, _BarSafeHandler)]:
        logger.removeHandler(h)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    return logger


def verbosity(args) -> str:
    """The level asked for on the command line (--quiet and --verbose exclude each other)."""
    if getattr(args, "quiet", False):
        return "quiet"
    return "verbose" if getattr(args, "verbose", False) else "normal"
