"""The inner solves of the proximal Newton (pnewton.py) and the majorization (majorize.py):
the lifted ADMM (lifted.LiftedADMM) on a step's quadratic + D-norm program, rho balanced
between chunks, each iteration Anderson-accelerated.

One ADMM iteration is a map T on its state s = (x, u); its fixed points are the program's
solutions. Anderson's type-II extrapolation (Walker & Ni 2011; for ADMM and
Douglas-Rachford: Zhang, O'Donoghue & Boyd 2020) takes, after g_k = T(s_k) and
f_k = g_k - s_k,
    s_{k+1} = g_k - dG gamma,   gamma = argmin ||f_k - dF gamma||,
dF, dG the differences of the last AA_MEMORY f's and g's. Safeguarded (as Zhang et al.'s
and SCS's AA): an extrapolated point whose residual ||f|| exceeds AA_SAFEGUARD times
that of T's last point is dropped (back to T's point, a new memory), and so is the memory
at a new rho (rho balancing between chunks: Boyd et al. 2011, sec. 3.4.1); from x = 0 (a
cold start) the first chunk is plain ADMM; each chunk ends on T's point (x the prox's
output, exactly low rank or sparse), and a converged ADMM stops on its own residuals, as
without it. Why: near the end of a solve the Newton model's Gram is nearly singular and
the plain ADMM creeps (n = 2000 spiral, cross_entropy: 1500 iterations for one subproblem
at a relative residual of 1e-5; docs/performance.md). Why the safeguard and the plain
first chunk: far from the solution the prox's active set still changes and the
extrapolations did not lower the residual (the n = 2000 spiral's first logistic
subproblem from 0: 161-289 iterations, varying with the rounding, where plain ADMM took
86; then rho balanced 16-fold too high, walked back down over the next subproblems).
"""
import torch

AA_MEMORY, AA_SAFEGUARD = 8, 1.0   # differences kept; drop a point whose ||f|| > 1 x T's last


def balanced_solve(admm, renew, tol, budget, rule):
    """`admm` (lifted.LiftedADMM) run to `tol` (its relative residuals) within `budget`
    iterations, Anderson-accelerated; after every `chunk`, once one relative residual is
    `balance` times the other, rho changes by `step` (renew(admm, rho): a new ADMM at rho
    from admm's iterate, a new factorization; a new map, so a new memory), at most
    `changes` times. rule = (chunk, balance, step, changes). gamma by least squares (QR:
    dF is often nearly rank deficient). Returns the last ADMM and the iterations run."""
    chunk, balance, step, changes = rule
    n, dF, dG, last, tried = admm.x.numel(), [], [], None, False
    cold = chunk if not bool(admm.x.any()) else 0       # from x = 0: a plain first chunk
    for i in range(int(budget)):
        ratio = admm.primal / max(admm.dual, 1e-300)
        if i and i % chunk == 0 and changes > 0 and not 1 / balance <= ratio <= balance:
            rho = admm.rho * (step if ratio > 1 else 1 / step)
            admm, changes, dF, dG, last = renew(admm, rho), changes - 1, [], [], None
        s = torch.cat((admm.x.reshape(-1), admm.u.reshape(-1)))
        if admm.run(1, tol=tol):
            return admm, i + 1
        g = torch.cat((admm.x.reshape(-1), admm.u.reshape(-1)))
        f, size = g - s, float((g - s).norm())
        if tried and size > AA_SAFEGUARD * last[2]:   # worse than T's last point: back there
            admm.x, admm.u = last[0][:n].reshape(admm.x.shape), last[0][n:].reshape(admm.u.shape)
            dF, dG, tried = [], [], False
            continue
        if last is not None:
            dF, dG = (dF + [f - last[1]])[-AA_MEMORY:], (dG + [g - last[0]])[-AA_MEMORY:]
        last, tried = (g, f, size), False
        if dF and i >= cold and (i + 1) % chunk and i + 1 < budget:  # a chunk ends on T's point
            gamma = torch.linalg.lstsq(torch.stack(dF, 1), f[:, None]).solution[:, 0]
            nxt = g - torch.stack(dG, 1) @ gamma     # finite: lstsq of finite dF, f (rcond)
            admm.x, admm.u = nxt[:n].reshape(admm.x.shape), nxt[n:].reshape(admm.u.shape)
            tried = True
    return admm, int(budget)
