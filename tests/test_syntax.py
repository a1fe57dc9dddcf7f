"""The grammar and the syntax tree: `bmdsl.parse(text, check=False)` gives frozen `ast` nodes
with spans, in source order; keywords end at a word boundary; comments, line breaks, tabs
and CRLF are free."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import bmdsl
from bmdsl.front import ast
from bmdsl.core.errors import BmdslSyntaxError
from bmdsl.front.syntax import KEYWORDS, grammar_text, parse_program

ROOT = Path(__file__).resolve().parent.parent

TEXT = """\
# a comment line
model demo   # trailing comment
size d = 3, e
input X[n, d], G[g, d]
target Y[n, c]
patches P[n, k, h] = im2col(I, kernel = 3, stride = 2, padding = 1)
pool Q[a, k] = average(2x2)
units m = 4
weights W1[d], W2[c]
layer A[n] = 2 * X[n, i] * W1[i] - (X[n, i])^2 * W1[i]
output Yhat[n, o] = act(A)[n] * W2[o]
activation relu(gates = G)
loss huber(delta = 0.5)
regularize beta = 1e-3, C = l1, R = linf
"""


def statements():
    return parse_program(TEXT, "demo.bm").statements


def test_unchecked_parse_returns_the_syntax_tree():
    program = bmdsl.parse(TEXT, check=False, path="demo.bm")
    assert isinstance(program, ast.Program)
    assert program.name == "demo" and program.source.path == "demo.bm"
    assert [type(s).__name__ for s in program.statements] == [
        "SizeDecl", "InputDecl", "TargetDecl", "PatchesDecl", "PoolDecl", "UnitsDecl",
        "WeightsDecl", "Equation", "Equation", "ActivationDecl", "LossDecl", "RegularizeDecl"]


def test_declarations():
    size, inputs, target, patches, pool, units, weights = statements()[:7]
    assert [(i.name, i.value) for i in size.items] == [("d", 3), ("e", None)]
    assert [(t.name, [x.name for x in t.dims]) for t in inputs.tensors] == [
        ("X", ["n", "d"]), ("G", ["g", "d"])]
    assert target.tensor.name == "Y"
    assert patches.call.name == "im2col"
    assert [(a.name, getattr(a.value, "name", None) or a.value.value)
            for a in patches.call.args] == [(None, "I"), ("kernel", 3.0), ("stride", 2.0),
                                            ("padding", 1.0)]
    (window,) = pool.call.args
    assert isinstance(window.value, ast.Window) and (window.value.rows, window.value.cols) == (2, 2)
    assert (units.name, units.value) == ("m", 4)
    assert (weights.first.name, weights.second.name) == ("W1", "W2")


def test_equations_in_index_notation():
    layer, output = statements()[7:9]
    assert layer.side == "layer" and layer.lhs.name == "A"
    assert [i.name for i in layer.lhs.indices] == ["n"]
    rhs = layer.rhs
    assert isinstance(rhs, ast.BinOp) and rhs.op == "-"
    assert isinstance(rhs.right.left, ast.Pow) and rhs.right.left.exponent == 2
    assert isinstance(rhs.left.left.left, ast.Number) and rhs.left.left.left.text == "2"
    act = output.rhs.left
    assert isinstance(act, ast.Act) and act.name == "A" and [i.name for i in act.indices] == ["n"]


def test_registry_calls():
    activation, loss, regularize = statements()[9:]
    assert activation.call.name == "relu" and activation.call.args[0].name == "gates"
    assert loss.call.name == "huber" and loss.call.args[0].value.value == 0.5
    args = {a.name: a.value for a in regularize.args}
    assert args["beta"].text == "1e-3" and args["C"].name == "l1" and args["R"].name == "linf"


def test_spans_are_line_and_column_of_the_text():
    layer = statements()[7]
    assert (layer.span.line, layer.span.column) == (10, 1)
    w1 = layer.rhs.left.right
    assert w1.name == "W1"
    assert (w1.span.line, w1.span.column, w1.span.end_column) == (10, 28, 33)
    assert TEXT.split("\n")[9][w1.span.column - 1:w1.span.end_column - 1] == "W1[i]"
    assert all(s.span.file == "demo.bm" for s in statements())


def test_nodes_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        statements()[0].items = ()


def test_layout_is_free():
    """Comments, line breaks inside a statement, tabs and CRLF give the same tree."""
    def shape(text):
        strip = lambda x: (type(x).__name__, tuple(  # noqa: E731
            strip(getattr(x, f.name)) for f in dataclasses.fields(x) if f.name != "span")) \
            if dataclasses.is_dataclass(x) else tuple(map(strip, x)) \
            if isinstance(x, tuple) else x
        return strip(parse_program(text).statements)
    reflowed = TEXT.replace("layer A[n] = 2 * X[n, i]", "layer A[n] =\n  2 * X[n, i]  # here\n") \
        .replace("  ", "\t")
    assert shape(reflowed) == shape(TEXT)
    assert shape(TEXT.replace("\n", "\r\n")) == shape(TEXT)


def test_keywords_end_at_a_word_boundary():
    """`inputs`, `actual` and `layer_2` are names; `activation` is not `act` + `ivation`."""
    text = TEXT.replace("X[n, d], G[g, d]", "inputs[n, d], G[g, d]") \
        .replace("X[n, i]", "inputs[n, i]").replace("act(A)[n]", "act(layer_2)[n]") \
        .replace("layer A[n]", "layer layer_2[n]") \
        .replace("units m = 4", "units actual = 4")
    program = parse_program(text)
    assert program.statements[1].tensors[0].name == "inputs"
    assert program.statements[5].name == "actual"
    assert program.statements[8].rhs.left.name == "layer_2"


def test_keyword_list_matches_the_grammar():
    """syntax.KEYWORDS, the NAME exclusion and the keyword terminals are one list."""
    grammar = grammar_text()
    excluded = re.search(r"NAME: /\(\?!\(([a-z|]+)\)", grammar).group(1).split("|")
    assert sorted(excluded) == sorted(KEYWORDS)
    for kw in KEYWORDS:
        assert f"_{kw.upper()}: /{kw}\\b/" in grammar


@pytest.mark.parametrize("kw", KEYWORDS)
def test_no_keyword_is_a_name(kw):
    with pytest.raises(BmdslSyntaxError) as e:
        parse_program(TEXT.replace("Y[n, c]", f"{kw}[n, c]"))
    assert e.value.line == 5


def test_empty_and_comment_only_files():
    for text in ("", "   \n", "# only a comment\n"):
        with pytest.raises(BmdslSyntaxError) as e:
            bmdsl.parse(text)
        assert e.value.message == "the file is empty"


def test_architecture_spans_name_their_file():
    model = bmdsl.parse("model m\narchitecture attention\nactivation linear\nloss squared\n"
                        "regularize beta = 1\n")
    assert model.layer.span.file == "<architecture attention>"
    assert model.layer.span.where("<string>") == "line 9 of architecture attention"
    assert model.activation.span.where("<string>") == "line 3"


def test_shipped_files_parse():
    for path in [*sorted((ROOT / "models").glob("*.bm")),
                 *sorted((ROOT / "bmdsl" / "architectures").glob("*.bm"))]:
        program = bmdsl.load(path, check=False)
        assert program.statements and program.source.path == str(path)
