"""Text -> syntax tree: the Lark parser and a Transformer that builds `bmdsl.front.ast` nodes.

Syntax errors become `BmdslSyntaxError` with line, column, a caret and the tokens that
would have been accepted, in words.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, v_args
from lark.visitors import Transformer_NonRecursive

from . import ast
from ..core.errors import BmdslError, BmdslSyntaxError
from ..core.limits import MAX_DIGITS
from .modeltext import check_text
from ..core.source import Source, Span, clip

KEYWORDS = ("model", "architecture", "size", "input", "target", "units", "weights", "patches",
            "pool", "layer", "output", "activation", "loss", "regularize", "bias", "act")

# The keywords that begin a statement, as Lark names their terminals.
# (The grammar names keyword terminals _INPUT, _ACT, ...: filtered from the tree, \b-bounded.)
STATEMENT_TERMINALS = {f"_{k.upper()}" for k in KEYWORDS if k not in ("model", "act")}

# Every punctuation character the grammar uses (besides '#' for comments).
_SYMBOLS = "[ ] ( ) , = + - * ^".split()

# Terminals a user should read in words, not as Lark's internal names.
_TERMINAL_WORDS = {
    "NAME": "a name", "INT": "a whole number", "SIGNED_NUMBER": "a number",
    "WINDOW": "a window such as 2x2", "$END": "the end of the file",
}


def grammar_text() -> str:
    """The grammar, from the installed package or, in a source checkout, from grammar/."""
    try:
        return resources.files("bmdsl.grammar").joinpath("bmdsl.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parent.parent.parent / "grammar" / "bmdsl.lark").read_text()


@lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _binop(op: str):
    """The rule for one binary operator: `left op right` with the rule's span."""
    def rule(self, meta, children):
        return ast.BinOp(op, children[0], children[1], self._span(meta))
    return rule


def _node(cls, take):
    """The rule building `cls(children..., span)`: all children as a tuple (`take` is
    `all`), or the first `take` of them as arguments."""
    def rule(self, meta, children):
        args = (tuple(children),) if take is all else tuple(children[:take])
        return cls(*args, self._span(meta))
    return rule


