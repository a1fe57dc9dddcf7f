"""One error hierarchy for the whole pipeline.

Every error a user can cause is a `BmdslError`: it knows where (file, line, column),
what is wrong, and what is accepted, and renders itself with the source line and a caret,
in the manner of CVXPY's DCP errors and Lark's examples. The CLI prints `render()` and
exits non-zero; no traceback reaches the user for a mistake of theirs.
"""
from __future__ import annotations

from .limits import MAX_MESSAGE
from .source import Source, Span, clip


class BmdslError(Exception):
    """Base class. `kind` names the stage that rejected the input."""

    kind = "error"

    def __init__(self, message: str, *, span: Span | None = None, source: Source | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def with_source(self, source: Source) -> "BmdslError":
        if self.source is None:
            self.source = source
        return self

    def render(self) -> str:
        where = self.source.path if self.source else (self.span.file if self.span else None)
        if where and self.span:
            where += f":{self.span.line}:{self.span.column}"
        # message and hint may quote user text of any length: clipped, so the rendering
        # stays a few lines whatever the input (the caret line is cut by Source.caret)
        message = clip(self.message, MAX_MESSAGE)
        out = [f"{where}: {self.kind}: {message}" if where else f"{self.kind}: {message}"]
        if self.span and self.source:
            out.append(self.source.caret(self.span))
        if self.hint:
            out.append(f"  hint: {clip(self.hint, MAX_MESSAGE)}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


class BmdslSyntaxError(BmdslError):
    """The text does not follow the grammar (grammar/bmdsl.lark)."""

    kind = "syntax error"


class SemanticError(BmdslError):
    """Well-formed text that does not describe a consistent model (names, sizes, indices)."""

    kind = "semantic error"


class NotConvexifiableError(SemanticError):
    """A consistent model outside the two-layer form (Sahiner et al. 2024, sec. 3)."""

    kind = "not convexifiable"


class DataError(BmdslError):
    """Data that does not fit the declared model (shapes, NaN/inf, empty, files)."""

    kind = "data error"


class SolverError(BmdslError):
    """A solve or training run that failed; the message carries the solver's status."""

    kind = "solver error"
