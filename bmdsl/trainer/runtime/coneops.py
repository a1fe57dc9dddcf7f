"""The linear maps of the cone interior point's program (interior.py) on its data: the
slacks S_k x of the cones (19), the prediction A x = sum_k L_k(u_k - w_k) and their
adjoints, the Gram matrices of the Newton system, the objective; every sum over samples
block by block in a fixed order (rowsums.py), so the bits do not depend on where a row
lies. Pilanci & Ergen 2020, (5)."""
import torch


class ConeOperators:
    """S, A and their adjoints for the arrays interior.ConeInteriorPoint sets up (L, Lp, M,
    Mp, MpT, MMp, sign, rs, loss, beta, smoothing)."""

    def slack(self, x):
        """S_k x_kj [P, 2, |a|], block by block: a product over all rows rounds a row
        by where it lies (measured), a batch of blocks' products does not."""
        P, p, nb = self.P, self.p, self.rs.nb
        Mx = torch.bmm(x.reshape(1, 2 * P, p).expand(nb, 2 * P, p), self.MpT)
        return self.sign * Mx.transpose(0, 1).reshape(P, 2, -1)

    def slack_adjoint(self, v):
        """S_k^T v_kj [P, 2, p]."""
        parts = torch.bmm(self.rs.parts(self.sign * v, "a"), self.Mp)     # [blocks, 2 P, p]
        return self.rs.total(parts).reshape(self.P, 2, self.p)

    def cone_gram(self, w):
        """S_k^T diag(w_kj) S_k = M^T diag(w_kj) M [P, 2, p, p] (w [P, 2, |a|])."""
        P, p = self.P, self.p
        wp = self.rs.parts(w, "a")                                        # [blocks, 2 P, W]
        return self.rs.matrix(lambda j: wp[j] @ self.MMp[j], 2 * P * p * p,
                              lambda: torch.bmm(wp, self.MMp)).reshape(P, 2, p, p)

    def gram(self, h=None):
        """L^T L, or L^T diag(h) L [P p, P p] (h [|y|])."""
        Lp, n = self.Lp, self.Lp.shape[2]
        if h is None:
            return self.rs.matrix(lambda j: Lp[j].T @ Lp[j], n * n,
                                  lambda: torch.bmm(Lp.transpose(1, 2), Lp)).view(n, n)
        hL = h[:, None] * self.L
        hLp = hL.view(Lp.shape)
        return self.rs.matrix(lambda j: Lp[j].T @ hLp[j], n * n,
                              lambda: torch.bmm(Lp.transpose(1, 2), hLp)).view(n, n)

    def predict(self, x):
        """A x = sum_k L_k(u_k - w_k) [|y|]: each row's products summed along the row,
        the same bits wherever the row lies (a matrix-vector product over all rows rounds
        a row by its position, a batch of blocks' products a batch of one block otherwise;
        measured)."""
        return (self.L * (x[:, 0] - x[:, 1]).reshape(-1)).sum(1)

    def predict_adjoint(self, r):
        """A^T r = (L_k^*(r), -L_k^*(r)) [P, 2, p]."""
        parts = torch.bmm(self.rs.parts(r, "y"), self.Lp)                 # [blocks, 1, P p]
        g = self.rs.total(parts).reshape(self.P, 1, self.p)
        return torch.cat([g, -g], 1)

    def objective(self, x=None, yhat=None) -> float:
        """The convex objective with the exact norms (yhat: the prediction A x, if known)."""
        x = self.x if x is None else x
        yhat = self.predict(x) if yhat is None else yhat
        return self.loss.value(yhat) + self.beta * float(x.norm(dim=2).sum())

    def _gradient(self, x, grad):
        """Gradient [P, 2, p] of the smoothed objective at x (grad: F's gradient at the
        prediction A x), and the smoothed norms."""
        rho = torch.sqrt((x * x).sum(2, keepdim=True) + self.smoothing ** 2)
        return self.predict_adjoint(grad) + self.beta * x / rho, rho
