"""The loss F(Yhat) as the cone interior point (interior.py) sees it: its value, its gradient
and the diagonal of its Hessian at a prediction, summed over shards where F is.

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


def loss_model(problem):
    """Quadratic or Diagonal for the problem's loss (refusal(spec) must be None)."""
    return Quadratic(problem) if plain_squared(problem.spec) else \
        Diagonal(problem, _kernel(problem.spec))


class Quadratic:
    """F = 1/2 |Yhat - Y|^2: gradient the residual, Hessian the identity (hessian -> None)."""
    quadratic = True

    def __init__(self, problem):
        self.y, self.sum = problem.Y.reshape(-1), problem.reduce_sum

    def value(self, yhat) -> float:
        r = yhat - self.y
        return 0.5 * float(self.sum(r @ r))

    def zero_value(self) -> float:
        return 0.5 * float(self.sum(self.y @ self.y))

    def gradient(self, yhat):
        return yhat - self.y

    def hessian(self, yhat):
        return None


class Diagonal:
    """A separable F through its entry's numpy value, grad and hessian_diag (a prediction
    [|y|] is handed over in the target's shape)."""
    quadratic = False

    def __init__(self, problem, kernel):
        self.kernel, self.sum = kernel, problem.reduce_sum
        self.Y = problem.Y
        self.y_np = problem.Y.detach().cpu().double().numpy()
        self.shape = tuple(problem.Y.shape)

    def _np(self, yhat):
        return yhat.detach().cpu().double().numpy().reshape(self.shape)

    def _torch(self, a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64)).reshape(-1).to(self.Y)

    def value(self, yhat) -> float:
        v = torch.tensor(self.kernel.value(self._np(yhat), self.y_np), dtype=self.Y.dtype,
                         device=self.Y.device)
        return float(self.sum(v))

    def zero_value(self) -> float:
        return self.value(torch.zeros_like(self.Y).reshape(-1))

    def gradient(self, yhat):
        return self._torch(self.kernel.grad(self._np(yhat), self.y_np))

    def hessian(self, yhat):
        """The diagonal h [|y|] >= 0 (clipped: a convex F's is, up to rounding)."""
        return self._torch(self.kernel.hessian_diag(self._np(yhat), self.y_np)).clamp_min(0.0)
