"""A fused, tiled forward/backward of the BM prediction (14)/(18) for "outer" models.

When the derivation's specs have the form (one term each, checked by `fused_plan`)

    layer   A[a] = c1 * T[a, w] W1[w]        T a data tensor, W1 contracted over all of w
    output  Yhat[y] = c2 * H[a] W2[b]        an outer product: y = a + b, nothing summed

(the MLP: A[n] = X[n, i] W1[i], Yhat[n, o] = act(A)[n] W2[o], whose prediction in the BM
program (14) is sum_k D_k X U_k V_k^T of (17)-(19)), the prediction with all patterns k
and units j is two GEMMs around the mask: with Xm = T as [N, p] (N = |a|), Ut = U as
[P m, p], Vm = V as [P m, q] and the masks D [P, N] (none for the linear (17)),

    H = D_k * (Ut Xm^T)   [P m, N]           Yhat^T = c Vm^T H   [q, N]   (c = c1 c2)

and, with R = c (dF/dYhat)^T [q, N], the gradients need neither the pre-activation nor a
second copy of the masks (the backward of D * A multiplies by the same D):

    dV = H R^T   [P m, q]                     dU = (D_k * (Vm R)) Xm   [P m, p].

Every column of H (one entry of a) is independent, so N is cut into tiles that stay in a
core's cache while the mask, the thin products with q columns and the gradient of H are
applied, instead of streaming [P m, N] tensors through memory five more times; one worker
thread per core takes a fixed run of tiles; the tiles of H are kept in one buffer that
is recycled from step to step (fresh pages cost a page fault each: 0.1 s per 200 MB).
bench/bench_throughput.py measures each of these. Any other form -- several terms, extra
data operands (CNN pooling), the data twice (attention), contractions between H and W2 --
gets None from `fused_plan`: the generic einsum path.
"""
import math
import threading

import torch

PLACEHOLDER_NAMES = ("W1", "W2", "H", "Z", "D", "R")
# entries of one [P m, tile] block: 2^18 float32 = 1 MB, one core's L2 (2^17 .. 2^20
# measured within noise of each other on the benchmark, 2^16 and the untiled N slower)
FUSED_TILE = 1 << 18


def _distinct(*indices):
    return all(len(set(idx)) == len(idx) for idx in indices)


def fused_plan(spec, shapes):
    """The FusedOuter of these specs (shapes: w1, w2, a sizes), or None if not of the form."""
    if len(spec["layer"]) != 1 or len(spec["output"]) != 1:
        return None
    c1, lops, aidx = spec["layer"][0]
    c2, oops, yidx = spec["output"][0]
    if len(lops) != 2 or [n for n, _ in lops].count("W1") != 1:
        return None
    (tname, tidx), = [op for op in lops if op[0] != "W1"]
    widx = dict(lops)["W1"]
    if tname in PLACEHOLDER_NAMES or not _distinct(tidx, widx, aidx) or set(widx) & set(aidx) \
            or sorted(tidx) != sorted(tuple(widx) + tuple(aidx)):
        return None                  # T carries exactly the axes of A and of W1, once
    if len(oops) != 2 or sorted(n for n, _ in oops) != ["H", "W2"]:
        return None
    hidx, vidx = dict(oops)["H"], dict(oops)["W2"]
    if len(hidx) != len(aidx) or not _distinct(hidx, vidx, yidx) or set(hidx) & set(vidx) \
            or sorted(yidx) != sorted(tuple(hidx) + tuple(vidx)):
        return None                  # an outer product: every index of H and W2 kept
    t_perm = tuple(tidx.index(i) for i in tuple(aidx) + tuple(widx))   # T -> [*a, *w1]
    y_perm = tuple((tuple(vidx) + tuple(hidx)).index(i) for i in yidx)  # [*w2, *a] -> y
    return FusedOuter(tname, t_perm, y_perm, float(c1) * float(c2), shapes)


