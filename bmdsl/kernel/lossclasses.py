"""The classification losses of lossforms.py: softmax cross-entropy over the class axis
(the last) and the logistic loss of +-1 labels, with their conjugates on the simplex and
the interval (Sahiner et al. 2024, eq. (112)-(113))."""
import numpy as np

from .losskernel import LOSS_TOL, LossKernel, loss_array, loss_interval, loss_torch_y
from .losskernel import finite_targets, loss_logsumexp, loss_sigmoid, loss_xlogx
from .lossprox import prox_cross_entropy, prox_logistic


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
        if y.ndim <= 1:    # samples first: [n] alone would make the samples the classes
            return "cross_entropy targets need a class axis after the samples' (Y[n, c])"
        if y.shape[-1] < 2:   # softmax of one logit is 1: F = 0 for every network
            return ("cross_entropy needs 2 or more classes (last axis of length 1 here: the "
                    "loss would be 0 for every network); for two classes with labels +-1 "
                    "use loss logistic")
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
