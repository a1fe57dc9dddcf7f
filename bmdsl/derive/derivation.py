"""The derivation: one generic pass from a checked model to the convex program, its BM
factorization, the ReLU cones, the certificate and the theorems (docs/theory.md).

No branch on the architecture: everything comes from the two equations' tensor networks
(`lifting.build_network`). The object is symbolic (sizes stay sympy symbols); `at(sizes)`
is the same derivation with numbers (e.g. `bound.sizes`), and `bind(data)` returns the
numeric `BoundModel` problem the backends use. It renders itself as text (`bmdsl derive`), LaTeX
(`--latex`) and in Jupyter. Beside each generic formula it quotes the paper's explicit form
and equation number when the model is one of the paper's architectures
(`theorems.paper_forms`); numbers refer to Sahiner et al., ICLR 2024.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..atoms.activations import ACTIVATIONS, Activation
from ..check.lifting import Network, build_network
from ..core.stages import later
from .sections import Sections
from . import render
from .render import Section
from .theorems import FAMILY_NAMES, Theorem, paper_family, theorems_for

@dataclass(frozen=True)
class Derivation:
    model: object
    network: Network
    activation: Activation
    theorems: tuple[Theorem, ...]
    sections: tuple[Section, ...]
    sizes: dict | None = field(default=None, compare=False)  # numeric (from `at`), or None
    P: int | None = None  # number of patterns, when known

    @property
    def p(self):
        return self.model.p

    @property
    def q(self):
        return self.model.q

    @property
    def family(self) -> str | None:
        """'mlp', 'cnn' or 'attention' when the model is one of the paper's architectures."""
        return paper_family(self.model)

    def at(self, sizes: dict, P: int | None = None) -> "Derivation":
        """The same derivation with numeric sizes (e.g. `bound.sizes`) and pattern count."""
        return derive(self.model, sizes, P)

    def bind(self, data: dict, patterns=None, *, pattern_cap: int = 10_000):
        """Numeric problem for `data` (a dict of arrays by tensor name); see `bound.BoundModel`.
        `patterns` reuses a saved `PatternSet` (e.g. from a CVXPY run)."""
        return later("bind")(self, data, patterns, pattern_cap=pattern_cap)

    def to_cvxpy(self, data: dict, patterns=None, **options):
        """`bind(data).to_cvxpy(...)`: the convex program for this data."""
        return self.bind(data, patterns).to_cvxpy(**options)

    def to_torch(self, data: dict, patterns=None, device=None, **options):
        """`bind(data).to_torch(...)`: the BM trainer for this data."""
        return self.bind(data, patterns).to_torch(device=device, **options)

    def applicable_theorems(self, sizes: dict | None = None) -> tuple[Theorem, ...]:
        return tuple(t for t in theorems_for(self.model, sizes or self.sizes) if t.holds)

    def text(self) -> str:
        return render.sections_text(self._header(), self.sections)

    def latex(self) -> str:
        return render.sections_latex(self.sections)

    def _repr_latex_(self) -> str:
        return render.sections_latex(self.sections, environment="aligned", math="$$")

    def _header(self) -> str:
        m, reg = self.model, self.model.regularizer
        fam = self.family
        where = (f"the paper's {FAMILY_NAMES[fam]}; equation numbers are Sahiner et al. (ICLR 2024)"
                 if fam else "a two-layer tensor network; the paper's generic results apply")
        return (f"derivation of model {m.name}: {m.activation.name}, m = {m.units.value} units, "
                f"loss {m.loss}, beta = {reg.beta:g}, C = {reg.C}, R = {reg.R}\n"
                f"architecture: {where}")

    def __str__(self) -> str:
        return self.text()


def derive(model, sizes: dict | None = None, P: int | None = None) -> Derivation:
    act = ACTIVATIONS[model.activation.name]
    network = build_network(model, masked=act.uses_patterns)
    theorems = theorems_for(model, sizes)
    return Derivation(model, network, act, theorems,
                      Sections(model, network, act, sizes, P).sections(theorems), sizes, P)
