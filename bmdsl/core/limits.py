"""The language's limits, in one table: what a model may ask for, and why each bound is there.

The front end checks every bound here at the span that exceeds it, so a model that passes
`bmdsl check` never fails later for a reason the text alone decides (an einsum with too
many indices, a seed numpy refuses, a coefficient that is 0 in float64). Memory for large
sizes is planned separately, against the data (bmdsl's memory estimates).
docs/language.md ("Limits") lists the same numbers; tests/test_reliability_language.py
checks each one.
"""
from __future__ import annotations

from dataclasses import dataclass

# -- text ----------------------------------------------------------------------------------
# A model is a dozen statements (the shipped ones are under 1 kB); 1 MB leaves room for
# any comments.
MAX_TEXT_BYTES = 1_000_000
# Lark spends tens of microseconds per token: 1 MB of '(' took a minute. The shipped models
# have about 100 tokens each; 20 000 parse in a few seconds on a loaded machine.
MAX_TOKENS = 20_000
# An error quotes at most this many characters of the offending line (around the column),
# and any message or hint line at most MAX_MESSAGE characters, so an error stays readable
# whatever the input (a 5 MB line once made a 5 MB message).
MAX_EXCERPT = 200
MAX_MESSAGE = 600
# A whole number token (a size value, units, an exponent, patterns, seed, kernel) has at
# most this many digits; every such parameter has a far smaller range (below), and Python
# refuses to convert integers of more than 4300 digits at all.
MAX_DIGITS = 18

# -- equations -----------------------------------------------------------------------------
# A term of a two-layer network multiplies a handful of tensors; these bounds stop
# `(X[n, i] * W1[i])^99999999` from expanding for ever.
MAX_FACTORS = 16
MAX_TERMS = 512
# An equation's right side: numbers, tensors and operators (+ - * ^, unary minus) counted
# together. Text cannot exceed it within MAX_TOKENS; a syntax tree built by a program and
# given to `bmdsl.check` can.
MAX_EXPRESSION_NODES = 20_000
# einsum names indices with letters: numpy and torch accept 52 (a-z, A-Z). The backends add
# up to 3 batch axes (pattern k, unit j, a basis vector) to the lifted network's einsums, so
# one einsum of a model may use at most 52 - 4 = 48 distinct indices.
EINSUM_LETTERS = 52
BATCH_RESERVE = 4
MAX_EINSUM_INDICES = EINSUM_LETTERS - BATCH_RESERVE


@dataclass(frozen=True)
class Range:
    """An accepted closed range [low, high] of a numeric model parameter, and its reason."""

    low: float
    high: float
    why: str

    def __contains__(self, x) -> bool:
        return self.low <= x <= self.high

    def words(self, name: str = "value") -> str:
        return f"{_fmt(self.low)} <= {name} <= {_fmt(self.high)}"


def _fmt(x) -> str:
    return f"{x:g}".replace("e+", "e") if isinstance(x, float) else str(x)


# Numeric model parameters: name -> accepted range (see docs/language.md, "Limits").
RANGES = {
    # F sums over entries (O(n c) for unit-scale data): below 1e-12 the regularizer is far
    # under the solvers' relative tolerances (~1e-8), so the program is numerically
    # unregularized and its minimizer need not exist; above 1e12 the optimum is W = 0 for any
    # data of a sane scale (docs/language.md, "Limits").
    "beta": Range(1e-12, 1e12, "outside it the regularizer is lost in round-off or forces "
                               "W = 0"),
    "size": Range(1, 1_000_000_000, "a larger axis cannot be held in memory"),
    "units": Range(1, 1_000_000, "m units are m copies of the weights per pattern"),
    "patterns": Range(1, 1_000_000, "each pattern is a mask over the whole pre-activation"),
    # numpy's legacy seeding and torch.manual_seed both accept [0, 2^32 - 1] everywhere
    "seed": Range(0, 2**32 - 1, "the range every random generator of numpy and torch accepts"),
    "kernel": Range(1, 10_000, "a patch is kernel^2 * channels numbers"),
    "stride": Range(1, 10_000, "a stride past the image leaves one position"),
    "padding": Range(0, 10_000, "padding adds zeros around each image"),
    "window": Range(1, 10_000, "a window past the grid pools nothing"),
    # the bias's constant feature s: its penalty is (b / s)^2, so s = 1e6 already frees it
    # for any data of a sane scale, and beyond that the feature swamps X in float64
    "scale": Range(1e-6, 1e6, "the bias's penalty is (b / s)^2: outside it, use no bias or "
                              "rescale the data"),
}
