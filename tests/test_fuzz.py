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
from bmdsl.core.errors import BmdslError
from bmdsl.front.syntax import KEYWORDS

ROOT = Path(__file__).resolve().parent.parent
TAIL = ("\nactivation relu(patterns = 4, seed = 1)\nloss huber(delta = 2)\n"
        "regularize beta = 1, C = l1\n")
SOURCES = [p.read_text() for p in sorted((ROOT / "models").glob("*.bm"))]
SOURCES += [p.read_text() + TAIL for p in sorted((ROOT / "bmdsl" / "architectures").glob("*.bm"))]
SOURCES += [  # constructs the model files do not use: sizes, gates, scalar output, pooling
    "model gated\nsize d = 3\ninput X[n, d], G[g, d]\ntarget Y[n]\nunits m = 2\n"
    "weights W1[d], W2\nlayer A[n] = 2 * X[n, i] * W1[i] - X[n, i]^2 * W1[i]\n"
    "output Yhat[n] = act(A)[n] * W2\nactivation gated_relu(gates = G)\n"
    "loss logistic\nregularize beta = 0.5, C = linf, R = l1\n",
    "model pooled\ninput I[n, ch, height, width], Q[a, k]\ntarget Y[n, c]\n"
    "patches X[n, k, h] = im2col(I, kernel = 2, stride = 2)\nunits m = 3\n"
    "weights W1[h], W2[c, a]\nlayer A[n, r] = X[n, r, i] * W1[i]\n"
    "output Yhat[n, o] = W2[o, b] * Q[b, r] * act(A)[n, r]\nactivation relu(patterns = exact)\n"
    "loss cross_entropy\nregularize beta = 1e-2\n",
    "model builtin\narchitecture cnn\npool P[a, k] = global\nunits m = 2\n"
    "activation linear\nloss squared\nregularize beta = 1, C = l2, R = l2\n",
]

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


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAMES = {t for t in VOCAB if NAME.fullmatch(t)}


@st.composite
def mutated(draw) -> str:
    tokens = list(draw(st.sampled_from(TOKENIZED)))
    for _ in range(draw(st.integers(1, 3))):
        # mutate significant tokens only: blanks and comments would mostly be no-ops
        significant = [k for k, t in enumerate(tokens) if t.strip() and not t.startswith("#")]
        if not significant:
            break
        i = draw(st.sampled_from(significant))
        # 'rename' first: hypothesis favours early choices, and renames mostly keep the
        # text grammatical, so they reach the semantic checks
        op = draw(st.sampled_from(["rename", "drop", "duplicate", "swap", "replace"]))
        if op == "rename" and NAME.fullmatch(tokens[i]) and tokens[i] not in KEYWORDS:
            names = sorted(({t for t in tokens if NAME.fullmatch(t)} | NAMES) - set(KEYWORDS))
            tokens[i] = draw(st.sampled_from(names))
        elif op in ("drop", "rename"):
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.sampled_from(significant))
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
    # an accepted mutant is a complete model: its summary renders under every activation
    for activation in ("linear", "gated_relu", "relu"):
        assert model.with_activation(activation).summary().startswith("model ")


def test_the_seeds_are_valid_models():
    """Mutants start from valid models, so each mutation is what breaks them."""
    for text in SOURCES:
        assert bmdsl.parse(text).summary()


# -- adversarial classes (the probe of issue 18): deep nesting, long sums, huge integers, ----
# huge exponents, binary files, huge texts, many axes. Property: `bmdsl.parse` / `bmdsl.load`
# and the check raise nothing but a BmdslError, and its rendering stays short.
MLP = (ROOT / "models" / "mlp.bm").read_text()
LAYER = "layer   A[n] = X[n, i] * W1[i]"
TERM = "X[n, i] * W1[i]"
# places a whole number (or a number) can go: (old text, template)
INT_SITES = [("m = 5", "m = {}"), ("patterns = 100", "patterns = {}"), ("seed = 0", "seed = {}"),
             ("beta = 1e-3", "beta = {}"), ("input   X[n, d]", "size d = {}\ninput   X[n, d]"),
             (LAYER, "layer   A[n] = (X[n, i] * W1[i])^{}"),
             (LAYER, "layer   A[n] = {} * X[n, i] * W1[i]")]
