"""Loss kernel: every number a loss F(Yhat) contributes, one class per loss.

F is a SUM over all entries (never a mean); Yhat and Y have the same shape; the class axis
is the last axis. F*(V) = sup_Yhat <V, Yhat> - F(Yhat), +inf off its domain, gives the
Fenchel dual of Sahiner et al. 2024, eq. (112)-(113). A class declares its value, gradient,
conjugate, the dual ray's domain, its CVXPY and torch forms (which receive the library
module, `cp` or `torch`, as their first argument) and its capabilities
(`quadratic`, `twice_differentiable`, metrics, class labels, optionally the Hessian as
`hessian_diag` or per-sample `hessian_block`, and optionally `torch_prox`,
the proximal map in torch of lossprox.py: the registry entry's `prox`);
`bmdsl.atoms.losses` builds the
registry from `LOSS_KERNELS`, and emitted trainers paste this file. Adding a loss is one
class here plus its line in `LOSS_KERNELS`.

Imports numpy and lossprox.py only (the CVXPY and torch forms and the prox are handed their
library), and nothing from
bmdsl, so an emitted module of either backend can carry it.
"""
import numpy as np

from .lossprox import prox_cross_entropy, prox_huber, prox_logistic, prox_squared

LOSS_TOL = 1e-8   # slack when testing membership of a conjugate's domain (rounding only)


def loss_array(x):
    return np.asarray(x, dtype=float)


def loss_xlogx(x):
    # 0 log 0 = 0 (the limit), which the conjugates of softmax/sigmoid need at the boundary.
    x = np.clip(x, 0.0, None)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def loss_logsumexp(z):
    m = np.max(z, axis=-1, keepdims=True)   # shift by the max: no overflow
    return (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))[..., 0]


def loss_sigmoid(x):
    e = np.exp(-np.abs(x))                  # never exponentiate a positive number
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def loss_interval(lo_terms, hi_terms):
    return float(max([-np.inf, *lo_terms])), float(min([np.inf, *hi_terms]))


def loss_torch_y(torch, y, yh):
    return torch.as_tensor(y, dtype=yh.dtype, device=yh.device)


def finite_targets(y):
    return None if np.all(np.isfinite(loss_array(y))) else "targets contain NaN or inf"


def positive_number(x):
    try:
        ok = float(x) > 0 and np.isfinite(float(x)) and not isinstance(x, bool)
    except (TypeError, ValueError):
        return "must be a real number"
    return None if ok else "must be a finite number > 0"


class LossKernel:
    """The declaration every loss fills in. `params`: (name, default, accepts, check, doc)
    with check(value) -> message or None. `scale_domain(g, y) -> (lo, hi)` is the interval
    of t with F*(t g) finite; `closed_form_scale(g, y, lo, hi)`, if declared, maximizes
    -F*(t g) on it exactly; `link` maps scores to probabilities (classification only).
    `torch_prox(torch, v, y, t, x0=None)`, if declared, is
    argmin_x t F(x; y) + 1/2 ||x - v||^2 (x0: a start for an iterative prox): the lifted
    prox ADMM of runtime/proxadmm.py needs it, a loss without one takes the lifted FISTA."""
    name = ""
    doc = ""
    latex = ""
    params = ()
    quadratic = False              # F = 1/2 ||Yhat - Y||_F^2 exactly: identity Hessian
    twice_differentiable = True    # Theorem 3.3's rank-deficient clause needs C^2
    metrics = ("mse", "r2")        # held-out report (bmdsl.workflow.metrics keys)
    class_labels = False           # whole-number labels [n] may stand for one-hot [n, c]
    closed_form_scale = None
    link = None
    # hessian_diag(yh, y) -> the diagonal of F's Hessian in Yhat, declared only by a loss that
    # is a sum of scalar functions of each entry (so the diagonal is the whole Hessian; a
    # piecewise-quadratic one gives its generalized Hessian): the cone interior point's
    # Newton system needs it (trainer/runtime/interior.py). None: not declared.
    hessian_diag = None
    # hessian_block(yh, y) -> [..., c, c]: F's Hessian per sample, one c x c block over the
    # class axis (the last), declared by a loss that couples the classes of a sample but not
    # the samples (softmax cross-entropy); with hessian_diag, what the lifted proximal Newton
    # (trainer/runtime/pnewton.py) builds L^* H L from. None: not declared.
    hessian_block = None
    # CVXPY form's canonical (rows, variables) per entry of Yhat, then per sample, for the
    # program's memory estimate (core/cvxfootprint.loss_program); None: a conservative default
    cvxpy_size = None
    torch_prox = None
    # smoothness: a Lipschitz constant L_F of F's gradient in Yhat (F''(Yhat) <= L_F I), or
    # None: not declared. The lifted majorization (trainer/runtime/majorize.py) majorizes F
    # at Yhat0 by F(Yhat0) + <grad, Yhat - Yhat0> + L_F / 2 ||Yhat - Yhat0||^2, a squared loss
    smoothness = None
    # curvature_bound(c) -> [c, c]: a constant B >= F''(Yhat) on each sample's c classes (the
    # last axis), tighter than smoothness * I; the majorization's metric is then B (x) G_F
    curvature_bound = None
    # terms(yh, y) -> the array (per entry, or per row over the class axis) whose sum is
    # value(yh, y): the lifted warm starts sum it by blocks of samples in a fixed order
    # (trainer/runtime/liftedops.py). None: not declared (they call value per block)
    terms = None

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, float(value))

    def target_check(self, y):
        return finite_targets(y)


