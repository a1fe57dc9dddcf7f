"""Source text and spans: every AST node remembers where it came from."""
from __future__ import annotations

from dataclasses import dataclass

from .limits import MAX_EXCERPT


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
        control characters show as one space each, so the caret stays under its column.
        A long line is cut to `limits.MAX_EXCERPT` characters around the column."""
        line = self.line_text(span.line)
        if span.end_line == span.line:
            width = span.end_column - span.column
        else:
            width = len(line) - span.column + 1
        start, text = excerpt(line, span.column - 1)
        text = text.translate(_SHOWN)  # one character for one: the caret keeps its column
        width = max(1, min(width, len(text) - (span.column - 1 - start)))
        return f"  {text}\n  {' ' * (span.column - 1 - start)}{'^' * width}"


ELLIPSIS = "..."
# Lone surrogates (text decoded with errors="surrogateescape") cannot be printed to a UTF-8
# terminal: they show as U+FFFD. Other control characters show as a space.
_SHOWN = {c: "\ufffd" for c in range(0xD800, 0xE000)}
_SHOWN.update({c: " " for c in (*range(32), 0x7F)})


def excerpt(line: str, at: int, limit: int | None = None) -> tuple[int, str]:
    """At most `limit` characters of `line` around offset `at`, marked '...' where cut, and
    the offset in `line` that the excerpt's first character stands for (so that a caret at
    `at - start` stays under the same character)."""
    limit = limit or MAX_EXCERPT
    if len(line) <= limit:
        return 0, line
    lo = min(max(0, at - limit // 2), len(line) - limit)
    hi = lo + limit
    head = ELLIPSIS if lo > 0 else ""
    tail = ELLIPSIS if hi < len(line) else ""
    return lo - len(head), head + line[lo:hi] + tail


def clip(text: str, limit: int = 60) -> str:
    """`text` when short, else its head and tail around a note of what was left out: for
    quoting user text (a token, a number) inside a message."""
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]}...({len(text) - 2 * keep} more characters)...{text[-keep:]}"
