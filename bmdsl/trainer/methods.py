"""The training methods: one class per entry of METHODS, each doing one step at a time.

Every method works on the trainer's factors U, V in place and keeps all of its state in
`state_dict()` (checkpoints resume exactly). A step is: adam/sgd one mini-batch; lbfgs
`inner` L-BFGS iterations (strong Wolfe); als one sweep (U then V); precgd one
preconditioned gradient step; newton one damped Newton step (runtime/newton.py).
`auto` picks by the measurements in docs/trainer.md: newton when C = R = l2, the batch
is full and the dense Hessian fits; else lbfgs for a full batch; else adam.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from .errors import TrainerError
from .runtime.forms import plain_squared
from .runtime.newton import newton_iteration

NEWTON_MAX_VARS = 6000         # P m (p + q): the dense Hessian is at most 6000^2
JACOBIAN_BUDGET = 60_000_000   # entries of the dense Jacobian [|y|, P m (p + q)]
RIDGE = 1e-13                  # ALS's relative ridge where beta is below rounding (_cholesky)


class Method(ABC):
    """One optimization method: `step()` advances the trainer's factors, returns the objective."""
    name = ""
    full_batch = True
    default_lr = None  # the learning rate used when none is given (None: the method has none)
    settled = False    # the last step could not decrease the objective any further

    def __init__(self, trainer, lr):
        self.t, self.lr = trainer, lr

    @abstractmethod
    def step(self) -> float:
        """One step; the objective after it."""

    def reset(self):
        """The objective changed (new augmented-Lagrangian multipliers)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict):
        pass


class _Torch(Method):
    """A torch.optim optimizer; ReduceLROnPlateau on the objective of each epoch."""
    full_batch = False

    def __init__(self, trainer, lr):
        super().__init__(trainer, lr)
        self.opt = self.make([trainer.U, trainer.V], lr)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.5,
                                                                   patience=20)
        self.epoch_sum = 0.0

    def step(self):
        arrays, scale, idx, last = self.t.next_batch()
        self.opt.zero_grad(set_to_none=True)
        f = self.t.objective(self.t.U, self.t.V, arrays, scale, idx)
        f.backward()
        self.opt.step()
        f = f.item()
        self.epoch_sum += f / self.t.batches_per_epoch
        if last:
            self.plateau.step(self.epoch_sum)
            self.epoch_sum = 0.0
        return f

    def state_dict(self):
        return {"opt": self.opt.state_dict(), "plateau": self.plateau.state_dict(),
                "epoch_sum": self.epoch_sum}

    def load_state_dict(self, d):
        self.opt.load_state_dict(d["opt"])
        self.plateau.load_state_dict(d["plateau"])
        self.epoch_sum = float(d["epoch_sum"])


class Adam(_Torch):
    name = "adam"
    default_lr = 1e-2

    @classmethod
    def make(cls, params, lr):
        return torch.optim.Adam(params, lr=lr or cls.default_lr)


class SGD(_Torch):
    name = "sgd"
    default_lr = 1e-2

    @classmethod
    def make(cls, params, lr):
        return torch.optim.SGD(params, lr=lr or cls.default_lr, momentum=0.9)


class LBFGS(Method):
    name = "lbfgs"
    inner = 10
    default_lr = 1.0

    def __init__(self, trainer, lr):
        super().__init__(trainer, lr)
        self.opt = torch.optim.LBFGS([trainer.U, trainer.V], lr=lr or self.default_lr,
                                     max_iter=self.inner,
                                     history_size=50, line_search_fn="strong_wolfe",
                                     tolerance_grad=0.0, tolerance_change=0.0)

    def step(self):
        def closure():
            self.opt.zero_grad(set_to_none=True)
            f = self.t.objective(self.t.U, self.t.V)
            f.backward()
            return f
        return float(self.opt.step(closure).detach())

    def reset(self):
        self.opt.state.clear()

    def state_dict(self):
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, d):
        self.opt.load_state_dict(d["opt"])


class ALS(Method):
    """Alternating exact minimization: with V fixed, (14) is the ridge regression
    min 0.5 ||J_U vec U - Y||^2 + (beta/2) ||U||^2 (J_U = d Yhat / d U), and back;
    solved by Cholesky on the normal equations, primal or dual form, whichever is smaller."""
    name = "als"

    def step(self):
        t, pb = self.t, self.t.problem
        y = pb.Y.reshape(-1)
        with torch.no_grad():
            t.U.copy_(_ridge(pb.jac_u(t.V).reshape(y.numel(), -1), y, pb.beta).reshape(t.U.shape))
            t.V.copy_(_ridge(pb.jac_v(t.U).reshape(y.numel(), -1), y, pb.beta).reshape(t.V.shape))
            return float(t.objective(t.U, t.V))


def _ridge(J, y, beta):
    if J.shape[1] <= J.shape[0]:
        A = J.T @ J
        A.diagonal().add_(beta)
        return torch.cholesky_solve((J.T @ y)[:, None], _cholesky(A, beta))[:, 0]
    A = J @ J.T
    A.diagonal().add_(beta)
    return J.T @ torch.cholesky_solve(y[:, None], _cholesky(A, beta))[:, 0]


def _cholesky(A, beta):
    """Cholesky of J^T J + beta I. Where beta is below the rounding of J^T J (e.g. 1e-300)
    the matrix is singular in float64: a ridge of RIDGE times its largest diagonal entry is
    added instead, the least that rounding leaves visible (the ridge regression's minimizer
    then changes below float64's accuracy); a matrix that is still not definite, or not
    finite, is a FloatingPointError naming the cause."""
    if not bool(torch.isfinite(A).all()):
        raise FloatingPointError("als: the normal equations are not finite (the data's scale "
                                 "overflows float64)")
    L, info = torch.linalg.cholesky_ex(A)
    if int(info):
        scale = float(A.diagonal().abs().max()) if A.numel() else 0.0
        L, info = torch.linalg.cholesky_ex(A + RIDGE * max(scale, 1e-300) *
                                           torch.eye(A.shape[0], dtype=A.dtype, device=A.device))
    if int(info):
        raise FloatingPointError(f"als: the normal equations J^T J + beta I (beta = {beta:.3g}) "
                                 "are not positive definite even with a relative ridge "
                                 f"{RIDGE:g}")
    return L


class PrecGD(Method):
    """Preconditioned (scaled) gradient descent, Zhang et al. 2023 / ScaledGD(lambda):
    U_k -= eta grad_{U_k} (V_k^T V_k + lambda I)^{-1}, V_k likewise, lambda = beta;
    eta by Armijo backtracking, restarted at twice the last accepted step."""
    name = "precgd"
    default_lr = 1.0
    ETA_MAX = 1e12     # the doubled restart step is capped: an accepted step never grows to inf
    HALVINGS = 200     # backtracking halvings at most (1e12 -> below 1e-20 takes 107)

    def __init__(self, trainer, lr):
        super().__init__(trainer, lr)
        self.eta = lr or self.default_lr

    def step(self):
        t = self.t
        U, V = t.U.detach(), t.V.detach()
        Ur, Vr = U.clone().requires_grad_(True), V.clone().requires_grad_(True)
        f = t.objective(Ur, Vr)
        gu, gv = torch.autograd.grad(f, (Ur, Vr))
        P, m = U.shape[:2]
        u, v = U.reshape(P, m, -1), V.reshape(P, m, -1)
        vv, uu = v @ v.transpose(1, 2), u @ u.transpose(1, 2)
        # lambda = beta, floored at the Gram matrices' rounding: any positive definite
        # preconditioner gives a descent direction, a singular one gives none (beta 1e-300)
        scale = max(float(vv.diagonal(dim1=1, dim2=2).abs().max()),
                    float(uu.diagonal(dim1=1, dim2=2).abs().max()), 1e-300) if m else 1.0
        lam = max(t.problem.beta, 1e-14 * scale)
        eye = lam * torch.eye(m, dtype=U.dtype, device=U.device)
        du = torch.linalg.solve(vv + eye, gu.reshape(P, m, -1)).reshape(U.shape)
        dv = torch.linalg.solve(uu + eye, gv.reshape(P, m, -1)).reshape(V.shape)
        slope, f = float((gu * du).sum() + (gv * dv).sum()), float(f.detach())
        eta = min(2.0 * self.eta, self.ETA_MAX)
        with torch.no_grad():
            for _ in range(self.HALVINGS):
                if not eta > 1e-20:
                    break
                fn = float(t.objective(U - eta * du, V - eta * dv))
                if fn <= f - 1e-4 * eta * slope:
                    t.U.copy_(U - eta * du)
                    t.V.copy_(V - eta * dv)
                    self.eta = eta
                    return fn
                eta *= 0.5
        return f

    def state_dict(self):
        return {"eta": self.eta}

    def load_state_dict(self, d):
        self.eta = float(d["eta"])


class Newton(Method):
    name = "newton"

    def __init__(self, trainer, lr):
        super().__init__(trainer, lr)
        self.mu = 1e-3
        # consecutive settled steps: where rounding makes the objective jitter above `tol`
        # (data near float64's range), the steps can make no progress and yet never look
        # calm; fitloop stops after STALLED of them ("stalled") instead of max_steps
        self.stalls = 0

    def step(self):
        t = self.t
        U, V, f, self.mu, self.settled = newton_iteration(
            t.problem, t.U.detach(), t.V.detach(), t.objective, self.mu)
        self.stalls = self.stalls + 1 if self.settled else 0
        with torch.no_grad():
            t.U.copy_(U)
            t.V.copy_(V)
        return f

    def state_dict(self):
        return {"mu": self.mu, "stalls": self.stalls}

    def load_state_dict(self, d):
        self.mu = float(d["mu"])
        self.stalls = int(d.get("stalls", 0))     # (checkpoints written before it: 0)


METHODS = {m.name: m for m in (Adam, SGD, LBFGS, ALS, PrecGD, Newton)}


def newton_fits(problem, m) -> bool:
    N = problem.P * m * (problem.p + problem.q)
    jacobian_free = problem.gram is not None    # J^T J comes from G = L^* L (gram.py)
    return N <= NEWTON_MAX_VARS and (jacobian_free or N * problem.outputs <= JACOBIAN_BUDGET)


def resolve(name: str, problem, m: int, full_batch: bool) -> str:
    """The method for `name` ("auto" or a METHODS key); TrainerError if it cannot run."""
    l2 = bool(problem.spec.get("smooth_regularizer"))   # the pair's entry (trainer/spec.py)
    if name == "auto":
        if full_batch and l2 and newton_fits(problem, m):
            return "newton"
        return "lbfgs" if full_batch else "adam"
    if name not in METHODS:
        raise TrainerError(f"unknown method {name!r}; accepted: auto, {', '.join(METHODS)}")
    if METHODS[name].full_batch and not full_batch:
        raise TrainerError(f"method {name!r} needs the full batch; drop the batch size or "
                           "use adam or sgd")
    if name in ("als", "newton") and not l2:
        raise TrainerError(f"method {name!r} needs C = R = l2 (this model has C = "
                           f"{problem.C}, R = {problem.R}); use lbfgs or adam")
    if name == "als" and (problem.cone or not plain_squared(problem.spec)):
        raise TrainerError("method 'als' solves ridge regressions: it needs the squared loss "
                           "and no ReLU cones; use newton or lbfgs")
    if name == "newton" and not newton_fits(problem, m):
        raise TrainerError(f"method 'newton' builds a dense Hessian of P m (p + q) = "
                           f"{problem.P * m * (problem.p + problem.q)} variables, above "
                           f"{NEWTON_MAX_VARS} (or its Jacobian exceeds the memory budget); "
                           "use lbfgs or adam")
    return name
