"""Python source for plain values: the one gate between a model file and emitted code.

Both emitted modules (`bmdsl.cvx.emit`, `bmdsl.trainer.emit`) write their data as literals
through `literal`. It accepts only None, bools, ints, finite floats, identifier strings
(`IDENTIFIER`), einsum subscripts (`Subscripts`, checked against `SUBSCRIPTS`), and tuples,
lists and dicts of those, and writes them with repr; anything else is refused. So nothing
from a model file reaches emitted source unvalidated.
"""
from __future__ import annotations

import math
import re

from .errors import SemanticError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SUBSCRIPTS = re.compile(r"^[A-Za-z]*(,[A-Za-z]*)*->[A-Za-z]*$")
PROSE = re.compile(r"^[A-Za-z0-9 _.,;:=()<>+\-*/^|%'!?\[\]]*$")
WIDTH = 88


class Subscripts(str):
    """An einsum subscripts string: letters, commas and one '->'."""


class Prose(str):
    """A sentence bmdsl wrote (e.g. why a method never applies): one line of letters,
    digits, spaces and plain punctuation, checked against `PROSE`."""


def name(x) -> str:
    """`x` if it is an identifier string, else a SemanticError."""
    if not isinstance(x, str) or not IDENTIFIER.match(x):
        raise SemanticError(f"cannot emit {x!r}: names in emitted code must match "
                            f"{IDENTIFIER.pattern}")
    return x


def literal(x, indent: int = 0, width: int = WIDTH) -> str:
    """Python source for `x` (types preserved); containers wrap past `width` columns."""
    if x is None or isinstance(x, bool):
        return repr(x)
    if isinstance(x, int):
        return repr(int(x))
    if isinstance(x, float):
        if not math.isfinite(x):
            raise SemanticError(f"cannot emit the non-finite number {x!r}")
        return repr(float(x))
    if isinstance(x, Subscripts):
        if not SUBSCRIPTS.match(x):
            raise SemanticError(f"bad einsum subscripts {x!r}")
        return repr(str(x))
    if isinstance(x, Prose):
        if not PROSE.match(x):
            raise SemanticError(f"cannot emit the text {x!r}")
        return repr(str(x))
    if isinstance(x, str):
        return repr(name(x))
    pad = " " * (indent + 4)
    if isinstance(x, (tuple, list)):
        items = [literal(v, indent + 4, width) for v in x]
        close = "," if isinstance(x, tuple) and len(items) == 1 else ""
        left, right = ("(", ")") if isinstance(x, tuple) else ("[", "]")
        one = left + ", ".join(items) + close + right
        if len(one) + indent < width:
            return one
        lines = []           # short items share a line, up to WIDTH
        for v in items:
            if lines and "\n" not in v and "\n" not in lines[-1] and \
                    len(pad) + len(lines[-1]) + len(v) + 3 < width:
                lines[-1] += f", {v}"
            else:
                lines.append(v)
        return left + "\n" + "".join(f"{pad}{v},\n" for v in lines) + " " * indent + right
    if isinstance(x, dict):
        items = [(literal(k), literal(v, indent + 4, width)) for k, v in x.items()]
        one = "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
        if indent and len(one) + indent < width and "\n" not in one:   # the top: a key a line
            return one
        return "{\n" + "".join(f"{pad}{k}: {v},\n" for k, v in items) + " " * indent + "}"
    raise SemanticError(f"cannot emit a value of type {type(x).__name__}")


def _flat(x) -> str:
    return literal(x, 1, 1 << 30)         # on one line, whatever its length


def hanging(x, column: int, width: int = WIDTH) -> str:
    """`literal(x)` starting at `column`: a container too long for the line continues its
    items under its first one (as many a line as fit), up to `width` columns."""
    one = _flat(x)
    if column + len(one) <= width or not isinstance(x, (tuple, list, dict)) or not x:
        return one
    left, right = {tuple: "()", list: "[]", dict: "{}"}[type(x)]
    close = "," if isinstance(x, tuple) and len(x) == 1 else ""
    items = [(_flat(k) + ": ", v) for k, v in x.items()] if isinstance(x, dict) else \
        [("", v) for v in x]
    lines, col = [left], column + 1
    for i, (key, v) in enumerate(items):
        tail = "," if i < len(items) - 1 else close + right
        at, one, room = col + (1 if i else 0), key + _flat(v), width - len(tail)
        if i and at + len(one) > room and column + 1 + len(one) <= room:
            lines.append(" " * (column + 1))          # whole on a line of its own
            text = one
        else:
            lines[-1] += " " if i else ""
            text = key + hanging(v, at + len(key), room)
        parts = (text + tail).split("\n")
        lines[-1] += parts[0]
        lines += parts[1:]
        col = len(lines[-1]) + (column if len(lines) == 1 else 0)
    return "\n".join(lines)


def packed(spec, width=92, wrap=WIDTH) -> str:
    """The SPEC literal (`literal` for every entry, wrapped at `wrap` columns, continued
    under its first item), short entries sharing a line up to `width` (both emitters')."""
    lines = []
    for k, v in spec.items():
        head = f"{literal(k)}: "
        item = head + hanging(v, 4 + len(head), wrap - 1) + ","
        if lines and "\n" not in item + lines[-1] and len(lines[-1]) + len(item) < width:
            lines[-1] += " " + item
        else:
            lines.append("    " + item)
    return "{\n" + "\n".join(lines) + "\n}"
