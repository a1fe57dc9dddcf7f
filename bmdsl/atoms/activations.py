"""Activation registry: what each activation means for the convex program.

docs/theory.md sec. 2: `linear` lifts directly (Lemma 3.1); `gated_relu` multiplies the
pre-activation by fixed masks D_k = 1[A(h_k) >= 0] (eq. (5), (18)); `relu` uses the masks of
the hyperplane arrangement of A plus the cone constraints (2 D_k - 1) * A(u) >= 0
(eq. (3), (19), (23), (136)). Adding an activation is one entry in `ACTIVATIONS`: it
declares its text and LaTeX, which programs and certificates it has (its scope) and its
units rule (whether patterns multiply the units, whether cones constrain them); code asks
the entry, never the name.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.limits import RANGES
from ..front.params import (Param, accepts, either, name_of, nonneg_int, one_of, positive_int,
                            within)


@dataclass(frozen=True)
class Activation:
    name: str
    uses_patterns: bool  # masks D_k multiply the pre-activation (units rule)
    cone: bool  # the left factors are constrained to the cones K_k (units rule)
    params: tuple[Param, ...]
    latex: str
    description: str
    # the derivation's line for act(A): (text, LaTeX)
    display: tuple[str, str] = ("", "")
    # the paper's references: (convex program, BM program)
    refs: tuple[str, str] = ("", "")
    # scope of a certificate: the convex program it is optimality for, and what it says
    # about the network when the patterns are all it can produce (`complete`: always for
    # linear and gated ReLU, for ReLU only with exact enumeration)
    program: str = ""
    network_scope: str = ""
    complete: bool = False


_PATTERN_PARAMS = (
    Param("patterns", f"a positive whole number of sampled patterns "
          f"({RANGES['patterns'].words('patterns')}), or 'exact'",
          either(within(positive_int, "patterns"), one_of("exact")), 64),
    Param("seed", accepts("a whole number >= 0", "seed"), within(nonneg_int, "seed"), 0),
    Param("gates", "the name of an input tensor holding the gates", name_of, None),
)

ACTIVATIONS: dict[str, Activation] = {
    a.name: a for a in (
        Activation("linear", False, False, (), r"\sigma(x) = x",
                   "linear: the convex program is min F(L(Z)) + beta ||Z||_D (Lemma 3.1)",
                   display=("act = identity", r"\sigma(x) = x"),
                   refs=("Lemma 3.1, (16)", "(14)"), program="(16) (Lemma 3.1)",
                   network_scope="the BM factors are a linear network, so it also bounds "
                   "their suboptimality among linear networks of any width", complete=True),
        Activation("gated_relu", True, False, _PATTERN_PARAMS,
                   r"\sigma(x) = \mathbb{1}[A(h) \ge 0]\, x",
                   "gated ReLU: fixed gates h_k give masks D_k; no cone constraints (eq. (5), (18))",
                   display=("act = gated ReLU: act(A) = D_k * A, D_k = 1[A(h_k) >= 0] for "
                            "fixed gates h_k",
                            r"\sigma(A) = D_k \odot A,\ D_k = \mathbb{1}[A(h_k) \ge 0]"),
                   refs=("Lemma 3.1, (16)", "(14)"), program="(5)/(18) with these fixed gates",
                   network_scope="the BM factors are a gated ReLU network with these gates, so "
                   "it also bounds their suboptimality among such networks of any width",
                   complete=True),
        Activation("relu", True, True, _PATTERN_PARAMS, r"\sigma(x) = \max(x, 0)",
                   "ReLU: arrangement masks D_k and cones K_k on the first-layer factor "
                   "(eq. (3), (19))",
                   display=("act = ReLU: act(A) = max(A, 0)", r"\sigma(A) = \max(A, 0)"),
                   refs=("Theorem B.1, (107)", "(14) + cones"),
                   program="(3)-(4) with the ReLU cones (19)",
                   network_scope="the patterns are all of the arrangement (exact "
                   "enumeration), so it also bounds the suboptimality of the ReLU network the "
                   "factors define among ReLU networks of any width"),
    )
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"unknown activation '{name}'; accepted: {', '.join(ACTIVATIONS)}") from None