class Squared(LossKernel):
    name, doc, latex = "squared", "0.5 ||Yhat - Y||^2", r"\tfrac12\|\hat Y - Y\|_F^2"
    quadratic, class_labels = True, True
    smoothness = 1.0               # F'' = I
    cvxpy_size = (1, 1, 0, 0)      # t = Yhat - Y (one row), 1/2 ||t||^2 in the objective

    def value(self, yh, y):
        return 0.5 * float(np.sum((loss_array(yh) - loss_array(y)) ** 2))

    def terms(self, yh, y):
        return 0.5 * (loss_array(yh) - loss_array(y)) ** 2

    def grad(self, yh, y):
        return loss_array(yh) - loss_array(y)

    def conjugate(self, v, y):     # complete the square
        return float(np.sum(loss_array(v) * loss_array(y)) + 0.5 * np.sum(loss_array(v) ** 2))

    def scale_domain(self, g, y):
        return -np.inf, np.inf

    def closed_form_scale(self, g, y, lo, hi):
        # -F*(tg) is a concave parabola with vertex -<g,y>/||g||^2: clipping is exact
        gg = float(np.sum(g * g))
        return 0.0 if gg == 0 else float(np.clip(-np.sum(g * y) / gg, lo, hi))

    def cvxpy(self, cp, e, y):
        return 0.5 * cp.sum_squares(e - loss_array(y))

    def hessian_diag(self, yh, y):
        return np.ones_like(loss_array(yh))

    def torch(self, torch, yh, y):
        return 0.5 * ((yh - loss_torch_y(torch, y, yh)) ** 2).sum()

    def torch_prox(self, torch, v, y, t, x0=None):
        return prox_squared(torch, v, loss_torch_y(torch, y, v), t)


