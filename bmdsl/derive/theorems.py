"""Which of the paper's results apply to a model, at what threshold, and in which explicit form.

Each theorem states its hypothesis as a predicate over the model (and the sizes, once data
is bound); `holds` is True, False, or None when it depends on sizes not yet bound.

`paper_family(model)` recognizes the paper's architectures *structurally*: the model's two
equations form the same tensor network (graph isomorphism, networkx) as a built-in
architecture, whatever the tensor and index names. It only selects which of the paper's
explicit formulas and equation numbers (Sahiner et al. 2024) are quoted beside the generic derivation
(`paper_forms`); the derivation itself never branches on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import sympy

from ..atoms.pairs import NormPair


@dataclass(frozen=True)
class Theorem:
    name: str
    reference: str  # the paper's numbering
    statement: str
    hypothesis: str
    holds: bool | None
    detail: str


def size_text(expr) -> str:
    """A size formula as plain text: `c*d + d^2`."""
    return sympy.sstr(sympy.sympify(expr)).replace("**", "^")


def _compare(m: int, threshold, sizes: dict | None) -> tuple[bool | None, str]:
    value = threshold
    if sizes:
        value = threshold.subs({sympy.Symbol(k, positive=True, integer=True): v
                                for k, v in sizes.items()})
    if value.is_number:
        ok = m >= int(value)
        return ok, f"m = {m} {'>=' if ok else '<'} {size_text(threshold)} = {int(value)}"
    return None, f"m = {m}; the threshold is a number once data is bound"


def is_self_attention(model) -> bool:
    """Structural test: in some first-layer term the same data tensor appears on both sides
    of the weight (X W1 X^T), as in self-attention (eq. (8))."""
    for term in model.layer.terms:
        data = [f.name for f in term.factors if f.role == "data"]
        if any(data.count(name) >= 2 for name in data):
            return True
    return False


# -- the paper's architectures, recognized structurally ------------------------------------
# the families' reference models are the shipped architectures (bmdsl/architectures/), read
# with a neutral tail; `mlp_scalar` is the MLP with one output, the same family
_TAIL = "activation linear\nloss squared\nregularize beta = 1, C = l2, R = l2\n"
_REFERENCES = (("mlp", "mlp"), ("mlp", "mlp_scalar"), ("cnn", "cnn"), ("attention", "attention"))

FAMILY_NAMES = {"mlp": "two-layer MLP, eq. (1)",
                "cnn": "two-layer CNN with linear pooling, eq. (22)",
                "attention": "one block of multi-head self-attention, eq. (8)"}
# generic references when the architecture is not one of the paper's: convex, BM
def _graph(model) -> nx.Graph:
    """The two equations as one labelled graph: tensor occurrences, indices (free ones by
    position), terms (by coefficient) and data tensors (shared by their occurrences)."""
    g = nx.Graph()
    for eq in (model.layer, model.output):
        for pos, i in enumerate(eq.indices):
            g.add_node((eq.side, "free", i), label=(eq.side, "free", pos))
        for t_no, t in enumerate(eq.terms):
            term = (eq.side, "term", t_no)
            g.add_node(term, label=(eq.side, "term", float(t.coef)))
            for f_no, f in enumerate(t.factors):
                occ = (eq.side, t_no, "factor", f_no)
                g.add_node(occ, label=(f.role,))
                g.add_edge(occ, term, axis=-1)
                if f.role == "data":
                    g.add_node(("data", f.name), label=("data",))
                    g.add_edge(occ, ("data", f.name), axis=-1)
                for axis, i in enumerate(f.indices):
                    idx = (eq.side, "free", i) if i in eq.indices else (eq.side, t_no, "sum", i)
                    g.add_node(idx, label=g.nodes[idx]["label"] if idx in g else (eq.side, "sum"))
                    g.add_edge(occ, idx, axis=axis)
    return g


@lru_cache(maxsize=1)
def _reference_graphs() -> tuple:
    from ..check.loading import parse
    return tuple((family, _graph(parse(f"model ref\narchitecture {name}\n{_TAIL}")))
                 for family, name in _REFERENCES)


def paper_family(model) -> str | None:
    """'mlp', 'cnn' or 'attention' when the model is that architecture of the paper."""
    g = _graph(model)
    same = dict(node_match=lambda a, b: a["label"] == b["label"],
                edge_match=lambda a, b: a["axis"] == b["axis"])
    for family, ref in _reference_graphs():
        if nx.is_isomorphic(g, ref, **same):
            return family
    return None


# -- the paper's explicit forms, by (family, activation): (equation, text, LaTeX) -----------
_F = {
    ("mlp", "network"): ("(1)", "Yhat = sum_j sigma(X w1_j) w2_j^T",
                         r"\hat Y = \textstyle\sum_j \sigma(X w_{1j}) w_{2j}^\top"),
    ("mlp", "linear"): ("(2)", "Yhat = X Z, Z in R^(d x c)", r"\hat Y = X Z"),
    ("mlp", "gated_relu"): ("(5)", "Yhat = sum_k D_k X Z_k, D_k = diag(1[X h_k >= 0])",
                            r"\hat Y = \textstyle\sum_k D_k X Z_k"),
    ("mlp", "relu"): ("(3), (4)", "Yhat = sum_k D_k X Z_k, penalty ||Z_k||_{*,K_k}, "
                      "K_k = (2 D_k - I_n) X",
                      r"\hat Y = \textstyle\sum_k D_k X Z_k,\ \|Z_k\|_{*,\mathcal K_k},\ "
                      r"\mathcal K_k = (2D_k - I_n) X"),
    ("mlp", "bm linear"): ("(17)", "Yhat = X U V^T", r"\hat Y = X U V^\top"),
    ("mlp", "bm gated_relu"): ("(18)", "Yhat = sum_k D_k X U_k V_k^T",
                               r"\hat Y = \textstyle\sum_k D_k X U_k V_k^\top"),
    ("mlp", "bm relu"): ("(19)", "Yhat = sum_k D_k X U_k V_k^T, (2 D_k - I_n) X U_k >= 0",
                         r"\hat Y = \textstyle\sum_k D_k X U_k V_k^\top,\ "
                         r"(2D_k - I_n) X U_k \ge 0"),
    ("cnn", "network"): ("(22)", "Yhat_i = sum_j W2_j P_a sigma(X_i w1_j), W2_j in R^(c x a)",
                         r"\hat y_i = \textstyle\sum_j W_{2j} P_a \sigma(X_i w_{1j})"),
    ("cnn", "linear"): ("(127)", "Yhat_i[c] = trace(P_a X_i Z^(c)), Z^(c) in R^(h x a) the "
                        "c-th block of columns of Z",
                        r"\hat y_i[c] = \operatorname{tr}(P_a X_i Z^{(c)})"),
    ("cnn", "gated_relu"): ("(130)", "Yhat_i[c] = sum_k trace(P_a D_k^(i) X_i Z_k^(c))",
                            r"\hat y_i[c] = \textstyle\sum_k "
                            r"\operatorname{tr}(P_a D_k^{(i)} X_i Z_k^{(c)})"),
    ("cnn", "relu"): ("(23), Theorem 3.6", "Yhat_i[c] = sum_k trace(P_a D_k^(i) X_i Z_k^(c)), "
                      "penalty ||Z_k||_{*,K_k}, K_k = (2 D_k - I) [X_1; ...; X_n]",
                      r"\hat y_i[c] = \textstyle\sum_k "
                      r"\operatorname{tr}(P_a D_k^{(i)} X_i Z_k^{(c)}),"
                      r"\ \|Z_k\|_{*,\mathcal K_k}"),
    ("cnn", "bm linear"): ("(125)", "Yhat_i = sum_j V_j P_a X_i u_j, V_j in R^(c x a)",
                           r"\hat y_i = \textstyle\sum_j V_j P_a X_i u_j"),
    ("cnn", "bm gated_relu"): ("(126)", "Yhat_i = sum_k sum_j V_jk P_a D_k^(i) X_i u_jk",
                               r"\hat y_i = \textstyle\sum_{k,j} V_{jk} P_a D_k^{(i)} X_i u_{jk}"),
    ("cnn", "bm relu"): ("(24), Lemma 3.7", "Yhat_i = sum_k sum_j V_jk P_a D_k^(i) X_i u_jk, "
                         "(2 D_k^(i) - I) X_i u_jk >= 0",
                         r"\hat y_i = \textstyle\sum_{k,j} V_{jk} P_a D_k^{(i)} X_i u_{jk},\ "
                         r"(2D_k^{(i)} - I) X_i u_{jk} \ge 0"),
    ("attention", "network"): ("(8)", "Yhat_i = sum_j sigma(X_i W1_j X_i^T) X_i W2_j",
                               r"\hat Y_i = \textstyle\sum_j \sigma(X_i W_{1j} X_i^\top) "
                               r"X_i W_{2j}"),
    ("attention", "linear"): ("(104)", "Yhat_i = sum_{k,l} G_i[k, l] X_i Z^(k,l), "
                              "G_i = X_i^T X_i, Z^(k,l) in R^(d x c)",
                              r"\hat Y_i = \textstyle\sum_{k,l} G_i[k,l] X_i Z^{(k,l)},\ "
                              r"G_i = X_i^\top X_i"),
    ("attention", "gated_relu"): ("(135)", "Yhat_i = sum_k sum_{a,b} G_ik^(a,b) X_i Z_k^(a,b), "
                                  "G_ik = (X_i (x) I_s)^T D_k^(i) (X_i (x) I_s), D_k from the "
                                  "stacked X_i (x) X_i",
                                  r"\hat Y_i = \textstyle\sum_k \sum_{a,b} G_{ik}^{(a,b)} X_i "
                                  r"Z_k^{(a,b)},\ G_{ik} = (X_i \otimes I_s)^\top D_k^{(i)} "
                                  r"(X_i \otimes I_s)"),
    ("attention", "relu"): ("(136)", "as (135), penalty ||Z_k||_{*,K_k}",
                            r"\text{as (135)},\ \|Z_k\|_{*,\mathcal K_k}"),
    ("attention", "bm linear"): ("(26), (105), Lemma 3.9", "Yhat_i = sum_j X_i U_j X_i^T X_i V_j",
                                 r"\hat Y_i = \textstyle\sum_j X_i U_j X_i^\top X_i V_j"),
    ("attention", "bm gated_relu"): ("(133)", "Yhat_i = sum_k sum_j (diag^-1(D_k^(i)) .* "
                                     "(X_i U_jk X_i^T)) X_i V_jk",
                                     r"\hat Y_i = \textstyle\sum_{k,j} (\operatorname{diag}^{-1}"
                                     r"(D_k^{(i)}) \odot X_i U_{jk} X_i^\top) X_i V_{jk}"),
    ("attention", "bm relu"): ("(134)", "as (133), (2 diag^-1(D_k^(i)) - 1 1^T) .* "
                               "(X_i U_jk X_i^T) >= 0",
                               r"\text{as (133)},\ (2\operatorname{diag}^{-1}(D_k^{(i)}) - "
                               r"\mathbf 1 \mathbf 1^\top) \odot (X_i U_{jk} X_i^\top) \ge 0"),
}


def paper_forms(model) -> dict[str, tuple[str, str, str]]:
    """{'network' | 'convex' | 'bm': (equation numbers, text, LaTeX)} of Sahiner et al. 2024 for this
    model's architecture and activation; empty for an architecture the paper does not treat."""
    family, act = paper_family(model), model.activation.name
    keys = {"network": "network", "convex": act, "bm": f"bm {act}"}
    return {k: _F[(family, v)] for k, v in keys.items() if (family, v) in _F}


