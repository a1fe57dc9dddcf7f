"""The inner solves of the proximal Newton (pnewton.py) and the majorization (majorize.py):
the lifted ADMM (lifted.LiftedADMM) on a step's quadratic + D-norm program, rho balanced
between chunks, each iteration Anderson-accelerated.

One ADMM iteration is a map T on its state s = (x, u); its fixed points are the program's
solutions. Anderson's type-II extrapolation (Walker & Ni 2011; for ADMM and
Douglas-Rachford: Zhang, O'Donoghue & Boyd 2020) takes, after g_k = T(s_k) and
f_k = g_k - s_k,
    s_{k+1} = g_k - dG gamma,   gamma = argmin ||f_k - dF gamma||,
dF, dG the differences of the last AA_MEMORY f's and g's. Safeguarded by restarts: a
residual ||f_k|| above AA_RESTART times the smallest since the last restart drops the
memory and takes T's point, and so does a new rho (rho balancing between chunks: Boyd et
al. 2011, sec. 3.4.1); each chunk ends on T's point (x the prox's output, exactly low
rank or sparse), and a converged ADMM stops on its own residuals, as without it. Why: near
the end of a solve the Newton model's Gram is nearly singular and the plain ADMM creeps
(n = 2000 spiral, cross_entropy: 1500 iterations for one subproblem at a relative residual
of 1e-5; docs/performance.md).
"""
import torch

AA_MEMORY, AA_RESTART = 8, 10.0    # differences kept; restart at ||f_k|| > 10 x the least


def balanced_solve(admm, renew, tol, budget, rule):
    """`admm` (lifted.LiftedADMM) run to `tol` (its relative residuals) within `budget`
    iterations, Anderson-accelerated; after every `chunk`, once one relative residual is
    `balance` times the other, rho changes by `step` (renew(admm, rho): a new ADMM at rho
    from admm's iterate, a new factorization; a new map, so a new memory), at most
    `changes` times. rule = (chunk, balance, step, changes). gamma by least squares (QR:
    dF is often nearly rank deficient). Returns the last ADMM and the iterations run."""
    chunk, balance, step, changes = rule
    n, dF, dG, best = admm.x.numel(), [], [], -1.0      # best < 0: (re)start the memory
    for i in range(int(budget)):
        ratio = admm.primal / max(admm.dual, 1e-300)
        if i and i % chunk == 0 and changes > 0 and not 1 / balance <= ratio <= balance:
            rho = admm.rho * (step if ratio > 1 else 1 / step)
            admm, changes, best = renew(admm, rho), changes - 1, -1.0   # a new map: restart
        s = torch.cat((admm.x.reshape(-1), admm.u.reshape(-1)))
        if admm.run(1, tol=tol):
            return admm, i + 1
        g = torch.cat((admm.x.reshape(-1), admm.u.reshape(-1)))
        f, size = g - s, float((g - s).norm())
        keep = size <= AA_RESTART * best      # else restart: T's point, a new memory
        dF = (dF + [f - last[1]])[-AA_MEMORY:] if keep else []
        dG = (dG + [g - last[0]])[-AA_MEMORY:] if keep else []
        best, last = min(best, size) if keep else size, (g, f)
        if dF and (i + 1) % chunk and i + 1 < budget:    # a chunk ends on T's point
            gamma = torch.linalg.lstsq(torch.stack(dF, 1), f[:, None]).solution[:, 0]
            nxt = g - torch.stack(dG, 1) @ gamma     # finite: lstsq of finite dF, f (rcond)
            admm.x, admm.u = nxt[:n].reshape(admm.x.shape), nxt[n:].reshape(admm.u.shape)
    return admm, int(budget)
