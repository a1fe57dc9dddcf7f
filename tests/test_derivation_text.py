"""The derivation as a researcher reads it: sections citing the paper's equations (Sahiner et
al., ICLR 2024), symbolic vs numeric sizes, LaTeX / Jupyter output, `bmdsl derive`, and the
theorems listed exactly when their hypotheses hold."""
import re

import numpy as np
import pytest

import bmdsl
from bmdsl.cli import main
from bmdsl.bind.datasets import save_data
from bmdsl.derive.dnorm import PAIR_TABLE
from test_derivation_helpers import ATTENTION, MLP, model, rng

CNN = open("models/cnn.bm").read()
ACTS = ("linear", "gated_relu", "relu")
# (convex program, BM factorization) equation numbers, read from the paper for each
# architecture and activation; "(3), (4)": the ReLU MLP program and its constrained norm.
PAPER = {("mlp", "linear"): ("(2)", "(17)"), ("mlp", "gated_relu"): ("(5)", "(18)"),
         ("mlp", "relu"): ("(3), (4)", "(19)"),
         ("cnn", "linear"): ("(127)", "(125)"), ("cnn", "gated_relu"): ("(130)", "(126)"),
         ("cnn", "relu"): ("(23)", "(24)"),
         ("attention", "linear"): ("(104)", "(26)"),
         ("attention", "gated_relu"): ("(135)", "(133)"), ("attention", "relu"): ("(136)", "(134)")}


def derive(family, act, **kw):
    if family == "cnn":
        return bmdsl.parse(CNN).with_activation(act).derive()
    return model({"mlp": MLP, "attention": ATTENTION}[family], act, **kw).derive()


def section(derivation, title):
    return next(s for s in derivation.sections if s.title == title)


@pytest.mark.parametrize("family, act", sorted(PAPER))
def test_sections_cite_the_papers_equations(family, act):
    d = derive(family, act)
    assert d.family == family
    convex, bm = PAPER[(family, act)]
    assert section(d, "convex program").reference.startswith(convex)
    assert section(d, "Burer-Monteiro factorization").reference.startswith(bm)
    assert any(line.startswith(f"paper {convex}") for line, _ in section(d, "convex program").lines)
    network = {"mlp": "(1)", "cnn": "(22)", "attention": "(8)"}[family]
    assert section(d, "two-layer network").reference == network
    cert = section(d, "optimality certificate").reference
    assert "(20)" in cert and (("(25)" in cert) == (family == "cnn"))   # Corollary 3.8
    titles = [s.title for s in d.sections]
    assert ("ReLU cones" in titles) == (act == "relu")
    assert ("activation patterns" in titles) == (act != "linear")


def test_mlp_text_shows_the_generic_networks():
    text = derive("mlp", "gated_relu").text()
    for line in ("A_j[n] = sum_{i} X[n, i] * W1_j[i]",
                 "Yhat[n, o] = sum_j act(A_j)[n] * W2_j[o]",
                 "Yhat[n, o] = sum_k sum_{i} X[n, i] * D_k[n] * Z_k[i, o]",
                 "Yhat[n, o] = sum_k sum_j sum_{i} X[n, i] * D_k[n] * u_kj[i] * v_kj[o]",
                 "G_k[i, o] = sum_{n} X[n, i] * D_k[n] * R[n, o]",
                 "paper (5): Yhat = sum_k D_k X Z_k",
                 "||Z||_D = ||Z||_* (nuclear norm)"):
        assert line in text, line


def test_relu_text_has_the_cone():
    text = derive("attention", "relu").text()
    assert "K_k = {u : (2 D_k - 1) * A(u) >= 0},  A(u)[n, s, t] = sum_{e,f} X[n, s, e] * " \
           "u[e, f] * X[n, t, f]" in text
    assert "subject to (2 D_k - 1) * A(u_kj) >= 0 for every k, j" in text


def test_other_norm_pairs_are_described():
    text = derive("mlp", "linear", C="l1", R="l2").text()
    assert "||Z||_D = sum_i ||row_i(Z)||_R" in text and "||G||_D* = max_i ||row_i(G)||_R*" in text
    assert "Theorem 3.5" not in text


def test_sizes_symbolic_without_data_numeric_after_binding():
    d = derive("attention", "gated_relu")
    assert "p = d^2, q = c*d" in d.text()
    g = rng(50)
    b = d.bind(dict(X=g.standard_normal((2, 3, 2)), Y=g.standard_normal((2, 3, 3))))
    text = d.at(b.sizes, b.P).text()
    assert "p = 4, q = 6" in text and f"k = 1..P = {b.P}" in text
    assert "p = d^2" not in text


# -- LaTeX -------------------------------------------------------------------------------
MATHJAX = {"begin", "end", "textbf", "text", "quad", "sum", "hat", "sigma", "max", "min",
           "left", "right", "tfrac", "frac", "beta", "mathcal", "mathbb", "mathrm", "in",
           "times", "top", "odot", "ge", "le", "nabla", "textstyle", "operatorname", "otimes",
           "dots", "mathbf", "infty", "lfloor", "rfloor", "cdot", "_", "{", "}", "|", ",", " ",
           "\\"}


def balanced(tex: str) -> bool:
    depth = 0
    for token in re.findall(r"\\[{}]|[{}]", tex):
        if token in ("{", "}"):
            depth += 1 if token == "{" else -1
            if depth < 0:
                return False
    return depth == 0


