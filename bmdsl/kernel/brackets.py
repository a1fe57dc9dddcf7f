"""Convex brackets lower <= ||Z||_D <= upper in CVXPY for the NP-hard norm pairs (those
with an l_inf side and no l1 side; Sahiner et al. 2024, eq. (15))."""
import numpy as np


def hard_pair_brackets(Z, C, R, sdp):
    """((lower expr, note, constraints), (upper expr, note, constraints)); the lower is the
    SDP relaxation when `sdp`, else the best of closed-form dual bounds."""
    import cvxpy as cp     # here: importing bmdsl (the norm-pair table) needs no cvxpy
    p, q = Z.shape
    nuc = cp.normNuc(Z)
    # upper: a subset of the atoms gives a larger gauge
    if (C, R) == ("linf", "linf"):
        Z1, Z2, Z3 = (cp.Variable((p, q)) for _ in range(3))
        up = (cp.normNuc(Z1) + cp.sum(cp.max(cp.abs(Z2), axis=1))
              + cp.sum(cp.max(cp.abs(Z3), axis=0)),
              "B_2, B_1 are inside B_inf so (l2,l2), (l1,linf), (linf,l1) atoms are "
              "atoms; the gauge is subadditive, so the infimal convolution of ||.||_*, "
              "sum_i ||row_i||_inf, sum_j ||col_j||_inf is >= ||Z||_D", (Z1 + Z2 + Z3 == Z,))
    else:
        up = (nuc, "B_2 is inside B_inf, so every nuclear-norm atom u v^T (||u||_2, "
              "||v||_2 <= 1) is a D-atom: ||Z||_D <= ||Z||_*", ())
    # lower: any norm N >= ||.||_D* has dual N* <= ||.||_D
    if sdp:
        P, Q = cp.Variable((p, p), symmetric=True), cp.Variable((q, q), symmetric=True)
        phi = {"l2": cp.trace, "linf": lambda X: cp.max(cp.diag(X))}
        lo = (0.5 * (phi[C](P) + phi[R](Q)),
              "SDP relaxation: Z = sum t_i u_i v_i^T gives P = sum t_i u_i u_i^T, Q = sum t_i "
              "v_i v_i^T with [[P,Z],[Z^T,Q]] PSD and tr P (l2) / max diag P (linf) <= sum t_i",
              (cp.bmat([[P, Z], [Z.T, Q]]) >> 0,))
        return lo, up
    terms = {("l2", "linf"): [nuc / np.sqrt(q), cp.max(cp.norm(Z, 2, axis=0))],
             ("linf", "l2"): [nuc / np.sqrt(p), cp.max(cp.norm(Z, 2, axis=1))],
             ("linf", "linf"): [nuc / np.sqrt(p * q), cp.max(cp.abs(Z)),
                                cp.max(cp.norm(Z, 2, axis=1)) / np.sqrt(q),
                                cp.max(cp.norm(Z, 2, axis=0)) / np.sqrt(p)]}[(C, R)]
    lo = (cp.maximum(*terms) if len(terms) > 1 else terms[0],
          "duals of the closed-form upper bounds on ||G||_D* (B_inf in sqrt(k) B_2; "
          "triangle inequality over rows/columns); each is <= ||Z||_D", ())
    return lo, up
