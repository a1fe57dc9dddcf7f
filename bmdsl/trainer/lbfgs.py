"""L-BFGS on one flat float64 vector, resumable: the optimizer of the lifted FISTA's factored
phase (factored.py).

The iteration of torch.optim.LBFGS (Nocedal & Wright 2006, algorithms 7.4-7.5: the two-loop
recursion with the scaling y's / y'y, the first step min(1, 1 / |g|_1), then 1), its
strong-Wolfe line search (`torch.optim.lbfgs._strong_wolfe`, c1 = 1e-4, c2 = 0.9), pairs
kept only where y's > 1e-10. Why not torch.optim.LBFGS itself: its construction (the
Optimizer base class) imports torch._dynamo, 6.4 s of a 23.7 s fit (the n = 2000 CNN,
logistic, (l2, l1), cProfile at load 7; docs/performance.md), and each of its step() calls
evaluates the objective once more at its start, where `run` here continues from the last
point's value and gradient.
"""
import torch
from torch.optim.lbfgs import _strong_wolfe


class LBFGS:
    """min f(x) from x0; `fg(x)` returns (f as a float, its gradient, shaped as x)."""

    def __init__(self, fg, x0, memory=50):
        self.fg, self.x, self.memory = fg, x0, memory
        self.f, self.g = fg(x0)
        self.evaluations, self.first = 1, True
        self.pairs = []                    # (s, y, 1 / y's), the oldest first

    def _direction(self):
        """-H g by the two-loop recursion (H from the kept pairs, H_0 = y's / y'y)."""
        q, alphas = -self.g, []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            q = q - a * y
            alphas.append(a)
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q = q * (float(s @ y) / float(y @ y))
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            q = q + (a - rho * float(y @ q)) * s
        return q

    def run(self, evaluations) -> bool:
        """About `evaluations` more evaluations of fg (a line search may end one past);
        True once no descent direction is left or a call no longer changed f (relative
        1e-15: converged to a stationary point)."""
        before, spent = self.f, 0
        while spent < evaluations:
            d = self._direction()
            gtd = float(self.g @ d)
            if not gtd < 0:
                return True
            t = min(1.0, 1.0 / max(float(self.g.abs().sum()), 1e-300)) if self.first else 1.0
            self.first = False
            f, g, t, used = _strong_wolfe(lambda x, t, d: self.fg(x + t * d), self.x, t, d,
                                          self.f, self.g, gtd,
                                          max_ls=max(1, evaluations - spent))
            s, y = t * d, g - self.g
            ys = float(y @ s)
            if ys > 1e-10:
                self.pairs = (self.pairs + [(s, y, 1.0 / ys)])[-self.memory:]
            self.x, self.f, self.g = self.x + s, float(f), g
            spent += used
            self.evaluations += used
            if used == 0:
                break
        return abs(before - self.f) <= 1e-15 * abs(self.f)
