"""Property: no mutation of a valid model makes the front end fail with anything but a
`BmdslError` (the only exceptions a user may see; the CLI renders them without a traceback).

Valid models are cut into tokens; hypothesis drops, duplicates, swaps and replaces tokens,
and `bmdsl.parse` must either accept the result or raise a `BmdslError` subclass that
renders (file:line:col) without failing.
"""
from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bmdsl
from bmdsl.errors import BmdslError
from bmdsl.syntax import KEYWORDS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p.read_text() for p in sorted((ROOT / "models").glob("*.bm"))]
SOURCES += [p.read_text() for p in sorted((ROOT / "bmdsl" / "architectures").glob("*.bm"))]

# Whitespace runs are tokens too, so a mutation can join two statements or split one.
TOKEN = re.compile(r"\s+|#[^\n]*|[0-9]+x[0-9]+|[0-9.]+(?:e-?[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*|.")
TOKENIZED = [TOKEN.findall(text) for text in SOURCES]

# Replacement tokens: every keyword and registry name, numbers at the edges of what is
# accepted, punctuation, and characters the grammar has no use for.
VOCAB = sorted(set(KEYWORDS) | {
    "linear", "relu", "gated_relu", "exact", "patterns", "seed", "gates", "squared", "huber",
    "cross_entropy", "logistic", "delta", "beta", "C", "R", "l1", "l2", "linf", "average",
    "global", "max", "im2col", "kernel", "stride", "padding", "mlp", "cnn", "attention",
    "0", "1", "-1", "0.0", "1e-3", "1e999", "-1e999", "99999999999999999999", "2x2", "0x3",
    "10", "^", "*", "+", "-", "=", ",", "(", ")", "[", "]", "[]", "()", "\n", " ", "\t",
    "$", "é", "\x00", "#", "'", '"', ";", ".", "\r",
})


@st.composite
def mutated(draw) -> str:
    tokens = list(draw(st.sampled_from(TOKENIZED)))
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["drop", "duplicate", "swap", "replace"]))
        if op == "drop":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens[i] = draw(st.one_of(st.sampled_from(VOCAB),
                                       st.sampled_from([t for t in tokens if t.strip()])))
    return "".join(tokens)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(mutated())
def test_mutations_raise_only_bmdsl_errors(text):
    try:
        model = bmdsl.parse(text, path="mutant.bm")
    except BmdslError as exc:
        rendered = exc.render()
        assert rendered.startswith("mutant.bm")
        assert type(exc).kind in rendered
        if exc.span is not None and exc.source is not None and exc.source.path == "mutant.bm":
            assert "^" in rendered
        return
    # an accepted mutant is a complete model: its summary must render too
    assert model.summary().startswith("model ")
