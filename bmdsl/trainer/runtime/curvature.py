"""The BM methods that use the objective's curvature through the Jacobian of the
prediction (C = R = l2): als, alternating exact ridge regressions, and newton, one damped
Newton step (newton.py). Each declares where it applies (`accepts`, steps.Method) and
its own limits.
"""
import torch

from .forms import plain_squared
from .newton import newton_iteration
from .steps import Method


def l2_pair(problem) -> bool:
    """C = R = l2: the BM regularizer is then (beta/2)(|U|^2 + |V|^2) (Sahiner et al.
    2024, eq. (14)), smooth, which both methods need. The pair's registry entry decides
    (`smooth_regularizer` in the spec, filled by bmdsl's trainer/spec.py)."""
    return bool(problem.spec.get("smooth_regularizer"))


def _needs_l2(problem):
    if l2_pair(problem):
        return []
    return [f"it needs C = R = l2 (this model has C = {problem.C}, R = {problem.R}; use "
            "lbfgs or adam)"]


class ALS(Method):
    """Alternating exact minimization: with V fixed, (14) is the ridge regression
    min 0.5 ||J_U vec U - Y||^2 + (beta/2) ||U||^2 (J_U = d Yhat / d U), and back;
    solved by Cholesky on the normal equations, primal or dual form, whichever is smaller."""
    name = "als"
    al_every = 1
    rho_max = 1e6
    max_steps = 5000
    shards = False    # its dense Jacobian spans all samples
    RIDGE = 1e-13     # relative ridge where beta is below rounding (_cholesky)

    @classmethod
    def refusals(cls, problem, m, full_batch):
        why = super().refusals(problem, m, full_batch) + _needs_l2(problem)
        if problem.cone or not plain_squared(problem.spec):
            why.append("it solves ridge regressions: it needs the squared loss and no ReLU "
                       "cones (use newton or lbfgs)")
        return why

    def step(self):
        t, pb = self.t, self.t.problem
        y = pb.Y.reshape(-1)
        with torch.no_grad():
            t.U.copy_(self._ridge(pb.jac_u(t.V).reshape(y.numel(), -1), y, pb.beta)
                      .reshape(t.U.shape))
            t.V.copy_(self._ridge(pb.jac_v(t.U).reshape(y.numel(), -1), y, pb.beta)
                      .reshape(t.V.shape))
            return float(t.objective(t.U, t.V))

    @classmethod
    def _ridge(cls, J, y, beta):
        tall = J.shape[1] <= J.shape[0]
        A = J.T @ J if tall else J @ J.T
        A.diagonal().add_(beta)
        x = torch.cholesky_solve((J.T @ y if tall else y)[:, None], cls._cholesky(A, beta))[:, 0]
        return x if tall else J.T @ x

    @classmethod
    def _cholesky(cls, A, beta):
        """Cholesky of J^T J + beta I. Where beta is below the rounding of J^T J (e.g.
        1e-300) the matrix is singular in float64: a ridge of RIDGE times its largest
        diagonal entry is added instead, the least that rounding leaves visible (the ridge
        regression's minimizer then changes below float64's accuracy); a matrix that is
        still not definite, or not finite, is a FloatingPointError naming the cause."""
        if not bool(torch.isfinite(A).all()):
            raise FloatingPointError("als: the normal equations are not finite (the data's "
                                     "scale overflows float64)")
        L, info = torch.linalg.cholesky_ex(A)
        if int(info):
            scale = float(A.diagonal().abs().max()) if A.numel() else 0.0
            L, info = torch.linalg.cholesky_ex(
                A + cls.RIDGE * max(scale, 1e-300) *
                torch.eye(A.shape[0], dtype=A.dtype, device=A.device))
        if int(info):
            raise FloatingPointError(f"als: the normal equations J^T J + beta I (beta = "
                                     f"{beta:.3g}) are not positive definite even with a "
                                     f"relative ridge {cls.RIDGE:g}")
        return L


class Newton(Method):
    """Damped Newton steps with SVD balancing and unit growth (newton.py); ReLU cones
    kept exactly by the active set (activeset.py), so no augmented Lagrangian."""
    name = "newton"
    max_steps = 10000
    rho_max = None
    MAX_VARS = 6000                # P m (p + q): the dense Hessian is at most 6000^2
    JACOBIAN_BUDGET = 60_000_000   # entries of the dense Jacobian [|y|, P m (p + q)]

    @classmethod
    def refusals(cls, problem, m, full_batch):
        why = super().refusals(problem, m, full_batch) + _needs_l2(problem)
        N = problem.P * m * (problem.p + problem.q)
        if N > cls.MAX_VARS:
            why.append(f"it builds a dense Hessian of P m (p + q) = {N} variables, above "
                       f"{cls.MAX_VARS} (use lbfgs or adam)")
        # J^T J comes from G = L^* L where the Gram path is on (gram.py): no Jacobian
        elif problem.gram is None and N * problem.outputs > cls.JACOBIAN_BUDGET:
            why.append(f"its dense Jacobian [|y|, P m (p + q)] has {N * problem.outputs} "
                       f"entries, above {cls.JACOBIAN_BUDGET} (use lbfgs or adam)")
        return why

    def __init__(self, run, lr):
        super().__init__(run, lr)
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
