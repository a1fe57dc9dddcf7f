"""Text -> syntax tree: the Lark parser and a Transformer that builds `bmdsl.ast` nodes.

Syntax errors become `BmdslSyntaxError` with line, column, a caret and the tokens that
would have been accepted, in words.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, v_args

from . import ast
from .errors import BmdslSyntaxError
from .source import Source, Span

KEYWORDS = ("model", "architecture", "size", "input", "target", "units", "weights", "patches",
            "pool", "layer", "output", "activation", "loss", "regularize", "act")

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
        return (Path(__file__).resolve().parent.parent / "grammar" / "bmdsl.lark").read_text()


@lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tok(t: Token) -> Span:
    return Span(t.line, t.column, t.end_line, t.end_column)


@v_args(meta=True)
class _Build(Transformer):
    """Builds frozen AST nodes bottom-up; each node gets the span of its text."""

    def start(self, meta, children):
        header, *statements = children
        return header, tuple(statements), _span(meta)

    def header(self, meta, children):
        return str(children[0])

    # values and calls
    def number(self, meta, children):
        t = children[0]
        return ast.Number(float(t), str(t), _tok(t))

    def name_value(self, meta, children):
        t = children[0]
        return ast.Name(str(t), _tok(t))

    def window_value(self, meta, children):
        t = children[0]
        rows, cols = str(t).split("x")
        return ast.Window(int(rows), int(cols), _tok(t))

    def keyword_arg(self, meta, children):
        return ast.Arg(str(children[0]), children[1], _span(meta))

    def positional_arg(self, meta, children):
        return ast.Arg(None, children[0], _span(meta))

    def call(self, meta, children):
        name, *args = children
        return ast.Call(str(name), tuple(args), _span(meta))

    # expressions
    def index(self, meta, children):
        return ast.Index(str(children[0]), _tok(children[0]))

    def ref(self, meta, children):
        name, *idx = children
        return ast.Ref(str(name), tuple(idx), _span(meta))

    def act(self, meta, children):
        name, *idx = children
        return ast.Act(str(name), tuple(idx), _span(meta))

    def add(self, meta, children):
        return ast.BinOp("+", children[0], children[1], _span(meta))

    def sub(self, meta, children):
        return ast.BinOp("-", children[0], children[1], _span(meta))

    def mul(self, meta, children):
        return ast.BinOp("*", children[0], children[1], _span(meta))

    def neg(self, meta, children):
        return ast.Neg(children[0], _span(meta))

    def pow(self, meta, children):
        return ast.Pow(children[0], int(children[1]), _span(meta))

    # declarations
    def shape(self, meta, children):
        name, *dims = children
        return ast.Shape(str(name), tuple(ast.Name(str(d), _tok(d)) for d in dims), _span(meta))

    def architecture(self, meta, children):
        return ast.Architecture(str(children[0]), _span(meta))

    def size_item(self, meta, children):
        value = int(children[1]) if len(children) > 1 else None
        return ast.SizeItem(str(children[0]), value, _span(meta))

    def size_decl(self, meta, children):
        return ast.SizeDecl(tuple(children), _span(meta))

    def input_decl(self, meta, children):
        return ast.InputDecl(tuple(children), _span(meta))

    def target_decl(self, meta, children):
        return ast.TargetDecl(children[0], _span(meta))

    def units_decl(self, meta, children):
        return ast.UnitsDecl(str(children[0]), int(children[1]), _span(meta))

    def weights_decl(self, meta, children):
        return ast.WeightsDecl(children[0], children[1], _span(meta))

    def patches_decl(self, meta, children):
        return ast.PatchesDecl(children[0], children[1], _span(meta))

    def pool_decl(self, meta, children):
        return ast.PoolDecl(children[0], children[1], _span(meta))

    def layer_eq(self, meta, children):
        return ast.Equation("layer", children[0], children[1], _span(meta))

    def output_eq(self, meta, children):
        return ast.Equation("output", children[0], children[1], _span(meta))

    def activation_decl(self, meta, children):
        return ast.ActivationDecl(children[0], _span(meta))

    def loss_decl(self, meta, children):
        return ast.LossDecl(children[0], _span(meta))

    def regularize_decl(self, meta, children):
        return ast.RegularizeDecl(tuple(children), _span(meta))


def _describe(expected: set[str]) -> str:
    words = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = parser().get_terminal(name).pattern
        except KeyError:
            continue
        words.append(repr(pattern.value) if pattern.type == "str" else name.lower())
    words = sorted(set(words))
    if not words:
        return "nothing more here"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_error(exc: lark.exceptions.UnexpectedInput, source: Source) -> BmdslSyntaxError:
    line, col = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type == "$END":
        return BmdslSyntaxError(f"the file ends in the middle of a statement; expected "
                                f"{_describe(exc.expected)}", span=Span(line, col, line, col + 1),
                                source=source)
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        span = Span(line, col, line, col + max(1, len(str(tok))))
        hint = None
        if str(tok) in KEYWORDS and "NAME" in exc.expected:
            hint = f"'{tok}' is a keyword of the language and cannot be used as a name"
        return BmdslSyntaxError(f"unexpected {str(tok)!r}; expected {_describe(exc.expected)}",
                                span=span, source=source, hint=hint)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else "?"
        words = str(exc.allowed and _describe(set(exc.allowed)) or "a statement")
        hint = None
        if char.isalpha():
            word = source.text[exc.pos_in_stream:].split(None, 1)[0].split("[")[0]
            if word.rstrip("(,=") in KEYWORDS:
                hint = f"'{word.rstrip('(,=')}' is a keyword of the language and cannot be used as a name"
        return BmdslSyntaxError(f"unexpected character {char!r}; expected {words}",
                                span=Span(line, col, line, col + 1), source=source, hint=hint)
    return BmdslSyntaxError(str(exc), span=Span(line, col, line, col + 1), source=source)


def parse_program(text: str, path: str = "<string>") -> ast.Program:
    """Parse model text into an unchecked `ast.Program`; raise `BmdslSyntaxError`."""
    source = Source(text, path)
    try:
        tree = parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    name, statements, span = _Build().transform(tree)
    return ast.Program(name, statements, span, source)