@pytest.mark.parametrize("family, act", sorted(PAPER))
def test_latex_is_well_formed(family, act):
    d = derive(family, act)
    for tex in (d.latex(), d._repr_latex_()):
        assert balanced(tex)
        assert tex.count(r"\left") == tex.count(r"\right")
        commands = set(re.findall(r"\\([A-Za-z]+|.)", tex))
        assert commands <= MATHJAX, commands - MATHJAX
    assert d.latex().startswith(r"\begin{align*}") and d.latex().endswith(r"\end{align*}")
    repr_ = d._repr_latex_()
    assert repr_.startswith(r"$$\begin{aligned}") and repr_.endswith(r"\end{aligned}$$")
    assert isinstance(repr_, str) and "@data" not in repr_


# -- which architecture: structural, not by name ------------------------------------------
RENAMED_MLP = """model renamed
input   Inp[b, f]
target  T[b, k]
units   m = 2
weights Wa[f], Wb[k]
layer   H1[b] = Wa[j] * Inp[b, j]
output  Out[b, q] = Wb[q] * act(H1)[b]
activation gated_relu(patterns = 3)
loss    squared
regularize beta = 0.1, C = l2, R = l2
"""


def test_family_is_recognized_structurally():
    d = bmdsl.parse(RENAMED_MLP).derive()
    assert d.family == "mlp"
    assert section(d, "convex program").reference.startswith("(5)")
    assert "Out[b, q] = sum_k sum_{j} Inp[b, j] * D_k[b] * Z_k[j, q]" in d.text()
    assert "H1_j[b] = sum_{j} Wa_j[j] * Inp[b, j]" in d.text()
    builtin = bmdsl.parse("model t\narchitecture attention\nactivation linear\nloss squared\n"
                          "regularize beta = 1, C = l2, R = l2\n").derive()
    assert builtin.family == "attention"
    other = bmdsl.parse(MLP.replace("act(A)[n] * W2[o]", "2 * act(A)[n] * W2[o]")
                        .format(act="linear", m=2, C="l2", R="l2")).derive()
    assert other.family is None                              # a scaled output is not (1)
    assert section(other, "convex program").reference == "Lemma 3.1, (16)"


# -- theorems ----------------------------------------------------------------------------
def names(theorems):
    return {t.reference.split(",")[0]: t.holds for t in theorems}


@pytest.mark.parametrize("m, holds", [(5, True), (4, False)])
def test_theorem_3_3_holds_iff_m_at_least_p_plus_q(m, holds):
    d = derive("mlp", "gated_relu", m=m)                     # p + q = d + c = 2 + 3
    assert names(d.theorems)["Theorem 3.3"] is None          # symbolic: depends on sizes
    g = rng(51)
    b = d.bind(dict(X=g.standard_normal((6, 2)), Y=g.standard_normal((6, 3))))
    assert b.p + b.q == 5
    assert names(b.theorems())["Theorem 3.3"] is holds
    assert ("Theorem 3.3" in names(d.applicable_theorems(b.sizes))) is holds
    assert f"m = {m} {'>=' if holds else '<'} c + d = 5" in d.at(b.sizes).text()


@pytest.mark.parametrize("pair", sorted(PAIR_TABLE))
@pytest.mark.parametrize("act", ACTS)
def test_theorem_3_5_only_for_l2_l2_without_cones(pair, act):
    d = derive("mlp", act, C=pair[0], R=pair[1])
    assert ("Theorem 3.5" in names(d.theorems)) == (pair == ("l2", "l2") and act != "relu")


@pytest.mark.parametrize("m, holds", [(10, True), (9, False)])
def test_corollary_3_10_for_linear_self_attention(m, holds):
    g = rng(52)
    d_, c_ = 2, 3
    data = dict(X=g.standard_normal((2, 3, d_)), Y=g.standard_normal((2, 3, c_)))
    assert d_ ** 2 + d_ * c_ == 10
    b = derive("attention", "linear", m=m).bind(data)
    assert names(b.theorems())["Corollary 3.10"] is holds
    assert names(b.theorems())["Theorem 3.3"] is holds
    for act in ("gated_relu", "relu"):
        assert "Corollary 3.10" not in names(derive("attention", act, m=m).theorems)
    assert "Corollary 3.10" not in names(derive("mlp", "linear", m=m).theorems)


# -- the command line ---------------------------------------------------------------------
@pytest.fixture
def mlp_file(tmp_path):
    path = tmp_path / "mlp.bm"
    path.write_text(MLP.format(act="gated_relu(patterns = 4)", m=3, C="l2", R="l2"))
    return path


def test_cli_derive_text_and_latex(mlp_file, capsys):
    assert main(["derive", str(mlp_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("derivation of model mlp") and "4. convex program  [(5)" in out
    assert main(["derive", str(mlp_file), "--latex", "--activation", "relu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(r"\begin{align*}") and "(19)" in out and balanced(out)


def test_cli_derive_with_data(mlp_file, tmp_path, capsys):
    g = rng(53)
    save_data(tmp_path / "d.npz", dict(X=g.standard_normal((6, 2)), Y=g.standard_normal((6, 3))))
    assert main(["derive", str(mlp_file), "--data", str(tmp_path / "d.npz"), "--m", "5"]) == 0
    out = capsys.readouterr().out
    assert "p = 2, q = 3" in out and "Theorem 3.3: holds" in out
    save_data(tmp_path / "bad.npz", dict(X=np.full((6, 2), np.nan), Y=np.ones((6, 3))))
    assert main(["derive", str(mlp_file), "--data", str(tmp_path / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert "data error" in err and "NaN" in err and "Traceback" not in err
