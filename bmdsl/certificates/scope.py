"""What a certificate certifies, in words (docs/theory.md sec. 6).

The bounds compare the point with p*, the optimum of the convex program on the patterns
the bound problem uses.  That program equals the non-convex network's training problem
only when it contains every pattern the network can produce: always for linear (no
patterns) and gated ReLU (the gates are part of the model), and for ReLU only with exact
enumeration of the arrangement.  With sampled ReLU patterns it is a restriction.
"""
from __future__ import annotations

_PROGRAM = {"linear": "(16) (Lemma 3.1)", "gated_relu": "(5)/(18) with these fixed gates",
            "relu": "(3)-(4) with the ReLU cones (19)"}


def scope_text(bound, *, lifted: bool, cone_violation: float, tol: float) -> str:
    act = bound.activation.name
    src = None if bound.patterns is None else bound.patterns.source
    pats = "" if src is None else f" on the {bound.P} {src} patterns"
    out = f"optimality for the convex program {_PROGRAM[act]}{pats}"
    point = "this convex point" if lifted else "these BM factors"
    if act == "linear":
        net = ("; the BM factors are a linear network, so it also bounds their suboptimality "
               "among linear networks of any width")
    elif act == "gated_relu":
        net = ("; the BM factors are a gated ReLU network with these gates, so it also bounds "
               "their suboptimality among such networks of any width")
    elif src == "exact":
        net = ("; the patterns are all of the arrangement (exact enumeration), so it also bounds "
               "the suboptimality of the ReLU network the factors define among ReLU networks "
               "of any width")
    else:
        net = (f"; the patterns are {src or 'given'}, a subset of the arrangement: this is NOT a "
               "certificate of global optimality for the ReLU network")
    if lifted:
        net = net.replace("the BM factors are", "a network recovered from it is").replace(
            "the ReLU network the factors define", "a ReLU network recovered from it").replace(
            "their suboptimality", "its suboptimality")
    out += net
    if bound.cone and not lifted and cone_violation > tol:
        out += (f". WARNING: {point} violate the ReLU cones (19) (relative violation "
                f"{cone_violation:.1e}), so p is not the value of a feasible point or of a ReLU "
                "network; the bounds still compare the number p with p*")
    return out + "."
