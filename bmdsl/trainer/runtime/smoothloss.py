"""The loss F(Yhat) as the cone interior point (interior.py) sees it: its value, its gradient
and the diagonal of its Hessian at a prediction, summed over samples in a fixed order (rowsums.py).

Two kinds, chosen by what the loss's entry (bmdsl/kernel/lossforms.py) declares, never by
its name:
* `Quadratic`: the entry is `quadratic` (F = 1/2 ||Yhat - Y||^2): the identity Hessian, so
  the Newton system's data part A^T A is constant (factored once in the dense form);
* `Diagonal`: the entry declares `hessian_diag` (F a sum of scalar functions of each entry,
  e.g. logistic, or Huber with its piecewise-constant generalized Hessian): A^T diag(h) A,
  rebuilt at each iteration.
A loss with neither (cross_entropy: its softmax couples the classes) has no interior point;
`refusal` says why. A free output offset (offset.py) makes F_b's Hessian the centering
projection, not diagonal: refused as well.
"""
import numpy as np
import torch

from ...kernel.lossforms import LOSS_KERNELS
from .forms import plain_squared
from .offset import has_output_bias


def _kernel(spec):
    kernel = LOSS_KERNELS.get(spec["loss"])
    return None if kernel is None else kernel(**dict(spec.get("loss_params") or ()))


def refusal(spec):
    """None where the interior point can take this loss, else why not (an emitted module
    keeps only the branch of its model's loss)."""
    return None if plain_squared(spec) else _diagonal_refusal(spec)


def _diagonal_refusal(spec):
    if has_output_bias(spec):
        return "no free output offset with a loss other than the squared one (F_b's " \
            "Hessian is not diagonal)"
    kernel = _kernel(spec)
    if kernel is None or kernel.hessian_diag is None:
        return (f"a loss whose entry declares a diagonal Hessian (hessian_diag; "
                f"{spec['loss']!r} does not)")
    return None


def loss_model(problem, sums, y):
    """Quadratic or Diagonal for the problem's loss (refusal(spec) must be None); `sums`:
    the interior point's fixed-order sums over the rows of |y| (rowsums.RowSums), y the
    target on those rows (padded per block with zeros, which the sums leave out)."""
    return Quadratic(y, sums) if plain_squared(problem.spec) else \
        Diagonal(y, _kernel(problem.spec), sums)


class Quadratic:
    """F = 1/2 |Yhat - Y|^2: gradient the residual, Hessian the identity (hessian -> None)."""
    quadratic = True

    def __init__(self, y, sums):
        self.y, self.sums = y, sums       # a padding row: yhat = y = 0, no term

    def value(self, yhat) -> float:
        r = yhat - self.y
        return 0.5 * self.sums.sum(r * r, "y")

    def zero_value(self) -> float:
        return 0.5 * self.sums.sum(self.y * self.y, "y")

    def gradient(self, yhat):
        return yhat - self.y

    def hessian(self, yhat):
        return None


class Diagonal:
    """A separable F through its entry's numpy value, grad and hessian_diag (a prediction
    [|y|] is handed over flat, on the rows padded per block: rowsums.py)."""
    quadratic = False

    def __init__(self, y, kernel, sums):
        self.kernel, self.sums, self.y = kernel, sums, y
        self.y_np = y.detach().cpu().double().numpy()
        self.rows = sums.mask("y", y)     # 0 at the padding rows (their terms left out)

    def _np(self, yhat):
        return yhat.detach().cpu().double().numpy()

    def _torch(self, a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64)).reshape(-1).to(self.y)

    def value(self, yhat) -> float:
        if self.kernel.terms is None:          # not declared: value block by block
            return self.sums.per_block(lambda lo, hi: self.kernel.value(
                self._np(yhat[lo:hi]), self.y_np[lo:hi]), "y")
        terms = self._torch(self.kernel.terms(self._np(yhat), self.y_np))
        return self.sums.sum(terms * self.rows, "y")        # per entry of |y|

    def zero_value(self) -> float:
        return self.value(torch.zeros_like(self.y))

    def gradient(self, yhat):
        return self._torch(self.kernel.grad(self._np(yhat), self.y_np)) * self.rows

    def hessian(self, yhat):
        """The diagonal h [|y|] >= 0 (clipped: a convex F's is, up to rounding)."""
        return (self._torch(self.kernel.hessian_diag(self._np(yhat), self.y_np))
                .clamp_min(0.0) * self.rows)
