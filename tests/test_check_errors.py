"""Malformed models: each gives the intended error class, line, column and message.

Every case edits one valid model (BASE, or models/cnn.bm) by text replacement, so the line
and column asserted are the ones a user would see in `bmdsl check`. The language's rule
(docs/language.md): anything outside the two-layer form is rejected naming the line, the
column and the offending term, and saying what form is accepted.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import bmdsl
from bmdsl.core.errors import BmdslError, BmdslSyntaxError, NotConvexifiableError, SemanticError
from model_texts import mlp, regularize

ROOT = Path(__file__).resolve().parent.parent
CNN = (ROOT / "models" / "cnn.bm").read_text()

BASE = mlp("t", m=3, activation="relu(patterns = 8, seed = 0)", loss="squared",
           regularize=regularize())
L = "layer A[n] = X[n, i] * W1[i]"
O = "output Yhat[n, o] = act(A)[n] * W2[o]"
ACT = "relu(patterns = 8, seed = 0)"

Syn, Sem, NC = BmdslSyntaxError, SemanticError, NotConvexifiableError

# name: (replacements (old, new, ...), error class, line, column, message fragment)
CASES = {
    # -- the two-layer form (docs/language.md) -------------------------------------------
    "nonlinear first layer": ((L, L + " * W1[i]"), NC, 6, 32, "not linear in 'W1'"),
    "power of the weight": ((L, L + "^2"), NC, 6, 24, "appears 2 times in one term"),
    "affine first layer": ((L, L + " + 1"), NC, 6, 14,
                           "does not contain the first-layer weight 'W1'"),
    "second weight in the layer": ((L, L + " * W2[o]"), NC, 6, 32,
                                   "second-layer weight 'W2' appears in the first layer"),
    "first weight in the output": ((O, O + " * W1[i]"), NC, 7, 41,
                                   "first-layer weight 'W1' appears in the output"),
    "output quadratic in act": ((O, "output Yhat[n, o] = act(A)[n] * act(A)[n] * W2[o]"), NC,
                                7, 33, "not linear in act(...)"),
    "output without the second weight": ((O, "output Yhat[n, o] = act(A)[n] * X[n, o]"), NC,
                                         7, 21, "not linear in the second-layer weight 'W2'"),
    "act in the layer": ((L, "layer A[n] = act(X)[n, i] * W1[i]"), NC, 6, 14,
                         "act(...) cannot appear in the first-layer equation"),
    "A without act": ((O, "output Yhat[n, o] = A[n] * W2[o]"), NC, 7, 21,
                      "'A' appears without act(...)"),
    "act of another tensor": ((O, "output Yhat[n, o] = act(X)[n] * W2[o]"), Sem, 7, 21,
                              "'X' is not the first layer's tensor"),
    "target in an equation": ((L, "layer A[n] = Y[n, o] * X[n, i] * W1[i]"), Sem, 6, 14,
                              "the target 'Y' cannot appear in an equation"),
    "size used as a tensor": ((L, "layer A[n] = n * X[n, i] * W1[i]"), Sem, 6, 14,
                              "'n' is a size, not a tensor"),
    "huge power": ((L, "layer A[n] = (X[n, i] * W1[i])^99999999"), Sem, 6, 14,
                   "expands to more than 16 tensors"),
    "coefficient overflows": ((L, "layer A[n] = 10^400 * X[n, i] * W1[i]"), Sem, 6, 14,
                              "too large for a float"),
    # -- indices -------------------------------------------------------------------------
    "index size clash": ((L, "layer A[n] = X[n, i] * W1[n]"), Sem, 6, 24,
                         "index 'n' has size 'd' in W1 (axis 0) but size 'n' elsewhere"),
    "wrong number of indices": ((L, "layer A[n] = X[n] * W1[i]"), Sem, 6, 14,
                                "'X' has 2 axes [n, d] but is written with 1 index"),
    "index repeated in a tensor": ((L, "layer A[n] = X[n, n] * W1[i]"), Sem, 6, 14,
                                   "an index repeats within X[...]"),
    "index repeated on the left": ((O, "output Yhat[n, n] = act(A)[n] * W2[o]"), Sem, 7, 8,
                                   "an index repeats on the left side of Yhat"),
    "left index missing on the right": ((O, "output Yhat[n, o, z] = act(A)[n] * W2[o]"), Sem,
                                        7, 19, "index 'z' of the left side does not appear"),
    "target and output sizes differ": (("target Y[n, c]", "target Y[c, n]"), Sem, 3, 1,
                                       "the target Y[c, n] and the output Yhat[n, c]"),
    # -- names ---------------------------------------------------------------------------
    "undeclared tensor": ((L, "layer A[n] = Z[n, i] * W1[i]"), Sem, 6, 14,
                          "'Z' is not declared"),
    "unused input": (("input X[n, d]", "input X[n, d], U[n, d]"), Sem, 2, 16,
                     "'U' is declared but never used"),
    "unused size": (("units m = 3", "size e = 4\nunits m = 3"), Sem, 4, 6,
                    "size 'e' is declared but no tensor uses it"),
    "duplicate name": (("input X[n, d]", "input X[n, d], X[n, e]"), Sem, 2, 16,
                       "'X' is declared twice (first at line 2, column 7)"),
    "equation named like an input": ((O, O.replace("Yhat", "X", 1)), Sem, 7, 8,
                                     "'X' is declared twice"),
    "size never bound": (("W1[d]", "W1[e]"), Sem, 5, 12,
                         "size 'e' of first weight 'W1' is never bound"),
    # -- statements ----------------------------------------------------------------------
    "missing target": (("target Y[n, c]\n", ""), Sem, 1, 1, "has no 'target' statement"),
    "missing output equation": ((O + "\n", ""), Sem, 1, 1, "has no 'output' equation"),
    "second layer equation": ((O, O + "\nlayer B[n] = X[n, i] * W1[i]"), Sem, 8, 1,
                              "a second 'layer' equation (the first is at line 6)"),
    "second activation statement": (("loss squared", "activation linear\nloss squared"), Sem,
                                    9, 1, "a second 'activation' statement (the first is at "
                                          "line 8)"),
    "units zero": (("units m = 3", "units m = 0"), Sem, 4, 1,
                   "the number of units must be positive"),
    "unknown architecture": (("input X[n, d]", "architecture lstm\ninput X[n, d]"), Sem, 2, 1,
                             "unknown architecture 'lstm'"),
    # -- registries: activation, loss, norms ---------------------------------------------
    "unknown activation": ((ACT, "tanh"), Sem, 8, 12, "unknown activation 'tanh'"),
    "unknown activation parameter": (("patterns = 8", "pattern = 8"), Sem, 8, 17,
                                     "activation 'relu' has no parameter 'pattern'"),
    "patterns not a whole number": (("patterns = 8", "patterns = 1.5"), Sem, 8, 28,
                                     "'patterns' of activation 'relu' must be a positive whole"),
    "positional after keyword": (("seed = 0)", "seed = 0, 3)"), Sem, 8, 41,
                                 "positional argument after a keyword argument"),
    "gates with wrong shape": (("input X[n, d]", "input X[n, d], G[g, c]", ACT,
                                "relu(gates = G)"), Sem, 2, 16,
                               "gates 'G' must have shape [count, d]"),
    "gates and patterns": (("input X[n, d]", "input X[n, d], G[g, d]", ACT,
                            "relu(gates = G, patterns = 4)"), Sem, 8, 12,
                           "give either gates = TENSOR or patterns/seed"),
    "unknown loss": (("loss squared", "loss hinge"), Sem, 9, 6, "unknown loss 'hinge'"),
    "huber delta not positive": (("loss squared", "loss huber(delta = 0)"), Sem, 9, 20,
                                 "'delta' of loss 'huber' must be a positive number"),
    "bad norm": (("C = l2", "C = l3"), Sem, 10, 28, "'C' of statement 'regularize' must be one "
                                                     "of l1, l2, linf"),
    "beta zero": (("beta = 0.1", "beta = 0"), Sem, 10, 19, "'beta' of statement 'regularize' "
                                                          "must be a positive number"),
    "beta negative": (("beta = 0.1", "beta = -1"), Sem, 10, 19, "must be a positive number"),
    "beta missing": (("beta = 0.1, ", ""), Sem, 10, 1, "needs parameter 'beta'"),
    # -- syntax --------------------------------------------------------------------------
    "keyword as a name": (("input X[n, d]", "input loss[n, d]"), Syn, 2, 7,
                          "unexpected 'loss'; expected a name"),
    "keyword as an index": ((L, "layer A[n] = X[n, act] * W1[act]"), Syn, 6, 19,
                            "unexpected 'act'; expected a name"),
    "missing =": ((O, O.replace(" =", "")), Syn, 7, 19, "unexpected 'act'; expected '='"),
    "unterminated bracket": ((L, "layer A[n] = X[n, i * W1[i]"), Syn, 6, 21,
                             "unexpected '*'; expected ',' or ']'"),
    "bad number": (("beta = 0.1", "beta = 1e-"), Syn, 10, 20, "unexpected 'e'"),
    "number too large": ((L, "layer A[n] = 1e999 * X[n, i] * W1[i]"), Syn, 6, 14,
                         "the number 1e999 is too large"),
    "unexpected character": ((L, "layer A[n] = X[n, i] $ W1[i]"), Syn, 6, 22,
                             "unexpected character '$'"),
    "unfinished statement": ((O, "output Yhat[n, o] ="), Syn, 8, 1,
                             "unexpected 'activation'; expected '(', '-', 'act'"),
    "keyword glued to a name": (("input X[n, d]", "inputs X[n, d]"), Syn, 2, 1,
                                "unexpected 'inputs'"),
    "negative units": (("units m = 3", "units m = -3"), Syn, 4, 11,
                       "unexpected '-3'; expected a whole number"),
    "header missing": (("model t\n", ""), Syn, 1, 1, "unexpected 'input'; expected 'model'"),
}

# on models/cnn.bm: patches and pooling
CNN_CASES = {
    "unknown pooling": (("average(2x2)", "median(2x2)"), Sem, 6, 19, "unknown pooling 'median'"),
    "max pooling": (("average(2x2)", "max(2x2)"), Sem, 6, 19, "unknown pooling 'max'"),
    "pool not over positions": (("pool    P[a, k]", "pool    P[a, h]"), Sem, 6, 14,
                                "'h' is not the positions axis of a patches declaration"),
    "pooling window zero": (("average(2x2)", "average(0x2)"), Sem, 6, 27,
                            "'window' of pooling 'average' must be a window"),
    "unknown patch builder": (("im2col(", "unfold("), Sem, 5, 22,
                              "unknown patch builder 'unfold'"),
    "kernel zero": (("kernel = 3", "kernel = 0"), Sem, 5, 41,
                    "'kernel' of patch builder 'im2col' must be a positive whole number"),
    "patches on a non-image": (("input   I[n, ch, height, width]", "input   I[n, height]"),
                               Sem, 5, 22, "images 'I' must have 4 axes"),
}


def _edit(text: str, replacements: tuple[str, ...]) -> str:
    for old, new in zip(replacements[::2], replacements[1::2]):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _reject(text: str) -> BmdslError:
    with pytest.raises(BmdslError) as info:
        bmdsl.parse(text, path="case.bm")
    return info.value


def test_at_least_25_distinct_cases():
    assert len(CASES) + len(CNN_CASES) >= 25
    texts = [_edit(BASE, c[0]) for c in CASES.values()] + \
        [_edit(CNN, c[0]) for c in CNN_CASES.values()]
    assert len(set(texts)) == len(texts)  # every case is a different input


@pytest.mark.parametrize("name", sorted(CASES) + sorted(CNN_CASES))
def test_error_class_line_column_message(name):
    base, (replacements, cls, line, column, fragment) = (
        (BASE, CASES[name]) if name in CASES else (CNN, CNN_CASES[name]))
    err = _reject(_edit(base, replacements))
    assert type(err) is cls, err.render()
    assert (err.line, err.column) == (line, column), err.render()
    assert fragment in err.message, err.render()
    # rendered: file:line:col, the offending source line, a caret under the column
    rendered = err.render().splitlines()
    assert rendered[0].startswith(f"case.bm:{line}:{column}: {cls.kind}: ")
    source_line = _edit(base, replacements).split("\n")[line - 1]
    assert rendered[1] == "  " + source_line
    assert rendered[2].index("^") == column + 1  # two spaces of indent, columns count from 1


def test_the_base_model_is_valid():
    model = bmdsl.parse(BASE)
    assert model.activation.name == "relu" and model.activation.patterns == 8
    assert bmdsl.parse(CNN).pools[0].builder == "average"


@pytest.mark.parametrize("what, text, accepted", [
    ("activation", BASE.replace(ACT, "tanh"), ["linear", "gated_relu", "relu"]),
    ("loss", BASE.replace("loss squared", "loss hinge"),
     ["squared", "cross_entropy", "logistic", "huber"]),
    ("norm", BASE.replace("R = l2", "R = l7"), ["l1", "l2", "linf"]),
    ("pooling", CNN.replace("average(2x2)", "median"), ["average", "global"]),
    ("architecture", BASE.replace("input X[n, d]", "architecture rnn\ninput X[n, d]"),
     ["mlp", "cnn", "attention"]),
])
def test_unknown_registry_names_list_what_is_accepted(what, text, accepted):
    err = _reject(text)
    said = err.message + " " + (err.hint or "")
    assert all(a in said for a in accepted), err.render()


def test_max_pooling_explains_why():
    err = _reject(CNN.replace("average(2x2)", "max(2x2)"))
    assert "max pooling is not linear" in err.hint


@pytest.mark.parametrize("text, hint", [
    (BASE.replace("input X[n, d]", "input loss[n, d]"), "'loss' is a keyword"),
    (BASE.replace("beta = 0.1", "beta = 1e-"), "'1e-' is not a number"),
    (BASE.replace(O, "output Yhat[n, o] ="), "the statement before it is not finished"),
    (BASE.replace(L, "layer A[n] = X[n, i] $ W1[i]"), "a model uses only names, numbers"),
    (BASE.replace(L, L + " + 1"), "for a bias, add the statement `bias hidden`"),
    ("", "a model starts with 'model NAME'"),
])
def test_hints_name_the_likely_cause(text, hint):
    err = _reject(text)
    assert hint in (err.hint or ""), err.render()


def test_errors_inside_an_architecture_point_into_it():
    """Renaming the weights leaves the architecture's equations referring to W1."""
    err = _reject("model t\narchitecture mlp\nweights V1[d], V2[c]\nactivation linear\n"
                  "loss squared\nregularize beta = 1\n")
    assert type(err) is SemanticError and "'W1' is not declared" in err.message
    assert err.source.path == "<architecture mlp>" and err.line == 8
    assert err.render().startswith("<architecture mlp>:8:")
    assert "layer   A[n] = X[n, i] * W1[i]" in err.render()
    assert "comes from 'architecture mlp' (line 2 of case.bm)" in err.hint


def test_caret_stays_under_its_column_with_tabs_and_control_characters():
    text = BASE.replace(L, "layer\tA[n] = X[n, i] $ W1[i]").replace("model t", "model t\f")
    err = _reject(text)
    assert (err.line, err.column) == (6, 22)
    line, caret = err.render().splitlines()[1:3]
    assert line[caret.index("^")] == "$"
