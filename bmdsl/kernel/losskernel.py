"""The declaration every loss of lossforms.py fills in (`LossKernel`: its capabilities and
their defaults) and the numeric helpers the losses share (numpy only, nothing from bmdsl,
so an emitted module of either backend can carry it)."""
import numpy as np

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
