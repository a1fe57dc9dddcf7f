"""Source text and spans: every AST node remembers where it came from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns count from 1."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def of(meta_or_token) -> "Span":
        """Span of a Lark token or tree meta (both carry line/column)."""
        m = meta_or_token
        return Span(m.line, m.column, getattr(m, "end_line", m.line) or m.line,
                    getattr(m, "end_column", m.column + 1) or m.column + 1)

    def join(self, other: "Span") -> "Span":
        return Span(self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True)
class Source:
    """The text of a model and the name it is reported under (a path or '<string>')."""

    text: str
    path: str = "<string>"

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def caret(self, span: Span) -> str:
        """The source line with a caret run under the span (first line only)."""
        text = self.line_text(span.line).expandtabs(1)
        width = (span.end_column - span.column) if span.end_line == span.line else len(text) - span.column + 1
        width = max(1, width)
        return f"  {text}\n  {' ' * (span.column - 1)}{'^' * width}"
