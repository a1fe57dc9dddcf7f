"""What a certificate certifies, in words (docs/theory.md sec. 6).

The bounds compare the point with p*, the optimum of the convex program on the patterns
the bound problem uses.  That program equals the non-convex network's training problem
only when it contains every pattern the network can produce: always for linear (no
patterns) and gated ReLU (the gates are part of the model), and for ReLU only with exact
enumeration of the arrangement.  With sampled ReLU patterns it is a restriction.
"""
from __future__ import annotations

from ..atoms.activations import get_activation


def scope_text(bound, *, lifted: bool, cone_violation: float, tol: float) -> str:
    act = get_activation(bound.activation.name)   # the entry declares its scope
    src = None if bound.patterns is None else bound.patterns.source
    pats = "" if src is None else f" on the {bound.P} {src} patterns"
    out = f"optimality for the convex program {act.program}{pats}"
    point = "this convex point" if lifted else "these BM factors"
    if act.complete or src == "exact":
        net = "; " + act.network_scope
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