class CrossEntropy(LossKernel):
    name, doc = "cross_entropy", "softmax cross-entropy"
    latex = r"\sum_i \mathrm{lse}(\hat y_i) - \langle y_i, \hat y_i\rangle"
    metrics, class_labels = ("accuracy",), True
    # diag(s) - s s^T <= 1/2 (I - 1 1^T / c) <= 1/2 I (Bohning 1992)
    smoothness = 0.5
    cvxpy_size = (3, 1, 1, 1)      # an exp cone per entry; per sample lse's t, sum(u) <= 1

    def value(self, yh, y):
        yh = loss_array(yh)
        return float(np.sum(loss_logsumexp(yh)) - np.sum(loss_array(y) * yh))

    def terms(self, yh, y):
        yh = loss_array(yh)
        return loss_logsumexp(yh) - np.sum(loss_array(y) * yh, axis=-1)

    def grad(self, yh, y):
        z = loss_array(yh)
        return np.exp(z - loss_logsumexp(z)[..., None]) - loss_array(y)   # softmax - y

    def conjugate(self, v, y):
        # row-wise f*(v) = lse*(v + y) = sum w log w, w = v + y in the simplex
        w = loss_array(v) + loss_array(y)
        if np.any(w < -LOSS_TOL) or \
                np.any(np.abs(w.sum(axis=-1) - 1.0) > LOSS_TOL * w.shape[-1]):
            return float("inf")
        return float(np.sum(loss_xlogx(w)))

    def scale_domain(self, g, y):
        # t g + y stays in the simplex iff g's rows sum to 0 and y + t g >= 0 entrywise
        g, y = loss_array(g), loss_array(y)
        if np.any(np.abs(g.sum(axis=-1)) > LOSS_TOL * g.shape[-1]):
            return 0.0, 0.0
        pos, neg = g > 0, g < 0
        return loss_interval(-y[pos] / g[pos], -y[neg] / g[neg])

    def link(self, z):
        z = loss_array(z)
        return np.exp(z - loss_logsumexp(z)[..., None])

    def curvature_bound(self, c):  # Bohning 1992: diag(s) - s s^T <= 1/2 (I - 1 1^T / c)
        return 0.5 * (np.eye(c) - 1.0 / c)

    def hessian_block(self, yh, y):
        # softmax's Jacobian per sample: diag(s) - s s^T (positive semidefinite, rank c - 1)
        s = self.link(yh)
        return s[..., :, None] * np.eye(s.shape[-1]) - s[..., :, None] * s[..., None, :]

    def target_check(self, y):
        y = loss_array(y)
        if y.ndim == 0:
            return "cross_entropy targets need a class axis (last axis)"
        if np.any(y < -LOSS_TOL):
            return "cross_entropy targets must be non-negative (one-hot or probability rows)"
        if np.any(np.abs(y.sum(axis=-1) - 1.0) > 1e-8):
            return "cross_entropy target rows (last axis) must sum to 1"
        return finite_targets(y)

    def cvxpy(self, cp, e, y):
        y = loss_array(y)
        c = y.shape[-1]
        e2 = cp.reshape(e, (-1, c), order="C") if len(e.shape) != 2 else e   # rows = samples
        return cp.sum(cp.log_sum_exp(e2, axis=1)) - cp.sum(cp.multiply(y.reshape(-1, c), e2))

    def torch(self, torch, yh, y):
        return torch.logsumexp(yh, dim=-1).sum() - (loss_torch_y(torch, y, yh) * yh).sum()

    def torch_prox(self, torch, v, y, t, x0=None):
        return prox_cross_entropy(torch, v, loss_torch_y(torch, y, v), t, x0)


class Logistic(LossKernel):
    name, doc = "logistic", "log(1 + exp(-Y Yhat)), Y in {-1, +1}"
    latex = r"\sum_i \log(1 + e^{-y_i \hat y_i})"
    metrics = ("sign_accuracy",)
    smoothness = 0.25              # sigma(m) sigma(-m) <= 1/4 (y^2 = 1)
    cvxpy_size = (7, 3, 0, 0)      # log(1 + e^x) <= t: two exp cones and a row per entry

    def value(self, yh, y):
        return float(np.sum(np.logaddexp(0.0, -loss_array(y) * loss_array(yh))))

    def terms(self, yh, y):
        return np.logaddexp(0.0, -loss_array(y) * loss_array(yh))

    def grad(self, yh, y):
        return -loss_array(y) * loss_sigmoid(-loss_array(y) * loss_array(yh))

    def conjugate(self, v, y):
        # with a = -y v: f*(v) = a log a + (1-a) log(1-a) on [0, 1] (softplus's conjugate)
        a = -loss_array(y) * loss_array(v)
        if np.any(a < -LOSS_TOL) or np.any(a > 1 + LOSS_TOL):
            return float("inf")
        a = np.clip(a, 0.0, 1.0)
        return float(np.sum(loss_xlogx(a) + loss_xlogx(1.0 - a)))

    def scale_domain(self, g, y):
        c = (-loss_array(y) * loss_array(g)).ravel()      # a(t) = t c must stay in [0, 1]
        pos, neg = c[c > 0], c[c < 0]
        return loss_interval(([0.0] if pos.size else []) + list(1.0 / neg),
                             ([0.0] if neg.size else []) + list(1.0 / pos))

    def link(self, z):
        return loss_sigmoid(loss_array(z))

    def hessian_diag(self, yh, y):
        # sigma(m) sigma(-m) at the margin m = y yhat (y^2 = 1), computed without overflow
        m = loss_array(y) * loss_array(yh)
        return loss_sigmoid(m) * loss_sigmoid(-m)

    def target_check(self, y):
        y = loss_array(y)
        return None if np.all((y == 1.0) | (y == -1.0)) else "logistic targets must be -1 or +1"

    def cvxpy(self, cp, e, y):
        return cp.sum(cp.logistic(-cp.multiply(loss_array(y), e)))

    def torch(self, torch, yh, y):
        return torch.nn.functional.softplus(-loss_torch_y(torch, y, yh) * yh).sum()

    def torch_prox(self, torch, v, y, t, x0=None):
        return prox_logistic(torch, v, loss_torch_y(torch, y, v), t, x0)