BASES = ["0", "1", "-1", "0.5", "2", "-10", "1e-5", "1e300", "(1 - 1)", "X[n, j]",
         "(2 * X[n, j])"]


def _layer(rhs: str) -> str:
    return MLP.replace(LAYER, "layer   A[n] = " + rhs)


def _wide(k: int, where: str) -> str:
    ds, idx = ", ".join(f"d{i}" for i in range(k)), ", ".join(f"i{i}" for i in range(k))
    if where == "layer":
        return (f"model wide\ninput X[n, {ds}]\ntarget Y[n, c]\nunits m = 2\n"
                f"weights W1[{ds}], W2[c]\nlayer A[n] = X[n, {idx}] * W1[{idx}]\n"
                f"output Yhat[n, o] = act(A)[n] * W2[o]\nactivation relu\nloss squared\n"
                f"regularize beta = 0.1\n")
    return (f"model wide\ninput X[n, d], Q[{ds}]\ntarget Y[n, c]\nunits m = 2\n"
            f"weights W1[d], W2[c]\nlayer A[n] = X[n, i] * W1[i]\n"
            f"output Yhat[n, o] = act(A)[n] * Q[{idx}] * W2[o]\nactivation relu\n"
            f"loss squared\nregularize beta = 0.1\n")


@st.composite
def adversarial(draw) -> str | bytes:
    kind = draw(st.sampled_from(["deep", "sum", "integer", "exponent", "binary", "huge",
                                 "axes"]))
    if kind == "deep":
        depth = draw(st.integers(0, 2500))
        return _layer(draw(st.sampled_from([
            "-" * depth + TERM, "(" * depth + TERM + ")" * depth,
            "(" * depth + TERM + ")^1" * depth, "- (" * depth + TERM + ")" * depth])))
    if kind == "sum":
        terms = draw(st.integers(1, 700))
        op = draw(st.sampled_from([" + ", " - ", " + 0 * "]))
        return _layer(op.join([TERM] * terms))
    if kind == "integer":
        old, template = draw(st.sampled_from(INT_SITES))
        digits = draw(st.integers(1, 6000))
        number = draw(st.sampled_from(["9", "1", "0"])) * digits
        return MLP.replace(old, template.format(number + draw(st.sampled_from(["", "e-400",
                                                                              ".5", "e5"]))))
    if kind == "exponent":
        base = draw(st.sampled_from(BASES))
        exponent = draw(st.one_of(st.integers(0, 70), st.integers(0, 2000),
                                  st.integers(0, 10 ** 30)))
        return _layer(f"{base}^{exponent} * {TERM}")
    if kind == "binary":
        data = MLP.encode()
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    if kind == "huge":
        from bmdsl.core.limits import MAX_TEXT_BYTES, MAX_TOKENS
        return draw(st.sampled_from([
            MLP + "#" * (MAX_TEXT_BYTES - len(MLP) + draw(st.integers(-2, 2))),
            MLP.replace("model mlp", "model mlp " + "$" * MAX_TEXT_BYTES),
            MLP + "\nsize " + ", ".join(["s"] * (MAX_TOKENS // 2 + draw(st.integers(-5, 5)))),
            MLP.replace("model mlp", "model " + "a" * (MAX_TEXT_BYTES - len(MLP) - 2))]))
    return _wide(draw(st.integers(1, 70)), draw(st.sampled_from(["layer", "output"])))


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large],
          derandomize=True)
@given(adversarial())
def test_adversarial_inputs_raise_only_bmdsl_errors(case):
    import tempfile
    try:
        if isinstance(case, bytes):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "mutant.bm"
                path.write_bytes(case)
                model = bmdsl.load(path)
        else:
            model = bmdsl.parse(case, path="mutant.bm")
    except BmdslError as exc:
        rendered = exc.render()
        assert "mutant.bm" in rendered.splitlines()[0]
        assert len(rendered) < 3000, rendered[:3000]
        rendered.encode("utf-8")  # printable: no lone surrogates reach the terminal
        return
    assert model.summary().startswith("model ")