@v_args(meta=True)
class _Build(Transformer_NonRecursive):
    """Builds frozen AST nodes bottom-up; each node gets the span of its text, labelled with
    the file it is in (so spliced architecture statements keep their origin). Non-recursive:
    a 500-term sum or a chain of 500 unary minuses is a tree that deep."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta) -> Span:
        return Span(meta.line, meta.column, meta.end_line, meta.end_column, self.file)

    def _tok(self, t: Token) -> Span:
        return Span(t.line, t.column, t.end_line, t.end_column, self.file)

    def start(self, meta, children):
        header, *statements = children
        return header, tuple(statements), self._span(meta)

    def header(self, meta, children):
        return str(children[0])

    def _whole(self, t: Token, text: str | None = None) -> int:
        """An INT token (or the digits `text` within token `t`) as an int. Python refuses to
        convert more than 4300 digits; no whole number of the language needs more than
        MAX_DIGITS (see bmdsl.core.limits)."""
        text = str(t) if text is None else text
        digits = text.lstrip("0") or "0"
        if len(digits) > MAX_DIGITS:
            raise BmdslSyntaxError(f"the whole number {clip(text)} has {len(digits)} digits; "
                                   f"at most {MAX_DIGITS} are accepted", span=self._tok(t),
                                   hint="docs/language.md, 'Limits', lists the accepted range "
                                        "of every whole number")
        return int(digits)

    # values and calls
    def number(self, meta, children):
        t = children[0]
        value = float(t)
        if not math.isfinite(value):  # 1e999: a float overflow, not a number anyone means
            raise BmdslSyntaxError(f"the number {clip(str(t))} is too large to represent",
                                   span=self._tok(t), hint="numbers must lie within +-1.8e308")
        mantissa = re.split("[eE]", str(t))[0]
        if value == 0 and re.search("[1-9]", mantissa):  # 1e-400: not zero, yet 0.0 in float64
            raise BmdslSyntaxError(f"the number {clip(str(t))} is too small to represent: it "
                                   f"would round to 0", span=self._tok(t),
                                   hint="nonzero numbers must be at least 5e-324 in magnitude")
        return ast.Number(value, str(t), self._tok(t))

    def name_value(self, meta, children):
        t = children[0]
        return ast.Name(str(t), self._tok(t))

    def window_value(self, meta, children):
        t = children[0]
        rows, cols = str(t).split("x")
        return ast.Window(self._whole(t, rows), self._whole(t, cols), self._tok(t))

    def keyword_arg(self, meta, children):
        return ast.Arg(str(children[0]), children[1], self._span(meta))

    def positional_arg(self, meta, children):
        return ast.Arg(None, children[0], self._span(meta))

    def call(self, meta, children):
        name, *args = children
        return ast.Call(str(name), tuple(args), self._span(meta))

    # expressions
    def index(self, meta, children):
        return ast.Index(str(children[0]), self._tok(children[0]))

    def ref(self, meta, children):
        name, *idx = children
        return ast.Ref(str(name), tuple(idx), self._span(meta))

    def act(self, meta, children):
        name, *idx = children
        return ast.Act(str(name), tuple(idx), self._span(meta))

    add, sub, mul = _binop("+"), _binop("-"), _binop("*")

    def neg(self, meta, children):
        return ast.Neg(children[0], self._span(meta))

    def pow(self, meta, children):
        return ast.Pow(children[0], self._whole(children[1]), self._span(meta))

    # declarations
    def shape(self, meta, children):
        name, *dims = children
        dims = tuple(ast.Name(str(d), self._tok(d)) for d in dims)
        return ast.Shape(str(name), dims, self._span(meta))

    def architecture(self, meta, children):
        return ast.Architecture(str(children[0]), self._span(meta))

    def size_item(self, meta, children):
        value = self._whole(children[1]) if len(children) > 1 else None
        return ast.SizeItem(str(children[0]), value, self._span(meta))

    # statements whose node takes the children as they come: (all | first | first two)
    size_decl, input_decl = _node(ast.SizeDecl, all), _node(ast.InputDecl, all)
    regularize_decl, bias_decl = _node(ast.RegularizeDecl, all), _node(ast.BiasDecl, all)
    target_decl, activation_decl = _node(ast.TargetDecl, 1), _node(ast.ActivationDecl, 1)
    loss_decl = _node(ast.LossDecl, 1)
    weights_decl, patches_decl = _node(ast.WeightsDecl, 2), _node(ast.PatchesDecl, 2)
    pool_decl = _node(ast.PoolDecl, 2)

    def units_decl(self, meta, children):
        return ast.UnitsDecl(str(children[0]), self._whole(children[1]), self._span(meta))

    def layer_eq(self, meta, children):
        return ast.Equation("layer", children[0], children[1], self._span(meta))

    def output_eq(self, meta, children):
        return ast.Equation("output", children[0], children[1], self._span(meta))

    def output_bias(self, meta, children):
        return ast.Call("output", (), self._span(meta))


def _describe(expected: set[str]) -> str:
    """Terminal names -> words: "',' or ']'", "a name, a number or a new statement"."""
    expected = set(expected)
    words = []
    if STATEMENT_TERMINALS <= expected:  # any statement may follow: say so once
        expected -= STATEMENT_TERMINALS
        words.append("a new statement")
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
            continue
        if name.startswith("_") and name[1:].lower() in KEYWORDS:
            words.append(repr(name[1:].lower()))
            continue
        try:
            pattern = parser().get_terminal(name).pattern
        except KeyError:
            continue
        words.append(repr(pattern.value) if pattern.type == "str" else name.lower())
    words = sorted(set(words), key=lambda w: (not w.startswith("'"), w))
    if not words:
        return "nothing more here"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _accepted(exc: lark.exceptions.UnexpectedInput) -> set[str]:
    """The terminals the parser really accepts here. `exc.expected` comes from the merged
    LALR state and may list tokens that would fail one step later; `accepts()` tries each."""
    given = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    try:
        return set(exc.interactive_parser.accepts()) or given
    except Exception:  # noqa: BLE001 - best effort: fall back to Lark's own list
        return given


def _hint(text: str, pos: int, word: str, accepted: set[str]) -> str | None:
    """A likely cause, in words, for the usual slips."""
    starts_line = not text[text.rfind("\n", 0, pos) + 1:pos].strip()
    if f"_{word.upper()}" in STATEMENT_TERMINALS and starts_line and \
            not STATEMENT_TERMINALS & accepted:
        return f"'{word}' starts a new statement, but the statement before it is not finished"
    if word in KEYWORDS and "NAME" in accepted:
        return f"'{word}' is a keyword of the language and cannot be used as a name"
    if word[:1].isalpha() and pos > 0 and (text[pos - 1].isdigit() or text[pos - 1] == "."):
        start = pos - 1
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in ".-+"):
            start -= 1
        bad = clip(re.match(r"[\w.+-]*", text[start:start + 1000]).group())
        return f"'{bad}' is not a number: write numbers as 3, 0.5, -2 or 1e-3"
    return None


def _syntax_error(exc: lark.exceptions.UnexpectedInput, source: Source) -> BmdslSyntaxError:
    line, col = max(exc.line, 1), max(exc.column, 1)
    file = source.path
    if not re.sub(r"#[^\n]*", "", source.text).strip():
        return BmdslSyntaxError("the file is empty", span=Span(line, col, line, col + 1, file),
                                source=source, hint="a model starts with 'model NAME'")
    if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type == "$END":
        return BmdslSyntaxError(f"the file ends in the middle of a statement; expected "
                                f"{_describe(_accepted(exc))}",
                                span=Span(line, col, line, col + 1, file), source=source)
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        tok, accepted = str(exc.token), _accepted(exc)
        span = Span(line, col, line, col + max(1, len(tok)), file)
        return BmdslSyntaxError(f"unexpected {clip(tok)!r}; expected {_describe(accepted)}",
                                span=span, source=source,
                                hint=_hint(source.text, exc.pos_in_stream or 0, tok, accepted))
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = source.text[pos] if pos < len(source.text) else "?"
        allowed = _accepted(exc)
        words = _describe(allowed) if allowed else "a statement"
        word = re.match(r"\w*", source.text[pos:]).group() or char
        hint = _hint(source.text, pos, word, allowed)
        if char.isalpha() and not char.isascii():
            hint = hint or "names are made of ASCII letters, digits and '_'"
        elif not (char.isalnum() or char == "_" or char in _SYMBOLS):
            hint = hint or f"a model uses only names, numbers, comments and {' '.join(_SYMBOLS)}"
        return BmdslSyntaxError(f"unexpected character {char!r}; expected {words}",
                                span=Span(line, col, line, col + 1, file), source=source,
                                hint=hint)
    return BmdslSyntaxError(str(exc), span=Span(line, col, line, col + 1, file), source=source)


def parse_program(text: str, path: str = "<string>") -> ast.Program:
    """Parse model text into an unchecked `ast.Program`; raise `BmdslSyntaxError`."""
    check_text(text, path)  # size limit, no NUL
    source = Source(text, path)
    try:
        tree = parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    try:
        name, statements, span = _Build(path).transform(tree)
    except lark.exceptions.VisitError as exc:  # Lark wraps what the transformer raises
        if isinstance(exc.orig_exc, BmdslError):
            raise exc.orig_exc.with_source(source) from None
        raise
    return ast.Program(name, statements, span, source)
