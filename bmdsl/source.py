"""Source text and spans: every AST node remembers where it came from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns count from 1. `file` is the name of the
    source the span points into (a path, '<string>' or '<architecture mlp>'), so a statement
    spliced in from a built-in architecture can say where it came from."""

    line: int
    column: int
    end_line: int
    end_column: int
    file: str | None = None

    def where(self, home: str | None = None) -> str:
        """'line 4', or 'line 4 of architecture mlp' when the span is not in `home`."""
        if self.file is None or self.file == home:
            return f"line {self.line}"
        return f"line {self.line} of {self.file.strip('<>')}"

    @staticmethod
    def of(meta_or_token) -> "Span":
        """Span of a Lark token or tree meta (both carry line/column)."""
        m = meta_or_token
        return Span(m.line, m.column, getattr(m, "end_line", m.line) or m.line,
                    getattr(m, "end_column", m.column + 1) or m.column + 1)

    def join(self, other: "Span") -> "Span":
        return Span(self.line, self.column, other.end_line, other.end_column, self.file)


@dataclass(frozen=True)
class Source:
    """The text of a model and the name it is reported under (a path or '<string>')."""

    text: str
    path: str = "<string>"

    def line_text(self, line: int) -> str:
        # Lark counts lines by '\n' only; str.splitlines would also split at '\f', '\x1c',
        # '\u2028', ... and point the caret at the wrong line.
        lines = self.text.split("\n")
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""

    def caret(self, span: Span) -> str:
        """The source line with a caret run under the span (first line only). Tabs and
        control characters show as one space each, so the caret stays under its column."""
        text = "".join(" " if (c < " " or c == "\x7f") else c for c in self.line_text(span.line))
        if span.end_line == span.line:
            width = span.end_column - span.column
        else:
            width = len(text) - span.column + 1
        return f"  {text}\n  {' ' * (span.column - 1)}{'^' * max(1, width)}"
