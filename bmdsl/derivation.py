"""The derivation: one generic pass from a checked model to the convex program, its BM
factorization, the ReLU cones, the certificate and the theorems (design.md section 2).

No branch on the architecture: everything comes from the two equations' tensor networks
(`lifting.build_network`). The object is symbolic (sizes stay sympy symbols); `bind(data)`
returns the numeric `Bound` problem the backends use. It renders itself as text
(`bmdsl derive`), LaTeX (`--latex`) and in Jupyter.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import render
from .activations import ACTIVATIONS, Activation
from .lifting import Network, build_network
from .theorems import Theorem, theorems_for
from .tractability import convex_status

# Paper equations for each activation: convex program, BM factorization (seed 000).
_REFS = {"linear": ("(2), (16), Lemma 3.1", "(14), (17)"),
         "gated_relu": ("(5), (130), (135)", "(18), (126), (133)"),
         "relu": ("(3), (23), (107), (136)", "(19), (24), (134)")}
_NORM_TEXT = {"spectral": ("||Z||_* (nuclear norm)", r"\|Z\|_*", "sigma_max(G)", r"\sigma_{\max}(G)"),
              "rows": ("sum_i ||row_i(Z)||_{R}", r"\sum_i \|Z_{i,:}\|_{R}",
                       "max_i ||row_i(G)||_{R*}", r"\max_i \|G_{i,:}\|_{R^*}"),
              "cols": ("sum_j ||col_j(Z)||_{C}", r"\sum_j \|Z_{:,j}\|_{C}",
                       "max_j ||col_j(G)||_{C*}", r"\max_j \|G_{:,j}\|_{C^*}"),
              "hard": ("gauge of conv{u v^T : ||u||_C <= 1, ||v||_R <= 1} (15)",
                       r"\|Z\|_{\mathcal{D}}", "max_{||u||_C<=1, ||v||_R<=1} u^T G v",
                       r"\max_{u \in B_C, v \in B_R} u^\top G v")}


@dataclass(frozen=True)
class Section:
    title: str
    reference: str
    lines: tuple[tuple[str, str], ...]  # (text, latex)


@dataclass(frozen=True)
class Derivation:
    model: object
    network: Network
    activation: Activation
    theorems: tuple[Theorem, ...]
    sections: tuple[Section, ...]

    @property
    def p(self):
        return self.model.p

    @property
    def q(self):
        return self.model.q

    def bind(self, data: dict, patterns=None, *, pattern_cap: int = 10_000):
        """Numeric problem for `data` (a dict of arrays by tensor name); see `bound.Bound`.
        `patterns` reuses a saved `PatternSet` (e.g. from a CVXPY run)."""
        from .bound import Bound
        return Bound(self, data, patterns, pattern_cap=pattern_cap)

    def to_cvxpy(self, data: dict, patterns=None, **options):
        """`bind(data).to_cvxpy(...)`: the convex program for this data."""
        return self.bind(data, patterns).to_cvxpy(**options)

    def to_torch(self, data: dict, patterns=None, device=None, **options):
        """`bind(data).to_torch(...)`: the BM trainer for this data."""
        return self.bind(data, patterns).to_torch(device=device, **options)

    def applicable_theorems(self, sizes: dict | None = None) -> tuple[Theorem, ...]:
        return tuple(t for t in theorems_for(self.model, sizes) if t.holds)

    def text(self) -> str:
        out = [f"derivation of model {self.model.name}"]
        for s in self.sections:
            out.append(f"\n{s.title}  [{s.reference}]" if s.reference else f"\n{s.title}")
            out.extend(f"  {t}" for t, _ in s.lines)
        return "\n".join(out)

    def latex(self) -> str:
        out = [r"\begin{align*}"]
        for s in self.sections:
            tag = f" \\quad \\text{{[{s.reference}]}}" if s.reference else ""
            out.append(rf"&\textbf{{{s.title}}}{tag} \\")
            out.extend(rf"&\quad {lx} \\" for _, lx in s.lines if lx)
        out.append(r"\end{align*}")
        return "\n".join(out)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex().replace(r"\begin{align*}", r"\begin{aligned}").replace(
            r"\end{align*}", r"\end{aligned}") + "$$"

    def __str__(self) -> str:
        return self.text()


def derive(model) -> Derivation:
    act = ACTIVATIONS[model.activation.name]
    network = build_network(model, masked=act.uses_patterns)
    theorems = theorems_for(model)
    return Derivation(model, network, act, theorems, _sections(model, network, act, theorems))


def _line(label: str, expr, latex_label: str | None = None) -> tuple[str, str]:
    return (f"{label}{render.text(expr)}", f"{latex_label or label}{render.latex(expr)}")


def _sections(model, net: Network, act: Activation, theorems) -> tuple[Section, ...]:
    from .dnorm import NormPair
    reg = model.regularizer
    convex_ref, bm_ref = _REFS[act.name]
    rule = NormPair(reg.C, reg.R).rule
    z_text, z_latex, g_text, g_latex = _NORM_TEXT[rule.kind]
    Y = f"{model.output.lhs}[{', '.join(net.y_indices)}]"
    A = f"{model.layer.lhs}[{', '.join(model.layer.indices)}]"
    masked = act.uses_patterns
    k = "sum_k " if masked else ""
    s = []
    s.append(Section("network", "(1), (22), (8)", (
        _line(f"{A} = ", render.sum_expr(net.layer)),
        _line(f"{Y} = ", render.sum_expr(net.output), f"\\hat{{Y}} = "),
        (f"sigma = {act.name}; units j = 1..m, m = {model.units.value}", act.latex))))
    s.append(Section("lifting", "Lemma 3.1", (
        (f"Z = sum_j vec(w1_j) vec(w2_j)^T in R^(p x q), p = {model.p}, q = {model.q}",
         rf"Z = \sum_j \mathrm{{vec}}(w_{{1j}})\mathrm{{vec}}(w_{{2j}})^\top \in "
         rf"\mathbb{{R}}^{{{model.p} \times {model.q}}}"),
        (f"rows of Z: ({', '.join(net.w1_indices)}); columns: ({', '.join(net.w2_indices)})", ""))))
    if masked:
        s.append(Section("patterns", "(3)", (
            (f"D_k[{', '.join(net.a_indices)}] = 1[{model.layer.lhs}(h_k) >= 0], k = 1..P; "
             f"{model.activation.pattern_source}", r"D_k = \mathbb{1}[A(h_k) \ge 0]"),)))
    lifted = render.sum_expr(net.lifted)
    s.append(Section("convex program", convex_ref, (
        (f"minimize over Z_k in R^(p x q):  F({model.output.lhs}) + beta {k}||Z_k||_D,  "
         f"beta = {reg.beta:g}", rf"\min_{{Z_k}} F(\hat Y) + \beta \sum_k \|Z_k\|_{{\mathcal D}}"),
        _line(f"{Y} = {k}", lifted, r"\hat{Y} = \sum_k "),
        (f"F = {model.loss};  ||Z||_D = {z_text}  (C = {reg.C}, R = {reg.R}, eq. (15))",
         rf"\|Z\|_{{\mathcal D}} = {z_latex}"),
        (f"status: {convex_status(model)}", ""))))
    if act.cone:
        s.append(Section("cones", "(3), (19), (108)", (
            (f"K_k = {{u : (2 D_k - 1) * {model.layer.lhs}(u) >= 0}}; each ||Z_k||_D is "
             f"constrained to Z_k = sum u v^T with u in K_k", r"K_k = \{u : (2D_k - 1)\odot A(u) \ge 0\}"),)))
    s.append(Section("Burer-Monteiro factorization", bm_ref, (
        ("minimize over U_k in R^(p x m), V_k in R^(q x m):  F(Yhat) + beta/2 "
         f"{k}sum_j (||u_kj||_{reg.C}^2 + ||v_kj||_{reg.R}^2)",
         rf"\min_{{U_k, V_k}} F(\hat Y) + \frac{{\beta}}{{2}} \sum_{{k,j}} (\|u_{{kj}}\|_{{{reg.C}}}^2 "
         rf"+ \|v_{{kj}}\|_{{{reg.R}}}^2)"),
        (f"Yhat = {k}sum_j B({'D_k * ' if masked else ''}A(u_kj), v_kj)"
         + ("  subject to (2 D_k - 1) * A(u_kj) >= 0" if act.cone else ""),
         r"\hat Y = \sum_{k,j} B(D_k \odot A(u_{kj}), v_{kj})"),
        ("with the cones satisfied, D_k * A(u) = relu(A(u)): an ordinary ReLU network of P*m units"
         if act.cone else "", ""))))
    adjoint = render.sum_expr(net.adjoint)
    s.append(Section("certificate", "Theorem 3.4, eq. (20)", (
        (f"(p_BM - p*)/p* <= max_k (||G_k||_D* / beta - 1)_+ at a stationary point; "
         f"||G||_D* = {g_text}" + (" over u in K_k" if act.cone else ""),
         rf"\frac{{p - p^*}}{{p^*}} \le \max_k \left(\frac{{\|G_k\|_{{\mathcal D}}^*}}{{\beta}} "
         rf"- 1\right)_+, \quad \|G\|_{{\mathcal D}}^* = {g_latex}"),
        _line(f"G_k[{', '.join(net.w1_indices + net.w2_indices)}] = ", adjoint, "G_k = "),
        ("R = grad F(Yhat); at every point the Fenchel dual max -F*(v) s.t. ||L_k^*(v)||_D* <= beta "
         "gives p* >= -F*(v) for the scaled point v = t R", ""))))
    s.append(Section("theorems", "", tuple(
        (f"{t.reference}: {t.statement} -- if {t.hypothesis}: "
         f"{ {True: 'holds', False: 'does not hold', None: 'depends on data sizes'}[t.holds]} "
         f"({t.detail})", "") for t in theorems)))
    return tuple(Section(x.title, x.reference, tuple(line for line in x.lines if line[0] or line[1]))
                 for x in s)