# Huber's delta is in the units of the residual Yhat - Y. Below 1e-8 the loss is delta
# times the l1 loss down to values whose squares reach float64's subnormal range (delta =
# 5e-324 made F exactly 0 and a "true gap" of -1); above 1e8 every residual of data at a
# sane scale is quadratic: the loss is the squared one. Outside, rescale the data instead.
HUBER_DELTA = (1e-8, 1e8)


def huber_delta(x):
    low, high = HUBER_DELTA
    return positive_number(x) or (None if low <= float(x) <= high else
                                  f"must satisfy {low:g} <= delta <= {high:g} (rescale the "
                                  "data for a threshold outside it)")


class Huber(LossKernel):
    name, doc = "huber", "Huber with threshold delta"
    latex = (r"\sum_i h_{\delta}(\hat y_i - y_i),\ h_\delta(r)=\begin{cases}r^2/2 & |r|\le"
             r"\delta\\ \delta(|r|-\delta/2) & \text{else}\end{cases}")
    params = (("delta", 1.0, f"a positive number, {HUBER_DELTA[0]:g} <= delta <= "
               f"{HUBER_DELTA[1]:g}", huber_delta, "quadratic zone half-width"),)
    twice_differentiable = False   # C^1 only: the second derivative jumps at |r| = delta
    smoothness = 1.0               # the gradient clip(r, -delta, delta) is 1-Lipschitz
    cvxpy_size = (3, 3, 0, 0)      # r = s + n, |s| <= t (3 rows), n^2 in the objective
    delta = 1.0

    def value(self, yh, y):
        return float(np.sum(self.terms(yh, y)))

    def terms(self, yh, y):
        d, r = self.delta, np.abs(loss_array(yh) - loss_array(y))
        return np.where(r <= d, 0.5 * r ** 2, d * (r - 0.5 * d))

    def grad(self, yh, y):
        return np.clip(loss_array(yh) - loss_array(y), -self.delta, self.delta)

    def conjugate(self, v, y):
        # h is the Moreau envelope of d|.|, so h*(v) = v^2/2 on |v| <= d; shift by Y
        v = loss_array(v)
        if np.any(np.abs(v) > self.delta * (1 + LOSS_TOL)):
            return float("inf")
        return float(np.sum(v * loss_array(y)) + 0.5 * np.sum(v ** 2))

    def hessian_diag(self, yh, y):
        # piecewise constant: 1 in the quadratic zone, 0 outside (the generalized Hessian)
        r = np.abs(loss_array(yh) - loss_array(y))
        return (r <= self.delta).astype(float)

    def scale_domain(self, g, y):
        m = float(np.max(np.abs(loss_array(g)))) if np.size(g) else 0.0
        return (-self.delta / m, self.delta / m) if m > 0 else (-np.inf, np.inf)

    def cvxpy(self, cp, e, y):
        return 0.5 * cp.sum(cp.huber(e - loss_array(y), self.delta))  # cvxpy's is 2x ours

    def torch(self, torch, yh, y):
        return torch.nn.functional.huber_loss(yh, loss_torch_y(torch, y, yh), reduction="sum",
                                              delta=self.delta)

    def torch_prox(self, torch, v, y, t, x0=None):
        return prox_huber(torch, v, loss_torch_y(torch, y, v), t, self.delta)


LOSS_KERNELS = {k.name: k for k in (Squared, CrossEntropy, Logistic, Huber)}
