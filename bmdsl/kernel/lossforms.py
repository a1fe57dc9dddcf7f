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
registry from `LOSS_KERNELS`, and emitted trainers paste the model's class. Adding a loss is
one class here (the classification losses: lossclasses.py; the base class and the shared
helpers: losskernel.py) plus its line in `LOSS_KERNELS`.

Imports numpy and the kernel's loss modules only (the CVXPY and torch forms and the prox
are handed their library), and nothing from bmdsl, so an emitted module of either backend
can carry it.
"""
import numpy as np

from .losskernel import LOSS_TOL, LossKernel, loss_array, loss_interval  # noqa: F401
from .losskernel import finite_targets, loss_torch_y, positive_number  # noqa: F401
from .lossclasses import CrossEntropy, Logistic
from .lossprox import prox_huber, prox_squared


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