class FusedOuter:
    """predict(U, V, arrays) for the outer form. `block` overrides the tile width,
    `workers` the number of worker threads (None: torch's thread count; 1: one worker,
    with torch's own threads inside each product). Holds the recycled tile buffer."""

    def __init__(self, tensor, t_perm, y_perm, coef, shapes, block=None, workers=None):
        self.tensor, self.t_perm, self.y_perm, self.coef = tensor, t_perm, y_perm, coef
        self.w2_shape, self.na = tuple(shapes["w2"]), len(shapes["a"])
        self.p = math.prod(shapes["w1"])
        self.block, self.workers, self.spare = block, workers, None

    def applies(self, U, V, arrays):
        """Data that need no gradient (the custom backward returns none for them)."""
        T, D = arrays[self.tensor], arrays.get("D")
        return not T.requires_grad and (D is None or not D.requires_grad)

    def predict(self, U, V, arrays):
        """Yhat [*y] = c sum_kj D_k * A(u_kj) (x) v_kj (eq. (14)); the sizes of a from the
        data (a mini-batch has fewer samples than the problem)."""
        T = arrays[self.tensor].permute(self.t_perm)
        Xm = T.reshape(-1, self.p)
        D = arrays.get("D")
        D = None if D is None else D.reshape(D.shape[0], -1)
        rows, N = U.shape[0] * U.shape[1], Xm.shape[0]
        block = self.block or (N if Xm.device.type != "cpu" else
                               max(16, min(N, FUSED_TILE // max(rows, 1))))
        YT = _FusedMaskedGemm.apply(U, V, Xm, D, self, block)
        return YT.reshape(self.w2_shape + tuple(T.shape[:self.na])).permute(self.y_perm)

    def take(self, tiles, rows, block, like):
        """A [tiles, rows, block] buffer: the spare one when large enough, else new."""
        b, self.spare = self.spare, None
        if b is None or b.shape[0] < tiles or b.shape[1:] != (rows, block) or \
                b.dtype != like.dtype or b.device != like.device:
            b = torch.empty((tiles, rows, block), dtype=like.dtype, device=like.device)
        return b

    def give(self, buffer):
        """Back for the next step, once nothing reads it any more."""
        self.spare = buffer

    def parts(self, tiles, device):
        """Tile numbers in contiguous runs, one per worker: a fixed split, so the sums
        of dU, dV are in the same order every time (reproducible steps)."""
        k = 1 if device.type != "cpu" else self.workers or torch.get_num_threads()
        k = max(1, min(k, tiles))
        return [range(i * tiles // k, (i + 1) * tiles // k) for i in range(k)]


class _OneThread:
    """torch single-threaded while the workers run, with the few small ops around them
    (new threads start with this setting); restored afterwards. Why not torch's own
    threads: a tile's products take ~1 ms, and on a 2-core machine shared with another
    job each OpenMP region then waits for a descheduled thread -- measured 1.2-15 s per
    benchmark step instead of 0.6-0.8 s (and 55 ms instead of 1.3 ms for the small ops
    of a squared loss on [n, c]). Inactive for one worker (torch's threads are used)."""

    def __init__(self, active):
        self.active = active

    def __enter__(self):
        if self.active:
            self.before = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.active:
            torch.set_num_threads(self.before)


def _in_parallel(fn, parts):
    """[fn(part) for part in parts], one Python thread per part (the caller holds torch
    at one thread): the workers meet once per pass. torch releases the GIL inside mm,
    addmm_ and mul_, so the parts run at the same time."""
    if len(parts) == 1:
        return [fn(parts[0])]
    out, errors = [None] * len(parts), []

    def work(i):
        try:
            out[i] = fn(parts[i])
        except BaseException as e:   # re-raised in the caller below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, len(parts))]
    try:
        for t in threads:
            t.start()
        work(0)
    finally:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return out


class _Lease:
    """The tile buffer H of one graph: back to the plan when the graph is freed (after
    its last possible backward, retained graphs included), never while it can be read."""

    def __init__(self, plan, H):
        self.plan, self.H = plan, H

    def __del__(self):
        self.plan.give(self.H)


class _FusedMaskedGemm(torch.autograd.Function):
    """Yhat^T = c Vm^T (D_k * Ut Xm^T) with the gradients of the module docstring.
    Keeps the masked tiles of H in a buffer leased from the plan; once differentiable:
    nothing differentiates the prediction twice (Newton's Hessian uses jac_u, jac_v)."""

    @staticmethod
    def forward(ctx, U, V, Xm, D, plan, block):
        parts = plan.parts(-(-Xm.shape[0] // block), U.device)
        with _OneThread(len(parts) > 1):
            return _FusedMaskedGemm._forward(ctx, U, V, Xm, D, plan, block, parts)

    @staticmethod
    def _forward(ctx, U, V, Xm, D, plan, block, parts):
        P, m = U.shape[:2]
        Ut, Vm = U.detach().reshape(P * m, -1), V.detach().reshape(P * m, -1)
        VmT, N = Vm.t().contiguous(), Xm.shape[0]
        YT = torch.empty((Vm.shape[1], N), dtype=U.dtype, device=U.device)
        tiles = -(-N // block)
        H = plan.take(tiles, P * m, block, U)

        def run(part):               # one worker's tiles; workers write disjoint columns
            for i in part:
                s, e = i * block, min(N, (i + 1) * block)
                h = torch.mm(Ut, Xm[s:e].t(), out=H[i, :, :e - s])   # A, [P m, e - s]
                if D is not None:
                    h.view(P, m, e - s).mul_(D[:, None, s:e])        # in place: no A kept
                torch.mm(VmT, h, out=YT[:, s:e])

        _in_parallel(run, parts)
        if plan.coef != 1.0:
            YT.mul_(plan.coef)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.save_for_backward(Vm, Xm, *(() if D is None else (D,)))
            ctx.lease, ctx.meta = _Lease(plan, H), (P, m, block, parts, U.shape, V.shape)
        else:
            plan.give(H)             # no backward will read it
        return YT

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gYT):
        with _OneThread(len(ctx.meta[3]) > 1):
            return _FusedMaskedGemm._backward(ctx, gYT)

    @staticmethod
    def _backward(ctx, gYT):
        P, m, block, parts, ushape, vshape = ctx.meta
        Vm, Xm, *D = ctx.saved_tensors
        D, H, plan = (D[0] if D else None), ctx.lease.H, ctx.lease.plan
        RT = (gYT * plan.coef if plan.coef != 1.0 else gYT).contiguous()   # [q, N]: small
        want_u, want_v = ctx.needs_input_grad[:2]
        N, Pm, opts = Xm.shape[0], P * m, {"dtype": RT.dtype, "device": RT.device}

        def run(part):               # one worker's share of dU, dV
            dU = torch.zeros((Pm, Xm.shape[1]), **opts) if want_u else None
            dV = torch.zeros((Pm, RT.shape[0]), **opts) if want_v else None
            S = torch.empty((Pm, block), **opts) if want_u else None
            for i in part:
                s, e = i * block, min(N, (i + 1) * block)
                R = RT[:, s:e]
                if want_v:
                    dV.addmm_(H[i, :, :e - s], R.t())                # dV += H R^T
                if want_u:
                    G = torch.mm(Vm, R, out=S[:, :e - s])            # dH = Vm R
                    if D is not None:
                        G.view(P, m, e - s).mul_(D[:, None, s:e])    # dA = D * dH
                    dU.addmm_(G, Xm[s:e])                            # dU += dA Xm
            return dU, dV

        sums = _in_parallel(run, parts)
        dU = sum(p[0] for p in sums).reshape(ushape) if want_u else None
        dV = sum(p[1] for p in sums).reshape(vshape) if want_v else None
        return dU, dV, None, None, None, None
