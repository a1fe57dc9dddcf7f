"""Assembling the convex program(s) from numbers: numpy + cvxpy only.

This file is pasted verbatim into the emitted stand-alone module (see emit.py), so the
in-process backend (problem.py) and the emitted module build literally the same program.
The loss and the norms come in through `Forms` (bmdsl's registries in-process, a small
emitted module's runtime_forms.py).

    minimize  F(sum_k L_k(Z_k)) + beta sum_k ||Z_k||      (2), (5), (16), (23), (104), (135)

with L = [L_1 ... L_P] stacked as one matrix [|y|, P p q] acting on the row-major vecs of
the Z_k, and ||.|| the D-norm (15) or, for ReLU, its cone-constrained version (3), (4), (136).
Where the exact norm is intractable the result is a bracket: a "lower" program (a
relaxation of the norm, value <= p*) and an "upper" one (a restriction, value >= p*).
"""
from collections import namedtuple

import numpy as np
import cvxpy as cp

from .relu import extreme_rows, pair_count, sdp_cone_norm, split_cone_norm

# loss(yhat, Y) -> cvxpy expression; vnorm(name) -> f(expr, axis); dnorm(Z, C, R, enum_cap)
# -> exact norm (an object with .expr, .constraints); dnorm_bounds(Z, C, R) -> (lower,
# upper) such objects; dnorm_is_exact(C, R, p, q, enum_cap) -> bool; relu_exact(C, R, q)
# -> bool (the split program is the ReLU norm); euclidean(C, R) -> bool (C = R = l2).
Forms = namedtuple("Forms", "loss vnorm dnorm dnorm_bounds dnorm_is_exact relu_exact euclidean")

REDUCE_BUDGET = 5e7  # ~P N^2 p flops of extreme-row search "auto" may spend to size the SDP

# One built program: its side ("exact", "lower" or "upper"), the cvxpy problem, the
# per-pattern Z_k expressions [p, q], and for the ReLU split the (A_k, B_k) variables.
Program = namedtuple("Program", "side problem Z split")

# How ||Z_k|| is written, by name: `plan` picks the entries per side ("exact", or "lower"
# and "upper"), `_NORMS` builds them, `describe` explains them in the solution's note.
NOTE_DNORM = "the D-norm (15) in closed form or by exact enumeration"
NOTE_LOWER = "a convex lower bound on the NP-hard D-norm (15)"
NOTE_UPPER = "a convex upper bound on the NP-hard D-norm (15)"
NOTE_SPLIT = ("the ReLU norm as Z_k[:, j] = a_j - b_j, a_j, b_j in the cone K_k, "
              "regularizer sum ||a_j||_C + ||b_j||_C (Pilanci & Ergen 2020 eq. (5))")
NOTE_SPLIT_UPPER = ("outputs decoupled: Z_k[:, j] = a_j - b_j with a_j, b_j in K_k, a "
                    "restriction of the constrained norm (4) to right atoms +-e_j")
NOTE_SDP = ("the SDP relaxation of the constrained norm (4): [[W1, Z_k], [Z_k^T, W2]] PSD, "
            "K_k W1 K_k^T >= 0 entrywise")
NOTE_NOCONE = ("the cone dropped: the plain D-norm (15) (or its lower bound when NP-hard), "
               "<= the constrained norm (4)")
NORM_NOTES = {"dnorm": NOTE_DNORM, "dnorm_lower": NOTE_LOWER, "dnorm_upper": NOTE_UPPER,
              "split": NOTE_SPLIT, "split_upper": NOTE_SPLIT_UPPER, "sdp": NOTE_SDP,
              "nocone": NOTE_NOCONE}


