"""The ReLU-cone dual norm (text after eq. (20), and (108)).

    max_{||u||_C <= 1, K u >= 0, ||v||_R <= 1} u^T G v

Exact when every right atom is a signed basis vector (R = l1 or q = 1): a convex program per
column and sign. Otherwise (the constrained nuclear norm's dual, NP-hard) an UPPER bound:
spectral (drop the cone), a KKT bound from a feasible point's active rows, or the SDP
relaxation max tr(G G^T W), W PSD, tr W = 1, K W K^T >= 0. `cone_dual_norm_lower` gives a
feasible value (a lower bound) for tests; certificates never use it.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..atoms.conic import DEFAULT_SOLVER, FIRST_ORDER_SOLVER
from .dnorm import DualNormValue, NormPair, dual_norm
from ..atoms.norms import NORMS


def _cone_linear_max(C: str, K: np.ndarray, p: int):
    """c -> (upper bound on max c^T u, a feasible u) over {||u||_C <= 1, K u >= 0}.

    One DPP program, re-solved per c. The value returned is a rigorous UPPER bound whatever
    the solver's accuracy: for any lambda >= 0 and feasible u, c^T u <= (c + K^T lambda)^T u
    <= ||c + K^T lambda||_{C*} (weak duality), evaluated at the solver's clipped multipliers
    and at lambda = 0. A certificate must never use a value that could be below the max."""
    import cvxpy as cp
    u, c = cp.Variable(p), cp.Parameter(p)
    cone = K @ u >= 0
    prob = cp.Problem(cp.Maximize(c @ u), [NORMS[C].cvxpy(u) <= 1, cone])
    dual = NORMS[NORMS[C].dual]

    def solve(cv):
        cv = np.asarray(cv, dtype=float)
        c.value = cv
        prob.solve(solver=DEFAULT_SOLVER)
        uv = np.zeros(p) if u.value is None else u.value / max(1.0, NORMS[C].numpy(u.value))
        upper = float(dual.numpy(cv))
        if cone.dual_value is not None:
            lam = np.maximum(np.asarray(cone.dual_value, dtype=float).reshape(-1), 0.0)
            upper = min(upper, float(dual.numpy(cv + K.T @ lam)))
        return max(upper, float(cv @ uv), 0.0), uv   # u = 0 is feasible, so the max is >= 0
    return solve


def _in_cone(K, u, tol=1e-7) -> bool:
    return K.shape[0] == 0 or float(np.min(K @ u)) >= -tol * max(1.0, np.abs(K).max())


def _flip_into_cone(K, u, v):
    """(u, v) or (-u, -v) (same u^T G v) if one of them lies in the cone, else None."""
    for s in (1.0, -1.0):
        if _in_cone(K, s * u):
            return s * u, s * v
    return None


def _cone_sdp(M: np.ndarray, K: np.ndarray, max_rounds: int = 30, dense_budget: int = 300_000):
    """Upper bound on max u^T M u over ||u||_2 <= 1, K u >= 0 by the SDP max tr(M W), tr W = 1,
    W PSD, k_i^T W k_j >= 0 (i < j; i = j holds by PSD).  Pairs are added by constraint
    generation when there are many.  Whatever the solver returns, the bound reported is
    lambda_max(M + K^T L K) for the multipliers L >= 0 (zero diagonal): for u in the cone
    u^T K^T L K u >= 0, so it bounds the cone problem for ANY such L.  Returns (bound, W)."""
    import cvxpy as cp
    p, N = M.shape[0], K.shape[0]
    I, J = np.triu_indices(N, 1)
    active = np.arange(len(I)) if len(I) * p * p <= dense_budget else np.zeros(0, int)
    best, Wbest = float(np.linalg.eigvalsh(M)[-1]), None
    for _ in range(max_rounds):
        W = cp.Variable((p, p), PSD=True)
        A = np.einsum("na,nb->nab", K[I[active]], K[J[active]])
        A = 0.5 * (A + A.transpose(0, 2, 1)).reshape(len(active), p * p)
        cons = [cp.trace(W) == 1] + ([A @ cp.vec(W, order="C") >= 0] if len(active) else [])
        try:
            with warnings.catch_warnings():   # the bound below is valid for any multipliers
                warnings.simplefilter("ignore")
                cp.Problem(cp.Maximize(cp.trace(M @ W)), cons).solve(solver=DEFAULT_SOLVER)
        except cp.SolverError:
            break
        if W.value is None:
            break
        L = np.zeros((N, N))
        if len(active):
            L[I[active], J[active]] = np.maximum(cons[1].dual_value, 0.0) / 2
        bound = float(np.linalg.eigvalsh(M + K.T @ (L + L.T) @ K)[-1])
        if bound < best:
            best, Wbest = bound, W.value
        Wbest = W.value if Wbest is None else Wbest
        V = (K @ W.value @ K.T)[I, J]
        viol = np.setdiff1d(np.flatnonzero(V < -1e-9 * max(1.0, np.abs(V).max())), active)
        if viol.size == 0:
            break
        active = np.union1d(active, viol[np.argsort(V[viol])][: max(4 * N, 50)])
    return best, Wbest


def _cone_kkt(M: np.ndarray, K: np.ndarray, u: np.ndarray, time_limit: float = 30.0) -> float:
    """Cheap rigorous bound lambda_max(M + K^T L K) (valid for any L >= 0, see _cone_sdp),
    L restricted to the rows A active at a feasible u (K_A u = 0): complementary slackness
    of the SDP at W = u u^T forces L_ij = 0 when both rows are inactive, so this restriction
    loses nothing when u is the global maximizer; one p x p PSD cone, |A| N multipliers."""
    import cvxpy as cp
    p, N = M.shape[0], K.shape[0]
    lam = float(np.linalg.eigvalsh(M)[-1])
    r = K @ u
    A = np.flatnonzero(r <= 1e-6 * max(np.abs(r).max(), 1e-300))
    if A.size == 0 or A.size == N:
        return lam
    X, t, XK = cp.Variable((A.size, N), nonneg=True), cp.Variable(), cp.Variable((A.size, p))
    KLK = K[A].T @ XK                     # L = E_A^T X + X^T E_A >= 0; XK = X K keeps it sparse
    # The infimum may need L -> infinity (u on a low-dimensional face); a cap keeps the
    # program bounded and any capped L is still a valid certificate.
    cap = 1e3 * np.abs(M).max() / max(np.abs(K).max(), 1e-300) ** 2
    cons = [t * np.eye(p) - M - KLK - KLK.T >> 0, XK == X @ K, X <= cap]
    try:
        with warnings.catch_warnings():   # SCS is fast here; its inaccuracy is repaired below
            warnings.simplefilter("ignore")
            cp.Problem(cp.Minimize(t), cons).solve(
                solver=FIRST_ORDER_SOLVER, eps_abs=1e-9, eps_rel=1e-9, max_iters=20000,
                time_limit_secs=time_limit)
    except cp.SolverError:
        return lam
    if X.value is None:
        return lam
    L = np.zeros((N, N))
    L[A] = np.maximum(X.value, 0.0)
    return min(lam, float(np.linalg.eigvalsh(M + K.T @ (L + L.T) @ K)[-1]))


def cone_dual_norm(G, K, C: str, R: str, *, method: str = "auto", sdp_max_p: int = 30,
                   sdp_max_N: int = 400) -> DualNormValue:
    """max_{||u||_C<=1, K u>=0, ||v||_R<=1} u^T G v: the ReLU dual norm after eq. (20), (108).

    (a) R = l1 or q == 1: exact, max over columns j and signs of a convex program in u.
    (b) (l2, l2): upper bounds "spectral" (drop the cone), "kkt" (dual certificate at the
        best feasible point found, cheap) and "sdp" (tight; cost ~ N^2 p^2, about 1 min at
        p=20, N=400); the smallest computed is returned.  "auto" = kkt when p N <= 20000,
        then sdp if a gap remains and p <= sdp_max_p, N <= sdp_max_N.  Exact when a
        feasible candidate attains the bound (to 1e-6 relative).
    (c) otherwise: drop the cone and use ``dual_norm`` (an upper bound)."""
    G = np.atleast_2d(np.asarray(G, dtype=float))
    K = np.asarray(K, dtype=float).reshape(-1, G.shape[0])
    p, q = G.shape
    pair = NormPair(C, R)
    if K.shape[0] == 0:   # no cone at all: the plain dual norm
        return dual_norm(G, C, R)
    if pair.relu_exact(q):
        solve = _cone_linear_max(C, K, p)
        best = (-1.0, None, None)
        for j in range(q):
            for sgn in (1.0, -1.0):
                val, u = solve(sgn * G[:, j])
                if val > best[0]:
                    best = (val, u, sgn * np.eye(q)[j])
        return DualNormValue(max(best[0], 0.0), "exact", "cone-columns", best[1], best[2])
    if pair.euclidean:
        if method not in ("auto", "sdp", "spectral", "kkt"):
            raise ValueError(f"unknown method {method!r}; use auto, sdp, kkt or spectral")
        M, (Uu, s, _) = G @ G.T, np.linalg.svd(G)
        bounds, cands = {"spectral": float(s[0]) ** 2}, [Uu[:, 0]]   # squared values
        closed = False
        if method == "kkt" or (method == "auto" and p * K.shape[0] <= 20_000):
            low = cone_dual_norm_lower(G, K, C, R)
            bounds["kkt"] = _cone_kkt(M, K, low.u)
            cands.append(low.u)
            closed = low.value ** 2 >= bounds["kkt"] * (1 - 1e-6)
        if method == "sdp" or (method == "auto" and not closed and p <= sdp_max_p
                               and K.shape[0] <= sdp_max_N):
            bounds["sdp"], W = _cone_sdp(M, K)
            if W is not None:
                cands.append(np.linalg.eigh(W)[1][:, -1])   # rank-1 W = u u^T is exact
        name = min(reversed(list(bounds)), key=bounds.get)   # ties: the last tried
        value = float(np.sqrt(max(bounds[name], 0.0)))
        for cand in cands:
            gu = G.T @ cand
            vv = gu / np.linalg.norm(gu) if np.linalg.norm(gu) > 0 else np.eye(q)[0]
            hit = _flip_into_cone(K, cand / max(np.linalg.norm(cand), 1.0), vv)
            if hit is not None and float(hit[0] @ G @ hit[1]) >= value * (1 - 1e-6):
                return DualNormValue(value, "exact", name, hit[0], hit[1])
        return DualNormValue(value, "upper", name)
    dn = dual_norm(G, C, R)
    if dn.exactness == "exact":
        hit = _flip_into_cone(K, dn.u, dn.v)
        if hit is not None:
            return DualNormValue(dn.value, "exact", "drop-cone+" + dn.method, hit[0], hit[1])
    return DualNormValue(dn.value, "upper", "drop-cone+" + dn.method)


def cone_dual_norm_lower(G, K, C: str, R: str, *, iters: int = 10) -> DualNormValue:
    """Feasible-point LOWER bound (tests only, never a certificate): alternating
    maximization u <- argmax_{B_C, Ku>=0} (G v)^T u, v <- argmax_{B_R} (G^T u)^T v, which
    increases u^T G v monotonically, from the top singular vectors and the largest columns."""
    G = np.atleast_2d(np.asarray(G, dtype=float))
    K = np.asarray(K, dtype=float).reshape(-1, G.shape[0])
    p, q = G.shape
    solve, Rn = _cone_linear_max(C, K, p), NORMS[R]
    _, _, Vt = np.linalg.svd(G)
    starts = [Vt[i] for i in range(min(2, q))]
    starts += [np.eye(q)[j] for j in np.argsort(-np.linalg.norm(G, axis=0))[:3]]
    best = DualNormValue(0.0, "lower", "alternating", np.zeros(p), np.eye(q)[0])
    for v0 in starts:
        for v in (v0 / max(Rn.numpy(v0), 1e-300), -v0 / max(Rn.numpy(v0), 1e-300)):
            prev = -np.inf
            for _ in range(iters):
                _, u = solve(G @ v)
                v = Rn.ball_argmax(G.T @ u)
                val = float(u @ G @ v)
                if val <= prev + 1e-12:
                    break
                prev = val
            if _in_cone(K, u) and val > best.value:
                best = DualNormValue(val, "lower", "alternating", u, v)
    return best
