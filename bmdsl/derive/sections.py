"""The derivation's sections (network, lifting, patterns, convex program, cones, BM
factorization, certificate, theorems) as text and LaTeX, rendered from the model's tensor
networks, never retyped; beside each generic formula the paper's explicit form when the
model is one of its architectures (Sahiner et al. 2024; `theorems.paper_forms`)."""
from __future__ import annotations

from . import render
from ..atoms.activations import Activation
from ..core.contract import Einsum
from .dnorm import NormPair
from ..check.lifting import Network, data_key
from ..atoms.norms import get_norm
from .render import Section, latex_name, unit_latex
from .theorems import paper_family, paper_forms, size_text
from .tractability import convex_status


def _axes(name: str, indices: tuple) -> str:
    return f"{name}[{', '.join(indices)}]" if indices else f"{name} (a scalar)"


class Sections:
    """The sections' content; formulas are rendered from the networks, never retyped."""

    def __init__(self, model, net: Network, act: Activation, sizes, P):
        self.model, self.net, self.act, self.sizes, self.P = model, net, act, sizes, P
        self.masked = act.uses_patterns
        self.forms = paper_forms(model)
        k, kj = ("_k", "_kj") if self.masked else ("", "_j")
        w1, w2, A = model.first_weight.name, model.second_weight.name, model.layer.lhs
        self.names = {"W1": (f"{w1}_j", unit_latex(w1, "j")),
                      "W2": (f"{w2}_j", unit_latex(w2, "j")),
                      "H": (f"act({A}_j)", rf"\sigma({unit_latex(A, 'j')})"),
                      "Z": (f"Z{k}", f"Z{k}"), "D": ("D_k", "D_k"), "R": ("R", "R"),
                      "U": (f"u{kj}", f"u_{{{kj[1:]}}}"), "V": (f"v{kj}", f"v_{{{kj[1:]}}}"),
                      "u": ("u", "u")}
        for t in (*model.inputs, *model.derived):
            self.names[data_key(t.name)] = (t.name, latex_name(t.name))
        self.y_tex = f"{latex_name(model.output.lhs)}[{','.join(net.y_indices)}]"
        self.sub = k  # "_k" with patterns, "" for linear (one Z, one L)
        self.k = "sum_k " if self.masked else ""
        self.k_tex = r"\sum_k " if self.masked else ""

    # -- helpers ----------------------------------------------------------------------------
    def size(self, expr):
        """A size expression, numeric once sizes are bound."""
        import sympy
        expr = sympy.sympify(expr)
        if self.sizes:
            expr = expr.subs({sympy.Symbol(k, positive=True, integer=True): v
                              for k, v in self.sizes.items()})
        return expr

    def index_sizes(self, spec: Einsum) -> dict:
        m = self.model
        dims = {"W1": m.first_weight.dims, "W2": m.second_weight.dims, "H": m.layer.dims,
                "D": m.layer.dims, "R": m.output.dims, "U": m.first_weight.dims,
                "V": m.second_weight.dims, "Z": m.first_weight.dims + m.second_weight.dims,
                "u": m.first_weight.dims}
        for t in (*m.inputs, *m.derived):
            dims[data_key(t.name)] = t.dims
        return {i: self.size(m.symbolic(d)) for name, idx in spec.operands
                for i, d in zip(idx, dims[name])}

    def formula(self, lhs_text: str, lhs_tex: str, specs, prefix=("", "")) -> tuple[str, str]:
        sizes = {}
        for s in specs:
            sizes.update(self.index_sizes(s))
        expr = render.sum_expr(specs, sizes)
        text, tex = render.text(expr, self.names), render.latex(expr, self.names)
        if len(specs) > 1 and prefix[0]:  # the outer sums run over every term
            text, tex = f"({text})", rf"\left({tex}\right)"
        return f"{lhs_text} = {prefix[0]}{text}", f"{lhs_tex} = {prefix[1]}{tex}"

    def regularizer(self, u: str, v: str, per_pattern: bool) -> tuple[str, str]:
        """(beta/2) [sum_k] sum_j (||u||_C^2 + ||v||_R^2), u, v placeholders (display names)."""
        C, R = self.model.regularizer.C, self.model.regularizer.R
        (ut, ul), (vt, vl) = self.names[u], self.names[v]
        k, k_tex = (self.k, self.k_tex) if per_pattern else ("", "")
        return (f"(beta/2) {k}sum_j (||{ut}||_{C}^2 + ||{vt}||_{R}^2)",
                rf"\tfrac{{\beta}}{{2}} {k_tex}\sum_j \left(\|{ul}\|_"
                rf"{{{get_norm(C).tex_subscript}}}^2 + \|{vl}\|_{{{get_norm(R).tex_subscript}}}^2\right)")

    def paper(self, key: str) -> tuple[tuple[str, str], ...]:
        if key not in self.forms:
            return ()
        ref, text, tex = self.forms[key]
        return ((f"paper {ref}: {text}", rf"\text{{paper {render.tex_text(ref)}: }} {tex}"),)

    def ref(self, key: str, generic: str) -> str:
        return f"{self.forms[key][0]}; generic {generic}" if key in self.forms else generic

    def bm_specs(self) -> tuple[Einsum, ...]:
        """The lifted network with Z[w1 idx, w2 idx] = u[w1 idx] v[w2 idx]."""
        r = len(self.net.w1_indices)
        return tuple(Einsum(s.coef, tuple(op for name, idx in s.operands for op in (
            ((("U", idx[:r]), ("V", idx[r:])) if name == "Z" else ((name, idx),)))), s.out)
            for s in self.net.lifted)

    # -- sections ---------------------------------------------------------------------------
    def sections(self, theorems) -> tuple[Section, ...]:
        parts = [self.network(), self.lifting(), self.patterns(), self.convex(), self.cones(),
                 self.bm(), self.certificate(), self.theorem_section(theorems)]
        return tuple(Section(s.title, s.reference, tuple(x for x in s.lines if x[0] or x[1]))
                     for s in parts if s is not None)

    def network(self) -> Section:
        m, net = self.model, self.net
        A, Y = m.layer.lhs, m.output.lhs
        a_idx, y_idx = ", ".join(m.layer.indices), ", ".join(net.y_indices)
        reg_text, reg_tex = self.regularizer("W1", "W2", per_pattern=False)
        return Section("two-layer network", self.forms.get("network", ("Sahiner et al. 2024, sec. 3",))[0], (
            self.formula(f"{A}_j[{a_idx}]", f"{unit_latex(A, 'j')}[{a_idx.replace(' ', '')}]",
                         net.layer),
            self.formula(f"{Y}[{y_idx}]", rf"{latex_name(Y)}[{y_idx.replace(' ', '')}]",
                         net.output, ("sum_j ", r"\sum_j ")),
            self.act.display,
            (f"objective: F({Y}) + {reg_text} over j = 1..m, F = {m.loss}",
             rf"\min\ F({latex_name(Y)}) + {reg_tex}"),
            *self.biases(),
            *self.paper("network")))

    def biases(self) -> tuple:
        """The `bias` statement's effect (bias.py, offset.py): text and LaTeX lines."""
        b, Y = self.model.bias, self.model.output.lhs
        lines = []
        if b.hidden is not None:
            lines.append((f"hidden bias: {b.tensor} gets a constant feature {b.hidden:g} along "
                          f"{b.size} ({b.size} counts it), so A_j = {b.tensor} w_j + "
                          f"{b.hidden:g} w_j,last and the bias is penalized with W1 under "
                          f"C (Pilanci & Ergen 2020); the gates get it too",
                          rf"\text{{hidden bias: constant feature {b.hidden:g} appended to "
                          rf"{b.tensor}, penalized under }}C"))
        if b.output:
            lines.append((f"output bias b (last axis of {Y}), not penalized: F is replaced by "
                          f"F_b({Y}) = min_b F({Y} + 1 b^T), whose conjugate is F* on dual "
                          "points V with 1^T V = 0",
                          rf"F_b({latex_name(Y)}) = \min_b F({latex_name(Y)} + 1 b^\top),\ "
                          rf"F_b^*(V) = F^*(V)\ \text{{if }} 1^\top V = 0"))
        return tuple(lines)

    def lifting(self) -> Section:
        m, net = self.model, self.net
        p, q = self.size(m.p), self.size(m.q)
        w1, w2 = m.first_weight.name, m.second_weight.name
        return Section("lifting", "Lemma 3.1", (
            (f"Z = sum_j vec({w1}_j) vec({w2}_j)^T in R^(p x q), p = {size_text(p)}, "
             f"q = {size_text(q)}",
             rf"Z = \sum_j \mathrm{{vec}}({self.names['W1'][1]})\,"
             rf"\mathrm{{vec}}({self.names['W2'][1]})^\top \in \mathbb{{R}}^{{p \times q}},\ "
             rf"p = {render.size_latex(p)},\ "
             rf"q = {render.size_latex(q)}"),
            (f"rows of Z: {_axes(w1, net.w1_indices)}, columns: {_axes(w2, net.w2_indices)} "
             "(each flattened row-major)", "")))

    def patterns(self) -> Section | None:
        if not self.masked:
            return None
        m, a = self.model, ", ".join(self.net.a_indices)
        count = f"P = {self.P}" if self.P is not None else "P"
        return Section("activation patterns", "(3)", (
            (f"D_k[{a}] = 1[{m.layer.lhs}(h_k)[{a}] >= 0], k = 1..{count}: "
             f"{m.activation.pattern_source}",
             rf"D_k = \mathbb{{1}}[{latex_name(m.layer.lhs)}(h_k) \ge 0],\ k = 1, \dots, {count}"),
            ("exact enumeration: P <= 2 sum_{k<r} C(N-1, k), N distinct hyperplanes of rank r "
             "(after (3); the sum is often quoted without its factor 2)"
             if m.activation.patterns == "exact" else "", "")))

    def convex(self) -> Section:
        m, reg = self.model, self.model.regularizer
        z_text, z_tex, _, _ = NormPair(reg.C, reg.R).rule.text
        Zk, k, Y = self.names["Z"][0], self.k, m.output.lhs
        over = "Z_k in R^(p x q), k = 1..P" if self.masked else "Z in R^(p x q)"
        cone = ", each constrained to the cone K_k (see below)" if self.act.cone else ""
        return Section("convex program", self.ref("convex", self.act.refs[0]), (
            (f"minimize over {over}:  F({Y}) + beta {k}||{Zk}||_D,  beta = {reg.beta:g}",
             rf"\min_{{{Zk}}}\ F({latex_name(Y)}) + \beta {self.k_tex}\|{Zk}\|_{{\mathcal D}}"),
            self.formula(f"{Y}[{', '.join(self.net.y_indices)}]", self.y_tex, self.net.lifted,
                         (k, self.k_tex)),
            *self.paper("convex"),
            (f"||Z||_D = {z_text}: the D-norm (15) of (C, R) = ({reg.C}, {reg.R}){cone}",
             rf"\|Z\|_{{\mathcal D}} = {z_tex}"),
            (f"status: {convex_status(m)}", "")))

    def cones(self) -> Section | None:
        if not self.act.cone:
            return None
        a = ", ".join(self.net.a_indices)
        layer = tuple(Einsum(s.coef, tuple(("u", i) if n == "W1" else (n, i)
                                           for n, i in s.operands), s.out) for s in self.net.layer)
        A = self.model.layer.lhs
        return Section("ReLU cones", "(3), (4), (108)", (
            self.formula(f"K_k = {{u : (2 D_k - 1) * {A}(u) >= 0}},  {A}(u)[{a}]",
                         rf"\mathcal K_k = \{{u : (2D_k - 1) \odot {latex_name(A)}(u) \ge 0\}},\ "
                         rf"{latex_name(A)}(u)[{a.replace(' ', '')}]", layer),
            ("||Z_k||_D becomes the cone-constrained norm: the gauge of conv{u v^T : u in K_k, "
             "||u||_C <= 1, ||v||_R <= 1}", r"\|Z_k\|_{\mathcal D, \mathcal K_k}"),
            ("on K_k, D_k * A(u) = max(A(u), 0): the BM factors are a ReLU network of P*m units",
             "")))

    def bm(self) -> Section:
        m, Y = self.model, self.model.output.lhs
        reg_text, reg_tex = self.regularizer("U", "V", per_pattern=True)
        over = ("U_k in R^(p x m), V_k in R^(q x m), Z_k = U_k V_k^T = sum_j u_kj v_kj^T"
                if self.masked else "U in R^(p x m), V in R^(q x m), Z = U V^T = sum_j u_j v_j^T")
        lines = [
            (f"minimize over {over}:  F({Y}) + {reg_text}",
             rf"\min_{{U, V}}\ F({latex_name(Y)}) + {reg_tex}"),
            self.formula(f"{Y}[{', '.join(self.net.y_indices)}]", self.y_tex, self.bm_specs(),
                         (self.k + "sum_j ", self.k_tex + r"\sum_j ")),
        ]
        if self.act.cone:
            lines.append((f"subject to (2 D_k - 1) * {m.layer.lhs}(u_kj) >= 0 for every k, j",
                          rf"\text{{s.t. }} (2D_k - 1) \odot {latex_name(m.layer.lhs)}(u_{{kj}})"
                          r" \ge 0"))
        return Section("Burer-Monteiro factorization",
                       self.ref("bm", self.act.refs[1]), (*lines, *self.paper("bm")))

    def certificate(self) -> Section:
        reg, net = self.model.regularizer, self.net
        _, _, g_text, g_tex = NormPair(reg.C, reg.R).rule.text
        cone = ", with u restricted to K_k (a cone-constrained PCA)" if self.act.cone else ""
        ref = "Theorem 3.4, (20)" + ("; Corollary 3.8, (25)" if paper_family(self.model) == "cnn"
                                     else "")
        k = self.sub
        mk, mk_tex = ("max_k ", r"\max_k ") if self.masked else ("", "")
        g_idx = ", ".join(net.w1_indices + net.w2_indices)
        return Section("optimality certificate", ref, (
            self.formula(f"G{k}[{g_idx}]", f"G{k}[{g_idx.replace(' ', '')}]", net.adjoint),
            (f"G{k} = L{k}^*(R), R = grad F({self.model.output.lhs}); ||G||_D* = {g_text}{cone}",
             rf"R = \nabla F(\hat Y),\ \|G\|_{{\mathcal D}}^* = {g_tex}"),
            (f"at a stationary point of BM: (p_BM - p*)/p* <= {mk}(||G{k}||_D* / beta - 1)_+",
             rf"\frac{{p_{{BM}} - p^*}}{{p^*}} \le {mk_tex}\left(\frac{{\|G{k}\|_{{\mathcal D}}^*}}"
             rf"{{\beta}} - 1\right)_+"),
            (f"at any point: p* >= -F*(v), v = R / max(1, {mk}||G{k}||_D* / beta) (Fenchel dual; "
             "docs/certificates.md)",
             rf"p^* \ge -F^*(v),\ v = R / \max(1, {mk_tex}\|G{k}\|_{{\mathcal D}}^* / \beta)")))

    def theorem_section(self, theorems) -> Section:
        status = {True: "holds", False: "does not hold", None: "depends on the data sizes"}
        lines = []
        for t in theorems:
            lines.append((f"{t.reference}: {status[t.holds]} -- {t.statement}",
                          rf"\text{{{render.tex_text(f'{t.reference}: {status[t.holds]}')}}}"))
            lines.append((f"    if {t.hypothesis} ({t.detail})", ""))
        return Section("theorems", "", tuple(lines))
