"""Reading model text: the size, token and NUL checks and the UTF-8 decoding of a file, each
refusal a BmdslSyntaxError with the line and column (limits in `bmdsl.core.limits`). Apart from
source.py, which the error hierarchy itself uses, so that imports point one way."""
from __future__ import annotations

import os
import re

from ..core.errors import BmdslError, BmdslSyntaxError
from ..core.limits import MAX_TEXT_BYTES, MAX_TOKENS
from ..core.source import Source, Span

def _position(text: str, offset: int) -> tuple[int, int]:
    """(line, column) of character `offset`, counted as Lark counts them (lines by '\\n')."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _size_words(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def _too_large(size: int, path: str):
    return BmdslSyntaxError(f"the model text is {_size_words(size)}; at most "
                            f"{_size_words(MAX_TEXT_BYTES)} ({MAX_TEXT_BYTES} bytes) is accepted",
                            source=Source("", path),
                            hint="a model is a dozen short statements; is this the right file?")


def check_text(text: str, path: str = "<string>") -> None:
    """Reject text no model can be: longer than `limits.MAX_TEXT_BYTES`, or containing a NUL
    (binary data); a `BmdslSyntaxError` with the line and column of the first NUL."""
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
