"""Checked models: every shipped model, the built-in architectures against their spelled-out
form, the splicing rule, each language construct, and the summary of `bmdsl check`."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sympy

import bmdsl
from bmdsl.front import ast
from bmdsl.core.source import Source, Span
from model_texts import attention, cnn, mlp

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*.bm"))
ACTIVATIONS = ["linear", "gated_relu", "relu"]
TAIL = "activation gated_relu(patterns = 16, seed = 0)\nloss squared\n" \
       "regularize beta = 1e-2, C = l2, R = l2\n"


def structure(x):
    """A checked model as nested tuples, without spans, sources or the architecture's name:
    what must agree between `architecture X` and its spelled-out form."""
    if isinstance(x, (Span, Source)):
        return None
    if dataclasses.is_dataclass(x):
        return (type(x).__name__,) + tuple(
            (f.name, structure(getattr(x, f.name))) for f in dataclasses.fields(x)
            if f.name not in ("span", "source", "architecture"))
    if isinstance(x, (tuple, list)):
        return tuple(structure(v) for v in x)
    return x


# -- every shipped model ------------------------------------------------------------------

def test_the_shipped_models_are_all_here():
    assert {p.name for p in MODELS} >= {"mlp.bm", "mlp_builtin.bm", "cnn.bm", "selfattention.bm"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_model_checks_with_each_activation(path, activation):
    model = bmdsl.load(path).with_activation(activation)
    assert model.activation.name == activation
    assert model.source.path == str(path)
    assert (model.activation.patterns is None) == (activation == "linear")
    summary = model.summary()
    assert summary.startswith(f"model {model.name}")
    assert f"activation:    {activation}" in summary
    if activation == "relu" and model.q == 1:   # scalar output: Pilanci & Ergen 2020, (5)
        assert "exact (ReLU with q = 1" in summary
    elif activation == "relu":  # ReLU with q > 1 and R = l2: the constrained nuclear norm (4)
        assert "NP-hard" in summary or "exact if q" in summary


@pytest.mark.parametrize("name, p, q", [
    ("mlp", "d", "c"), ("cnn", "9*ch", "c*floor(height/2)*floor(width/2)"),
    ("selfattention", "d**2", "c*d"),
])
def test_p_and_q_are_the_flattened_weight_sizes(name, p, q):
    model = bmdsl.load(ROOT / "models" / f"{name}.bm")
    symbols = {s.name: s.symbol for s in model.sizes}
    assert sympy.simplify(model.p - sympy.sympify(p, locals=symbols)) == 0
    assert sympy.simplify(model.q - sympy.sympify(q, locals=symbols)) == 0


def test_mlp_equations_as_checked():
    model = bmdsl.load(ROOT / "models" / "mlp.bm")
    (term,) = model.layer.terms
    assert term.coef == 1.0
    assert [(f.name, f.indices, f.role) for f in term.factors] == [
        ("X", ("n", "i"), "data"), ("W1", ("i",), "first_weight")]
    assert model.layer.indices == ("n",) and model.layer.dims == ("n",)
    assert model.layer.size_of("i") == "d"  # summed: absent from the left side
    (out,) = model.output.terms
    assert [(f.name, f.role) for f in out.factors] == [("A", "act"), ("W2", "second_weight")]
    assert model.output.dims == ("n", "c") == model.target.dims


# -- built-ins equal their spelled-out form -----------------------------------------------

SPELLED = {
    "cnn": cnn("m", align=8),
    "attention": attention("m", align=8),
    "mlp": mlp("m", m=8, align=8),
}


@pytest.mark.parametrize("arch", sorted(SPELLED))
def test_builtin_equals_spelled_out(arch):
    builtin = bmdsl.parse(f"model m\narchitecture {arch}\n" + TAIL)
    spelled = bmdsl.parse(SPELLED[arch] + TAIL)
    assert builtin.architecture == arch and spelled.architecture is None
    assert structure(builtin) == structure(spelled)


@pytest.mark.parametrize("arch", sorted(SPELLED))
def test_the_comparison_sees_a_different_letter_or_width(arch):
    """The structural comparison can fail: one renamed index or another width differs."""
    builtin = structure(bmdsl.parse(f"model m\narchitecture {arch}\n" + TAIL))
    relettered = SPELLED[arch].replace("W1[i]", "W1[j]").replace("X[n, r, i]", "X[n, r, j]") \
        .replace("X[n, i]", "X[n, j]").replace("W1[e, f]", "W1[u, f]") \
        .replace("X[n, s, e]", "X[n, s, u]")
    assert structure(bmdsl.parse(relettered + TAIL)) != builtin
    wider = SPELLED[arch].replace("units   m = ", "units   m = 1")
    assert structure(bmdsl.parse(wider + TAIL)) != builtin


@pytest.mark.parametrize("builtin, spelled", [
    ("mlp_builtin.bm", "mlp.bm"),
    ("model cnn\narchitecture cnn\n" + TAIL.replace("16", "32"), "cnn.bm"),
    ("model selfattention\narchitecture attention\n" + TAIL, "selfattention.bm"),
])
def test_builtin_equals_the_shipped_model(builtin, spelled):
    a = bmdsl.load(ROOT / "models" / builtin) if builtin.endswith(".bm") else bmdsl.parse(builtin)
    b = bmdsl.load(ROOT / "models" / spelled)
    assert structure(a) == structure(b)


# -- the splicing rule --------------------------------------------------------------------

def test_a_user_statement_replaces_the_architectures():
    base = bmdsl.parse("model m\narchitecture mlp\n" + TAIL)
    for units in ("units m = 3", "units k = 3"):  # units are once per model, whatever the name
        model = bmdsl.parse(f"model m\narchitecture mlp\n{units}\n" + TAIL)
        assert model.units.value == 3 and model.units.span.file == "<string>"
        assert structure(dataclasses.replace(model, units=base.units)) == structure(base)
    gated = bmdsl.parse("model m\narchitecture mlp\ninput X[n, d], G[g, d]\n" +
                        TAIL.replace("patterns = 16, seed = 0", "gates = G"))
    assert [t.name for t in gated.inputs] == ["X", "G"] and gated.activation.gates == "G"
    pooled = bmdsl.parse("model m\narchitecture cnn\npool P[a, k] = global\n" + TAIL)
    assert pooled.pools[0].builder == "global" and pooled.symbolic("a") == 1


def test_spliced_statements_remember_their_architecture():
    model = bmdsl.load(ROOT / "models" / "mlp_builtin.bm")
    assert model.layer.span.file == "<architecture mlp>"
    assert model.units.span.file == str(ROOT / "models" / "mlp_builtin.bm")
    summary = model.summary()
    assert "line 8 of architecture mlp" in summary  # the layer equation
    assert "(line 4)" in summary  # units m = 5, in the user's file


# -- language constructs ------------------------------------------------------------------

MLP = (ROOT / "models" / "mlp.bm").read_text()


def test_any_number_of_inputs():
    text = MLP.replace("input   X[n, d]", "input X[n, d], Z[n, d], s") \
        .replace("X[n, i] * W1[i]", "X[n, i] * W1[i] - 0.5 * s * Z[n, j] * W1[j]")
    model = bmdsl.parse(text)
    assert [t.name for t in model.inputs] == ["X", "Z", "s"]
    assert [t.coef for t in model.layer.terms] == [1.0, -0.5]
    assert model.layer.terms[1].factors[0].name == "s" and model.inputs[2].dims == ()


def test_scalar_output_and_size_statements():
    text = """# scalar output: W2 has no axes, q = 1
