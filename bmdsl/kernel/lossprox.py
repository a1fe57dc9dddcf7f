"""Proximal maps of the losses: prox_{tF}(V) = argmin_X t F(X) + 1/2 ||X - V||^2, in torch.

The library is handed in as the first argument (as the torch forms of lossforms.py), so
this file imports nothing. Every loss of the registry is separable, per entry (squared,
huber, logistic) or per row over the class axis (cross_entropy), so its prox is a batch of
small convex problems: closed form where there is one (squared, huber), else Newton's
method on each small problem at once, vectorized (logistic: a scalar root in a bracket,
safeguarded by bisection; cross_entropy: damped Newton per row, the Hessian
I + t (diag s - s s^T) inverted by Sherman-Morrison). `x0`, a previous prox point, is the
Newton start: a lifted ADMM calls the prox with slowly moving arguments, so two or three
steps reach float64's rounding. Used by runtime/proxadmm.py (the u-step of the split
u = L(Z)); tests check each against CVXPY's solve of the same prox problem.
"""
NEWTON_MAX = 60          # Newton (or bisection) steps per call at most
NEWTON_TOL = 1e-13       # stop once every residual is below this, relative to its scale


def prox_squared(torch, v, y, t):
    """argmin_x t/2 (x - y)^2 + 1/2 (x - v)^2 = (v + t y) / (1 + t)."""
    return (v + t * y) / (1.0 + t)


def prox_huber(torch, v, y, t, delta):
    """Residual r = v - y: r / (1 + t) inside |r| <= delta (1 + t) (the quadratic zone),
    else r - t delta sign(r) (the linear zone moves it by t delta)."""
    r = v - y
    inside = r.abs() <= delta * (1.0 + t)
    return y + torch.where(inside, r / (1.0 + t), r - t * delta * torch.sign(r))


def prox_logistic(torch, v, y, t, x0=None):
    """With z = y x (y = +-1) each entry solves phi(z) = z - y v - t sigmoid(-z) = 0,
    phi' = 1 + t sigmoid(z) sigmoid(-z) in [1, 1 + t/4]: one increasing root in
    [y v, y v + t]. Newton steps that leave the current bracket, or follow a step that did
    not halve |phi|, are bisection steps (as Numerical Recipes' rtsafe)."""
    w = y * v
    lo, hi = w.clone(), w + t
    z = w if x0 is None else torch.minimum(torch.maximum(y * x0, lo), hi)
    scale = 1.0 + w.abs() + t
    last = torch.full_like(w, float("inf"))
    for _ in range(NEWTON_MAX):
        s = torch.sigmoid(-z)
        phi = z - w - t * s
        done = phi.abs() <= NEWTON_TOL * scale
        if bool(done.all()):
            break
        lo = torch.where(phi < 0, z, lo)
        hi = torch.where(phi > 0, z, hi)
        step = z - phi / (1.0 + t * s * (1.0 - s))
        # Newton can zigzag across the inflection at z = 0 (phi is convex left of it,
        # concave right): a step that did not halve |phi| is followed by bisection
        newton = (step > lo) & (step < hi) & (phi.abs() <= 0.5 * last)
        last = phi.abs()
        z = torch.where(done, z, torch.where(newton, step, 0.5 * (lo + hi)))
    return y * z


def _ce_objective(torch, x, v, y, t):
    return t * (torch.logsumexp(x, -1) - (y * x).sum(-1)) + 0.5 * ((x - v) ** 2).sum(-1)


def prox_cross_entropy(torch, v, y, t, x0=None):
    """Rows (last axis) of min_x t (lse(x) - <y, x>) + 1/2 ||x - v||^2: gradient
    g = t (s - y) + x - v (s = softmax(x)), Hessian H = diag(d) - t s s^T with d = 1 + t s,
    H^{-1} g = g/d + t (s/d) <s/d, g> / (1 - t <s, s/d>) (the denominator is > 0 as s sums
    to 1). A step is halved, per row, until the row's objective does not increase (beyond its
    rounding). Every decision is a row's own (a converged row stops moving, a row near its
    root takes the full step): a row's result does not depend on the other rows, so one
    shard of the rows gets the same bits as all of them (the sharded lifted ADMM)."""
    x = v.clone() if x0 is None else x0.clone()
    scale = 1.0 + v.abs().amax(-1, keepdim=True) + t
    for _ in range(NEWTON_MAX):
        s = torch.softmax(x, -1)
        g = t * (s - y) + x - v
        done = (g.abs() <= NEWTON_TOL * scale).all(-1)
        if bool(done.all()):
            break
        d = 1.0 + t * s
        sd = s / d
        denom = (1.0 - t * (s * sd).sum(-1, keepdim=True)).clamp_min(1e-300)
        step = g / d + t * sd * (sd * g).sum(-1, keepdim=True) / denom
        # near the root (the Hessian >= I, lse's Hessian changes by O(t |dx|)): a full
        # step only shrinks g, so those rows skip the line search
        search = ~done & (t * g.norm(dim=-1) > 0.25)
        alpha = torch.ones_like(g[..., 0])
        if bool(search.any()):
            f0 = _ce_objective(torch, x, v, y, t)
            # the objective's rounding: its terms are of size t |x| and (x - v)^2
            slack = 1e-13 * (1.0 + f0.abs() + t * x.abs().amax(-1))
            for _ in range(30):
                trial = x - alpha[..., None] * step
                worse = search & (_ce_objective(torch, trial, v, y, t) > f0 + slack)
                if not bool(worse.any()):
                    break
                alpha = torch.where(worse, 0.5 * alpha, alpha)
        x = torch.where(done[..., None], x, x - alpha[..., None] * step)
    return x
