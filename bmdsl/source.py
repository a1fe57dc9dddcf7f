"""Source text and spans: every AST node remembers where it came from."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .limits import MAX_EXCERPT, MAX_TEXT_BYTES, MAX_TOKENS


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


# -- reading model text ---------------------------------------------------------------------
def _position(text: str, offset: int) -> tuple[int, int]:
    """(line, column) of character `offset`, counted as Lark counts them (lines by '\\n')."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _size_words(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def _too_large(size: int, path: str):
    from .errors import BmdslSyntaxError
    return BmdslSyntaxError(f"the model text is {_size_words(size)}; at most "
                            f"{_size_words(MAX_TEXT_BYTES)} ({MAX_TEXT_BYTES} bytes) is accepted",
                            source=Source("", path),
                            hint="a model is a dozen short statements; is this the right file?")


def check_text(text: str, path: str = "<string>") -> None:
    """Reject text no model can be: longer than `limits.MAX_TEXT_BYTES`, or containing a NUL
    (binary data); a `BmdslSyntaxError` with the line and column of the first NUL."""
    from .errors import BmdslSyntaxError
    size = len(text) if len(text) > MAX_TEXT_BYTES else \
        len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise _too_large(size, path)
    _check_tokens(text, path)
    nul = text.find("\x00")
    if nul >= 0:
        line, col = _position(text, nul)
        raise BmdslSyntaxError("the text contains a NUL character: binary data, not a model",
                               span=Span(line, col, line, col + 1, path),
                               source=Source(text, path), hint="a model file is plain UTF-8 text")


# Words (names, numbers) and single symbols; comments are matched so as to be skipped.
_TOKEN = re.compile(r"#[^\n]*|[A-Za-z0-9_.]+|[^\sA-Za-z0-9_.#]")


def _check_tokens(text: str, path: str) -> None:
    """At most `limits.MAX_TOKENS` tokens outside comments (counted before Lark sees them)."""
    from .errors import BmdslSyntaxError
    count = 0
    for match in _TOKEN.finditer(text):
        if match.group().startswith("#"):
            continue
        count += 1
        if count > MAX_TOKENS:
            line, col = _position(text, match.start())
            raise BmdslSyntaxError(f"the model has more than {MAX_TOKENS} tokens (names, "
                                   f"numbers and symbols, comments not counted); this is token "
                                   f"{MAX_TOKENS + 1}", span=Span(line, col, line, col + 1, path),
                                   source=Source(text, path),
                                   hint="a model is a dozen short statements")


def read_text(path) -> str:
    """The text of a model file: UTF-8 (a leading byte-order mark is dropped), line ends
    normalized to '\\n' as Python's text mode does. A file too large, unreadable, or not
    UTF-8 raises a `BmdslError`; not UTF-8 with the line and column of the first bad byte."""
    from .errors import BmdslError, BmdslSyntaxError
    name = str(path)
    try:
        with open(path, "rb") as f:  # read one byte past the limit, never the whole file
            data = f.read(MAX_TEXT_BYTES + 1)
            if len(data) > MAX_TEXT_BYTES:
                try:
                    total = max(os.fstat(f.fileno()).st_size, len(data))
                except OSError:
                    total = len(data)
    except OSError as exc:
        raise BmdslError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEXT_BYTES:
        raise _too_large(total, name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if 0 <= data.find(b"\x00") < exc.start:  # a NUL comes first: report that
            check_text(_newlines(data[:exc.start].decode("utf-8")), name)
        shown = _newlines(data.decode("utf-8", "replace"))
        line, col = _position(shown, len(_newlines(data[:exc.start].decode("utf-8", "replace"))))
        raise BmdslSyntaxError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason})",
                               span=Span(line, col, line, col + 1, name),
                               source=Source(shown, name),
                               hint="a model file is plain UTF-8 text") from None
    return _newlines(text)


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
