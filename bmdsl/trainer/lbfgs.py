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
        self.pairs = []                    # one entry per kept pair (S, Y: their rows)

    def _direction(self):
        """-H g in the compact form of Byrd, Nocedal & Schnabel (1994) (Nocedal & Wright,
        eq. (7.24)), the same H as the two-loop recursion (H_0 = gamma I, gamma = y's / y'y
        of the newest pair): a handful of products with S, Y [k, n] instead of 4k vector
        operations (the two-loop's 200 at memory 50 were 3.4 ms a direction, 0.8 s of a
        10 s fit: Python's dispatch, not flops)."""
        if not self.pairs:
            return -self.g
        S, Y, SY, YY = self.S, self.Y, self.SY, self.YY
        gamma = float(SY[-1, -1] / YY[-1, -1])
        a, b = S @ self.g, Y @ self.g
        R = torch.triu(SY)
        u = torch.linalg.solve_triangular(R, a[:, None], upper=True)[:, 0]
        w = (SY.diagonal() * u + gamma * (YY @ u)) - gamma * b
        top = torch.linalg.solve_triangular(R.T, w[:, None], upper=False)[:, 0]
        return -(gamma * self.g + S.T @ top - gamma * (Y.T @ u))

    def _remember(self, s, y):
        """Append the pair (s, y) to S, Y and their products S Y^T, Y Y^T (the oldest out
        beyond `memory`)."""
        if not self.pairs:
            self.S, self.Y = s[None], y[None]
            self.SY, self.YY = (s @ y).reshape(1, 1), (y @ y).reshape(1, 1)
        else:
            S, Y = torch.cat([self.S, s[None]]), torch.cat([self.Y, y[None]])
            Sy, sY, Yy = S @ y, Y @ s, Y @ y
            self.SY = torch.cat([torch.cat([self.SY, Sy[:-1, None]], 1), sY[None]], 0)
            self.YY = torch.cat([torch.cat([self.YY, Yy[:-1, None]], 1), Yy[None]], 0)
            self.S, self.Y = S, Y
        self.pairs.append(True)
        if len(self.pairs) > self.memory:
            self.pairs.pop()
            self.S, self.Y, self.SY, self.YY = (self.S[1:], self.Y[1:], self.SY[1:, 1:],
                                                self.YY[1:, 1:])

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
                self._remember(s, y)
            self.x, self.f, self.g = self.x + s, float(f), g
            spent += used
            self.evaluations += used
            if used == 0:
                break
        return abs(before - self.f) <= 1e-15 * abs(self.f)
