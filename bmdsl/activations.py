"""Activation registry: what each activation means for the convex program.

docs/theory.md sec. 2: `linear` lifts directly (Lemma 3.1); `gated_relu` multiplies the
pre-activation by fixed masks D_k = 1[A(h_k) >= 0] (eq. (5), (18)); `relu` uses the masks of
the hyperplane arrangement of A plus the cone constraints (2 D_k - 1) * A(u) >= 0
(eq. (3), (19), (23), (136)). Adding an activation is one entry in `ACTIVATIONS`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .limits import RANGES
from .params import Param, accepts, either, name_of, nonneg_int, one_of, positive_int, within


@dataclass(frozen=True)
class Activation:
    name: str
    uses_patterns: bool  # masks D_k multiply the pre-activation
    cone: bool  # the left factors are constrained to the cones K_k
    params: tuple[Param, ...]
    latex: str
    description: str


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
                   "linear: the convex program is min F(L(Z)) + beta ||Z||_D (Lemma 3.1)"),
        Activation("gated_relu", True, False, _PATTERN_PARAMS,
                   r"\sigma(x) = \mathbb{1}[A(h) \ge 0]\, x",
                   "gated ReLU: fixed gates h_k give masks D_k; no cone constraints (eq. (5), (18))"),
        Activation("relu", True, True, _PATTERN_PARAMS, r"\sigma(x) = \max(x, 0)",
                   "ReLU: arrangement masks D_k and cones K_k on the first-layer factor "
                   "(eq. (3), (19))"),
    )
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"unknown activation '{name}'; accepted: {', '.join(ACTIVATIONS)}") from None