model scalar
size d = 3            # fixed here, checked against the data
input X[n, d]
target Y[n]
units m = 2
weights W1[d], W2
layer A[n] =
    X[n, i]
    * W1[i]            # a statement may span lines
output Yhat[n] = act(A)[n] * W2
activation relu(patterns = exact)
loss logistic
regularize beta = 0.5, C = l1, R = l1
"""
    model = bmdsl.parse(text)
    assert model.q == 1 and model.p == 3 and model.size("d").value == 3
    assert model.activation.patterns == "exact"
    assert (model.loss.name, model.regularizer.C, model.regularizer.R) == ("logistic", "l1", "l1")
    assert "exact (ReLU with R = l1" in model.summary()


@pytest.mark.parametrize("loss, params", [
    ("squared", ()), ("cross_entropy", ()), ("logistic", ()),
    ("huber(delta = 0.5)", (("delta", 0.5),)), ("huber(2)", (("delta", 2.0),)),
])
def test_losses(loss, params):
    model = bmdsl.parse(MLP.replace("loss       squared", f"loss {loss}"))
    assert model.loss.name == loss.split("(")[0] and model.loss.params[:len(params)] == params


def test_regularizer_defaults_and_norms():
    model = bmdsl.parse(MLP.replace("beta = 1e-3, C = l2, R = l2", "beta = 2, R = linf"))
    assert (model.regularizer.beta, model.regularizer.C, model.regularizer.R) == (2.0, "l2", "linf")


@pytest.mark.parametrize("activation, source", [
    ("linear", "none (linear)"),
    ("gated_relu(patterns = 7, seed = 3)", "7 sampled (seed 3)"),
    ("relu(patterns = exact)", "exact enumeration"),
    ("relu(gates = G)", "gates given as data: input 'G'"),
])
def test_activation_and_pattern_source(activation, source):
    text = MLP.replace("input   X[n, d]", "input X[n, d], G[g, d]") \
        .replace("gated_relu(patterns = 100, seed = 0)", activation)
    if "gates" not in activation:
        text = text.replace(", G[g, d]", "")
    model = bmdsl.parse(text)
    assert source in model.activation.pattern_source
    assert source in model.summary()


def test_pooling_by_a_user_matrix():
    """An input matrix over the patch positions replaces a built pooling (docs/language.md, pooling)."""
    text = (ROOT / "models" / "cnn.bm").read_text() \
        .replace("pool    P[a, k] = average(2x2)", "input Q[a, k]").replace("P[b, r]", "Q[b, r]")
    model = bmdsl.parse(text)
    assert model.pools == () and [t.name for t in model.inputs] == ["I", "Q"]
    assert model.size("k").formula is not None  # still derived by the patches
    assert model.size("a").origin == "bound by data: input Q axis 0"


def test_patches_and_pooling_derive_sizes():
    model = bmdsl.parse((ROOT / "models" / "cnn.bm").read_text().replace(
        "kernel = 3, stride = 1, padding = 1", "kernel = 2, stride = 2"))
    H, W, ch = (sympy.Symbol(n, positive=True, integer=True) for n in ("height", "width", "ch"))
    rows, cols = sympy.floor((H - 2) / 2) + 1, sympy.floor((W - 2) / 2) + 1
    assert sympy.simplify(model.symbolic("k") - rows * cols) == 0
    assert model.symbolic("h") == 4 * ch
    assert sympy.simplify(model.symbolic("a") - sympy.floor(rows / 2) * sympy.floor(cols / 2)) == 0
    (patch,) = model.patches
    assert (patch.images, patch.kernel, patch.stride, patch.padding) == ("I", 2, 2, 0)


def test_override_helpers_validate():
    model = bmdsl.load(ROOT / "models" / "mlp.bm")
    assert model.with_units(3).units.value == 3
    assert model.with_activation("relu", "exact").activation.patterns == "exact"
    for bad in (lambda: model.with_activation("tanh"), lambda: model.with_activation("relu", 0),
                lambda: model.with_units(0), lambda: model.with_activation("relu", seed=-1)):
        with pytest.raises(bmdsl.SemanticError):
            bad()


# -- the API: parse, load, check ----------------------------------------------------------

def test_parse_unchecked_then_check():
    program = bmdsl.parse(MLP, check=False)
    assert isinstance(program, ast.Program) and program.name == "mlp"
    assert structure(bmdsl.check(program)) == structure(bmdsl.parse(MLP))


def test_load_equals_parse_with_the_path():
    path = ROOT / "models" / "cnn.bm"
    assert bmdsl.load(path) == bmdsl.parse(path.read_text(), path=str(path))


def test_models_are_frozen():
    model = bmdsl.load(ROOT / "models" / "mlp.bm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.layer.terms[0].factors[0].name = "Z"


def test_summary_lists_what_check_promises():
    summary = bmdsl.load(ROOT / "models" / "cnn.bm").summary()
    for line in ("  n ", "bound by data: input I axis 0", "k       = height*width",
                 "derived by patches X", "units:         m = 4", "W1[h]  (p = 9*ch)",
                 "W2[c, a]  (q = c*floor(height/2)*floor(width/2))",
                 "P = average(2x2) over the positions k",
                 "A[n, r] = sum_{i} X[n, r, i] * W1[i]",
                 "Yhat[n, o] = sum_{b, r} W2[o, b] * P[b, r] * act(A)[n, r]",
                 "patterns: 32 sampled (seed 0)", "loss:          squared",
                 "beta = 0.01, C = l2, R = l2", "convex:        exact"):
        assert line in summary, line


def test_every_model_in_the_language_docs_checks():
    """docs/language.md: each ```bm block that is a whole model checks; each fragment is
    valid syntax once put in a model."""
    import re
    blocks = re.findall(r"```bm\n(.*?)```", (ROOT / "docs" / "language.md").read_text(), re.S)
    whole = [b for b in blocks if re.match(r"(#[^\n]*\n)*model ", b)]
    assert len(whole) >= 4
    for block in whole:
        bmdsl.parse(block).summary()
    for block in blocks:
        if block not in whole:
            bmdsl.parse("model fragment\n" + block, check=False)


def test_mlp_scalar_architecture_is_the_scalar_mlp_family():
    """The shipped `mlp_scalar` architecture is the paper's MLP family with one output; the
    theorem matcher reads its references from the shipped architectures."""
    from bmdsl.derive.theorems import paper_family
    model = bmdsl.parse("model s\narchitecture mlp_scalar\nactivation relu(patterns = 4)\n"
                        "loss squared\nregularize beta = 1e-2, C = l2, R = l2\n")
    assert model.target.dims == ("n",) and paper_family(model) == "mlp"
    renamed = bmdsl.parse("model s\ninput X[n, d]\ntarget Y[n]\nunits m = 2\nweights W1[d], W2\n"
                          "layer A[n] = X[n, i] * W1[i] + X[n, i] * W1[i]\n"
                          "output Yhat[n] = act(A)[n] * W2\nactivation linear\nloss squared\n"
                          "regularize beta = 1, C = l2, R = l2\n")
    assert paper_family(renamed) is None        # two terms: not the paper's MLP
