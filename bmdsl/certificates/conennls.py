"""Non-negative least squares on the rows of the ReLU cones, the rows held in shards.

For b = 1..B problems: lam_b >= 0 (one multiplier per cone row i) minimizing

    || c_b + sum_i signs_bi lam_bi M_i ||_2 ,      K_b = diag(signs_b) M, M [rows, p],

the Lagrange dual of max { <-c_b, u> : K_b u >= 0, ||u||_2 <= 1 } (the cone dual norms
of eq. (20) with C = l2, dualnorms.py) and the KKT multipliers of the cone-constrained
BM point (19) (stationarity.py, on the active rows only). The rows are per sample, so a
process of a data-parallel run holds only its shard of them (`samples.local`).

Lawson & Hanson's active-set method (1974), whose state is small: the passive columns
a_i = signs_bi M_i (at most ~p of them, each p entries) and their multipliers. Every
process keeps the same copy of that state and solves the same small least-squares
problems; only the pricing step touches the rows: w_i = a_i^T r at the residual r, the
largest w_i over all processes (`samples.most`), the row that attains it (ties: the
first row in sample order), and its column (`samples.total`, the other processes adding
zeros: exact). So the result does not depend on the number of processes beyond the
rounding of the per-row products w_i, which decide only which row enters next; and the
B problems take their pricing steps together, three reductions per round for all.
Any lam >= 0 gives an upper bound on the cone dual norm (weak duality), so the value
stays valid if the method stops early (round limit).
"""
from __future__ import annotations

import numpy as np

from ..core import memory

_KEY = 2.0 ** 32        # row i of process r has the key r * _KEY + i: sample order


class Alone:
    """The reductions of one process holding every row (the identity)."""
    rank = 0
    total = most = staticmethod(lambda x: x)


class _Passive:
    """One problem's passive set: keys [k], columns A [p, k], multipliers x [k] > 0."""

    def __init__(self, p):
        self.keys, self.A, self.x = np.zeros(0), np.zeros((p, 0)), np.zeros(0)

    def add(self, key, column, t, tol):
        """Lawson-Hanson's inner loop after column `key` entered: min ||A x - t||, x >= 0
        on the passive set, dropping the columns that reach zero."""
        self.keys = np.append(self.keys, key)
        self.A = np.concatenate([self.A, column[:, None]], 1)
        x = np.append(self.x, 0.0)
        for _ in range(3 * len(x) + 3):
            s = np.linalg.lstsq(self.A, t, rcond=None)[0]
            if s.min() > 0:
                x = s
                break
            neg = s <= 0
            alpha = np.min(x[neg] / np.maximum(x[neg] - s[neg], 1e-300))
            x = x + alpha * (s - x)
            keep = x > tol
            self.keys, self.A, x = self.keys[keep], self.A[:, keep], x[keep]
            if not len(x):
                break
        self.x = x


def _prices(r, MT, signs):
    """signs * (r M^T) [B, rows], each entry summed over the p columns in order: the same
    bits for a row whichever process holds it (a BLAS product's order may depend on the
    shapes; under load its threads also cost more than they gained)."""
    w = r[:, :1] * MT[0]
    for a in range(1, MT.shape[0]):
        w += r[:, a:a + 1] * MT[a]
    return w * signs


def cone_nnls(M, signs, c, samples=None, allowed=None, rounds=None):
    """(w [B, p] = c_b + K_b^T lam_b, the same on every process; lam [B, rows] this
    process's multipliers), lam_b >= 0 minimizing ||w_b|| over the rows `allowed` [B, rows]
    (all by default). M [rows, p] and signs [B, rows]: this process's rows; c [B, p];
    `samples` (samples.py) reduces over the processes (None: one process, every row)."""
    samples = samples or Alone()
    M, signs, c = (np.asarray(a, dtype=np.float64) for a in (M, signs, c))
    (B, p), rows = c.shape, M.shape[0]
    memory.require(memory.Estimate(
        f"the cone NNLS's pricing products ({B} problems x {rows} cone rows)",
        5 * 8 * B * rows,   # products, masked copy, keys, multipliers: [B, rows] each
        "fewer patterns, more processes, or a smaller data set"))
    barred = None if allowed is None else ~np.asarray(allowed, bool)
    MT = np.ascontiguousarray(M.T)                                          # [p, rows]
    first = samples.rank * _KEY
    keys = first + np.arange(rows, dtype=np.float64)
    n_all = int(samples.total(float(rows)))
    norm1 = float(samples.most(float(np.abs(M).sum(1).max(initial=0.0))))
    tol = 10 * np.finfo(float).eps * max(p, n_all) * max(norm1, 1e-300)
    state = [_Passive(p) for _ in range(B)]
    active = np.arange(B)
    for _ in range(3 * n_all if rounds is None else int(rounds)):
        if not len(active):
            break
        r = -np.stack([c[b] + state[b].A @ state[b].x for b in active])    # [b', p]
        w = _prices(r, MT, signs[active])                                   # [b', rows]
        if barred is not None:
            w[barred[active]] = -np.inf
        for i, b in enumerate(active):              # passive rows do not enter again
            mine = state[b].keys[(state[b].keys >= first) & (state[b].keys < first + rows)]
            w[i, (mine - first).astype(int)] = -np.inf
        top = np.asarray(samples.most(w.max(1, initial=-np.inf)))
        go = top > tol
        key = -np.asarray(samples.most(-np.where(w == top[:, None], keys, np.inf).min(1)))
        own = (key >= first) & (key < first + rows) & go
        local = np.where(own, key - first, 0).astype(int)
        cols = np.where(own[:, None], signs[active, local][:, None] * M[local], 0.0)
        cols = np.asarray(samples.total(cols))
        for i in np.flatnonzero(go):
            b = active[i]
            state[b].add(key[i], cols[i], -c[b], tol)
        active = active[go]
    w = np.stack([c[b] + state[b].A @ state[b].x for b in range(B)]) if B else c.copy()
    lam = np.zeros((B, rows))
    for b, st in enumerate(state):
        mine = (st.keys >= first) & (st.keys < first + rows)
        lam[b, (st.keys[mine] - first).astype(int)] = st.x[mine]
    return w, lam
