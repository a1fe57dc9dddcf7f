"""The BM methods' steps, first-order ones: one class per method, one step at a time.

A method works on its run's factors `t.U`, `t.V` in place (a run is bmdsl's Trainer or
fit.py's FullBatch: U, V, problem, objective(U, V, arrays, scale, idx), next_batch(),
batches_per_epoch) and keeps all of its state in `state_dict()`, so checkpoints resume
exactly. Each method declares where it applies (`accepts`) and its own constants; the
table that orders them for `auto` is policy.py. adam/sgd: one mini-batch; lbfgs: `inner`
L-BFGS iterations (strong Wolfe); precgd: one preconditioned gradient step.
"""
import torch


class Method:
    """One optimization method of the BM factorization (14). A subclass defines `step()`:
    advance the run's factors in place and return the objective."""
    name = ""
    full_batch = True   # needs the whole data set at every step
    default_lr = None   # the learning rate used when none is given (None: the method has none)
    al_every = 20       # steps between the augmented Lagrangian's multiplier updates (ReLU)
    rho_max = 1e3       # the AL penalty's cap: rho |A|^2 stays within reach of the step size
    max_steps = 20000   # fit's default number of steps
    shards = True       # runs on one shard of the samples with its sums all-reduced
    settled = False     # the last step could not decrease the objective any further

    def __init__(self, run, lr):
        self.t, self.lr = run, lr

    @classmethod
    def accepts(cls, problem, m, full_batch=True):
        """None if this method can train `problem` with m units per pattern, else why not
        (the reasons joined by '; ')."""
        return "; ".join(cls.refusals(problem, m, full_batch)) or None

    @classmethod
    def refusals(cls, problem, m, full_batch):
        """The reasons this method cannot train `problem` (empty: it can)."""
        if cls.full_batch and not full_batch:
            return ["it needs the full batch (drop the batch size, or use adam or sgd)"]
        return []

    def reset(self):
        """The objective changed (new augmented-Lagrangian multipliers)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict):
        pass


class TorchOptimizer(Method):
    """A torch.optim optimizer; ReduceLROnPlateau on the objective of each epoch. A subclass
    defines the classmethod `make(params, lr)`, the optimizer over params."""
    full_batch = False

    def __init__(self, run, lr):
        super().__init__(run, lr)
        self.opt = self.make([run.U, run.V], lr or self.default_lr)
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


class Adam(TorchOptimizer):
    name = "adam"
    default_lr = 1e-2

    @classmethod
    def make(cls, params, lr):
        return torch.optim.Adam(params, lr=lr)


class SGD(TorchOptimizer):
    name = "sgd"
    default_lr = 1e-2

    @classmethod
    def make(cls, params, lr):
        return torch.optim.SGD(params, lr=lr, momentum=0.9)


class LBFGS(Method):
    name = "lbfgs"
    inner = 10
    default_lr = 1.0
    al_every = 5
    # rho_max 1e3 rather than 1e6 (measured on two ReLU problems at n = 600, d = 20, 40 s:
    # (p - p*)/p* 0.155 vs 0.548 and 0.130 vs 1.19; docs/performance.md)
    rho_max = 1e3
    max_steps = 2000

    def __init__(self, run, lr):
        super().__init__(run, lr)
        self.opt = torch.optim.LBFGS([run.U, run.V], lr=lr or self.default_lr,
                                     max_iter=self.inner, history_size=50, tolerance_grad=0.0,
                                     tolerance_change=0.0, line_search_fn="strong_wolfe")

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


class PrecGD(Method):
    """Preconditioned (scaled) gradient descent, Zhang et al. 2023 / ScaledGD(lambda):
    U_k -= eta grad_{U_k} (V_k^T V_k + lambda I)^{-1}, V_k likewise, lambda = beta;
    eta by Armijo backtracking, restarted at twice the last accepted step."""
    name = "precgd"
    default_lr = 1.0
    rho_max = 1e4
    ETA_MAX = 1e12     # the doubled restart step is capped: an accepted step never grows to inf
    HALVINGS = 200     # backtracking halvings at most (1e12 -> below 1e-20 takes 107)

    def __init__(self, run, lr):
        super().__init__(run, lr)
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
