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
from .runtime.newton import newton_iteration

NEWTON_MAX_VARS = 6000         # P m (p + q): the dense Hessian is at most 6000^2
JACOBIAN_BUDGET = 60_000_000   # entries of the dense Jacobian [|y|, P m (p + q)]


class Method(ABC):
    """One optimization method: `step()` advances the trainer's factors, returns the objective."""
    name = ""
    full_batch = True
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

    @staticmethod
    def make(params, lr):
        return torch.optim.Adam(params, lr=lr or 1e-2)


class SGD(_Torch):
    name = "sgd"

    @staticmethod
    def make(params, lr):
        return torch.optim.SGD(params, lr=lr or 1e-2, momentum=0.9)


class LBFGS(Method):
    name = "lbfgs"
    inner = 10

    def __init__(self, trainer, lr):
        super().__init__(trainer, lr)
        self.opt = torch.optim.LBFGS([trainer.U, trainer.V], lr=lr or 1.0, max_iter=self.inner,
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
        return torch.cholesky_solve((J.T @ y)[:, None], torch.linalg.cholesky(A))[:, 0]
    A = J @ J.T
    A.diagonal().add_(beta)
    return J.T @ torch.cholesky_solve(y[:, None], torch.linalg.cholesky(A))[:, 0]


class PrecGD(Method):
    """Preconditioned (scaled) gradient descent, Zhang et al. 2023 / ScaledGD(lambda):
    U_k -= eta grad_{U_k} (V_k^T V_k + lambda I)^{-1}, V_k likewise, lambda = beta;
    eta by Armijo backtracking, restarted at twice the last accepted step."""
    name = "precgd"

    def __init__(self, trainer, lr):
        super().__init__(trainer, lr)
        self.eta = lr or 1.0

    def step(self):
        t = self.t
        U, V = t.U.detach(), t.V.detach()
        Ur, Vr = U.clone().requires_grad_(True), V.clone().requires_grad_(True)
        f = t.objective(Ur, Vr)
        gu, gv = torch.autograd.grad(f, (Ur, Vr))
        P, m = U.shape[:2]
        u, v = U.reshape(P, m, -1), V.reshape(P, m, -1)
        eye = t.problem.beta * torch.eye(m, dtype=U.dtype, device=U.device)
        du = torch.linalg.solve(v @ v.transpose(1, 2) + eye, gu.reshape(P, m, -1)).reshape(U.shape)
        dv = torch.linalg.solve(u @ u.transpose(1, 2) + eye, gv.reshape(P, m, -1)).reshape(V.shape)
        slope, f = float((gu * du).sum() + (gv * dv).sum()), float(f.detach())
        eta = 2.0 * self.eta
        with torch.no_grad():
            while eta > 1e-20:
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

    def step(self):
        t = self.t
        U, V, f, self.mu, self.settled = newton_iteration(
            t.problem, t.U.detach(), t.V.detach(), t.objective, self.mu)
        with torch.no_grad():
            t.U.copy_(U)
            t.V.copy_(V)
        return f

    def state_dict(self):
        return {"mu": self.mu}

    def load_state_dict(self, d):
        self.mu = float(d["mu"])


METHODS = {m.name: m for m in (Adam, SGD, LBFGS, ALS, PrecGD, Newton)}


def newton_fits(problem, m) -> bool:
    N = problem.P * m * (problem.p + problem.q)
    jacobian_free = problem.gram is not None    # J^T J comes from G = L^* L (gram.py)
    return N <= NEWTON_MAX_VARS and (jacobian_free or N * problem.Y.numel() <= JACOBIAN_BUDGET)


def resolve(name: str, problem, m: int, full_batch: bool) -> str:
    """The method for `name` ("auto" or a METHODS key); TrainerError if it cannot run."""
    l2 = (problem.C, problem.R) == ("l2", "l2")
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
    if name == "als" and (problem.cone or problem.spec["loss"] != "squared"):
        raise TrainerError("method 'als' solves ridge regressions: it needs the squared loss "
                           "and no ReLU cones; use newton or lbfgs")
    if name == "newton" and not newton_fits(problem, m):
        raise TrainerError(f"method 'newton' builds a dense Hessian of P m (p + q) = "
                           f"{problem.P * m * (problem.p + problem.q)} variables, above "
                           f"{NEWTON_MAX_VARS} (or its Jacobian exceeds the memory budget); "
                           "use lbfgs or adam")
    return name