# -- the guarantees ------------------------------------------------------------------------
def theorems_for(model, sizes: dict | None = None) -> tuple[Theorem, ...]:
    m = model.units.value
    p, q = model.p, model.q
    act = model.activation.name
    C, R = model.regularizer.C, model.regularizer.R
    out = []
    holds, detail = _compare(m, p + q, sizes)
    if act == "relu":
        detail += ("; the proof (App. A.2, via Boumal et al.) covers the unconstrained "
                   "factorization; for the ReLU cones the paper asserts it (Sec. 3.2)")
    out.append(Theorem(
        "no spurious local minima", "Theorem 3.3",
        "every local minimum of the BM factorization is global (and a rank-deficient local "
        "minimum is global for twice-differentiable F)", f"m >= p + q = {size_text(p + q)}",
        holds, detail))
    out.append(Theorem(
        "optimality certificate", "Theorem 3.4, eq. (20)",
        "at a stationary point, (p_BM - p*)/p* <= max_k (||G_k||_D* / beta - 1)_+",
        "a stationary point of BM; F non-negative", True,
        "checked at run time against the stationarity residual"))
    if NormPair(C, R).euclidean and act != "relu":
        out.append(Theorem(
            "full rank implies global", "Theorem 3.5, eq. (21)",
            "a stationary point with rank(U_k) = rank(V_k) = min(p, q) is a global minimizer",
            "C = R = l2 (no cone constraints)", True, "rank checked at run time"))
    if act == "linear" and paper_family(model) == "attention":
        holds, detail = _compare(m, p + q, sizes)
        out.append(Theorem(
            "linear self-attention has no spurious local minima", "Corollary 3.10, eq. (27)",
            "with enough heads every local minimum of (26) is global",
            f"heads m >= d^2 + dc = {size_text(p + q)}", holds, detail))
    return tuple(out)