def plan(P, p, q, C, R, forms, cones=None, *, relu_bound="auto", enum_cap=12,
         sdp_budget=2_000_000, extremes=None):
    """{side: norm name} and the result's exactness ("exact" or "bracket") for these sizes.

    The ReLU SDP has P (p+q)-square PSD blocks and one inequality per pair of extreme cone
    rows, about P * pairs * p^2 numbers of data; "auto" takes it when that is within
    sdp_budget. Counting the extreme rows costs about P * N^2 * p (N cone rows), so it is
    only done (by `extremes(k)`, cached) when the raw count is over budget but that work is
    affordable; otherwise the raw count decides."""
    if cones is None:
        if forms.dnorm_is_exact(C, R, p, q, enum_cap):
            return "exact", {"exact": "dnorm"}
        return "bracket", {"lower": "dnorm_lower", "upper": "dnorm_upper"}
    if relu_bound not in ("auto", "sdp", "nocone"):
        raise ValueError(f"relu_bound must be 'auto', 'sdp' or 'nocone', not {relu_bound!r}")
    if forms.relu_exact(C, R, q):
        return "exact", {"exact": "split"}
    lower = relu_bound
    if relu_bound == "auto":
        pairs = sum(pair_count(K) for K in cones)
        if pairs * p * p > sdp_budget and extremes is not None and \
                P * cones.shape[1] ** 2 * p <= REDUCE_BUDGET:
            pairs = sum(len(extremes(k)) * (len(extremes(k)) - 1) // 2 for k in range(P))
        lower = "sdp" if pairs * p * p <= sdp_budget else "nocone"
    return "bracket", {"lower": lower, "upper": "split_upper"}


def describe(exactness, sides, C, R, q):
    sign = {"exact": "", "lower": " (so its optimum is <= p*)",
            "upper": " (so its optimum is >= p*)"}
    lines = [f"{side}: {NORM_NOTES[name]}{sign[side]}" for side, name in sides.items()]
    if exactness == "bracket":
        why = (f"ReLU with q = {q} > 1 and R = {R}: the constrained norm (4) is NP-hard"
               if "split_upper" in sides.values() else
               f"(C, R) = ({C}, {R}) is NP-hard beyond the enumeration cap")
        lines.insert(0, why + "; p* is bracketed")
    return "; ".join(lines)


def _plain(Z, C, R, forms, enum_cap):
    if forms.dnorm_is_exact(C, R, *Z.shape, enum_cap):
        return forms.dnorm(Z, C, R, enum_cap=enum_cap)
    return forms.dnorm_bounds(Z, C, R)[0]


def _norm_plain(k, ctx):
    """The plain D-norm: exact where `plan` found it tractable, else its lower bound."""
    Z = cp.Variable((ctx["p"], ctx["q"]))
    ne = _plain(Z, ctx["C"], ctx["R"], ctx["forms"], ctx["enum_cap"])
    return Z, ne.expr, list(ne.constraints), None


def _norm_dnorm_side(index):
    def build(k, ctx):
        Z = cp.Variable((ctx["p"], ctx["q"]))
        ne = ctx["forms"].dnorm_bounds(Z, ctx["C"], ctx["R"])[index]
        return Z, ne.expr, list(ne.constraints), None
    return build


def _norm_split(k, ctx):
    Z, reg, cons, parts = split_cone_norm(ctx["cones"][k], ctx["p"], ctx["q"],
                                          ctx["forms"].vnorm(ctx["C"]))
    return Z, reg, cons, parts


def _norm_sdp(k, ctx):
    Z = cp.Variable((ctx["p"], ctx["q"]))
    reg, cons = sdp_cone_norm(Z, ctx["extremes"](k), ctx["C"], ctx["R"])
    if not ctx["forms"].euclidean(ctx["C"], ctx["R"]):
        # Without the cone the SDP equals the D-norm only for (l2, l2); elsewhere the
        # plain D-norm (lower than the constrained one too) may be larger: keep the max.
        ne = _plain(Z, ctx["C"], ctx["R"], ctx["forms"], ctx["enum_cap"])
        reg, cons = cp.maximum(reg, ne.expr), cons + list(ne.constraints)
    return Z, reg, cons, None


_norm_lower, _norm_upper = _norm_dnorm_side(0), _norm_dnorm_side(1)
# what the emitter may leave out of _NORMS for a model without ReLU cones or with a
# tractable pair (kernel/paste.py)
NEEDS = {"_norm_split": {"cone": True}, "_norm_sdp": {"cone": True},
         "_norm_lower": {"tractable": False}, "_norm_upper": {"tractable": False},
         "NOTE_SPLIT": {"cone": True}, "NOTE_SPLIT_UPPER": {"cone": True},
         "NOTE_SDP": {"cone": True}, "NOTE_NOCONE": {"cone": True},
         "NOTE_LOWER": {"tractable": False}, "NOTE_UPPER": {"tractable": False}}
_NORMS = {"dnorm": _norm_plain, "dnorm_lower": _norm_lower, "dnorm_upper": _norm_upper,
          "split": _norm_split, "split_upper": _norm_split, "sdp": _norm_sdp,
          "nocone": _norm_plain}


def _extremes(cones):
    """k -> the extreme rows of cone k, each computed once."""
    cache = {}

    def extremes(k):
        if k not in cache:
            cache[k] = extreme_rows(cones[k])
        return cache[k]
    return extremes


def build_programs(L, Y, P, p, q, beta, C, R, forms, cones=None, *, relu_bound="auto",
                   enum_cap=12, sdp_budget=2_000_000):
    """Returns (exactness, {side: Program}, note).

    L: [|y|, P p q] (numpy or scipy.sparse), columns ordered (k, row-major vec of Z_k);
    Y: target array; cones: [P, N, p] (ReLU) or None. The prediction is reshaped to
    [-1, last axis of Y] so that class-axis losses see one sample per row."""
    extremes = None if cones is None else _extremes(cones)
    exactness, sides = plan(P, p, q, C, R, forms, cones, relu_bound=relu_bound,
                            enum_cap=enum_cap, sdp_budget=sdp_budget, extremes=extremes)
    Y = np.asarray(Y, dtype=np.float64)
    Y2 = Y.reshape(-1, Y.shape[-1] if Y.ndim else 1)
    ctx = dict(p=p, q=q, C=C, R=R, forms=forms, cones=cones, enum_cap=enum_cap, extremes=extremes)
    programs = {}
    for side, name in sides.items():
        Zs, regs, cons, splits = zip(*(_NORMS[name](k, ctx) for k in range(P)))
        z = cp.hstack([cp.vec(Z, order="C") for Z in Zs])
        yhat = cp.reshape(L @ z, Y2.shape, order="C")
        objective = forms.loss(yhat, Y2) + beta * cp.sum(cp.hstack(list(regs)))
        problem = cp.Problem(cp.Minimize(objective), [c for cs in cons for c in cs])
        programs[side] = Program(side, problem, list(Zs), None if splits[0] is None else
                                 list(splits))
    return exactness, programs, describe(exactness, sides, C, R, q)
