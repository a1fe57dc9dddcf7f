"""The cone interior point's sums over samples (interior.py, conesystem.py, smoothloss.py,
damping.py) in blocksum.py's fixed order: the same bits with any number of processes.

The interior point's vectors are indexed by the rows of the prediction, |y| (L's rows),
or of the pre-activation, |a| (the cones' rows, M's): r of them per sample. A sum over
them (A^T r = L^T r, S^T v, S^T diag(z/s) S, L^T diag(h) L, F, s'z, the barrier's log s)
is taken per block of samples (gram.py's blocks, fixed by n alone: a shard holds whole
ones), each block's rows padded with zeros to the widest block's (a block's product has
the same shape in every sharding), and the blocks' parts are added along blocksum.py's
fixed tree, or gram.py's `tree_sum` for the p x p and P p x P p matrices (one block's
matrix at a time). Before, each rank summed its shard and the shards were all-reduced:
the last bits differed from one process's, and the last Newton systems (condition
~1e17) carried that into a final iterate as far apart as its accuracy allows (a gap
bound 2.2e-8 of the objective apart at n = 4001; docs/distributed.md, "How equal").
"""
import torch

from .blocksum import Blocks
from .gram import tree_sum


class RowSums:
    """The interior point's rows in their blocks, and fixed-order sums over them. Its
    vectors over the rows of |y| (`y`) and of |a| (`a`) live padded: [..., blocks * W],
    block j's rows (sample-major) at [j W, j W + its rows), zeros after them (a zero row
    of L or M binds nothing and predicts 0), so a block's part is a view, never a copy."""

    def __init__(self, problem):
        self.blocks = B = Blocks(problem)
        self.problem = problem
        n = problem.Y.shape[B.axis]                      # the local samples
        self.nb = len(B.spans)
        dev = problem.Y.device
        # padded to the widest block of all ranks' (B.widest): a block's products have
        # the same shapes in every sharding
        self.kind = {"y": _Rows(B.spans, B.widest, problem.Y.shape, B.axis, n, dev),
                     "a": _Rows(B.spans, B.widest, problem.a_shape, problem.spec["mask_axis"],
                                n, dev)}

    def width(self, kind):
        return self.kind[kind].W

    def pad(self, x, kind):
        """x [..., rows] (the local rows of |y| or |a|) -> [..., blocks * W]."""
        return self.kind[kind].pad(x)

    def mask(self, kind, like):
        """1 at the rows, 0 at the padding [blocks * W]."""
        return self.pad(torch.ones(self.kind[kind].count, dtype=like.dtype,
                                   device=like.device), kind)

    def parts(self, x, kind):
        """Padded x [..., blocks * W] -> [blocks, K, W] (K: x's leading entries)."""
        W = self.kind[kind].W
        return x.reshape(-1, self.nb, W).transpose(0, 1).contiguous()

    def total(self, parts):
        """The fixed-order sum of per-block parts [blocks, ...] -> [...]."""
        shape = parts.shape[1:]
        return self.blocks.total(parts.reshape(self.nb, -1)).reshape(shape)

    def sum(self, x, kind):
        """The sum of all entries of padded x [..., blocks * W]: over its leading axes per
        row, then per block, then the blocks in the fixed order (a float)."""
        rows = x.reshape(-1, x.shape[-1]).sum(0)
        return float(self.total(rows.view(self.nb, -1).sum(1, keepdim=True)))

    def per_block(self, value, kind):
        """The fixed-order sum of value(lo, hi) (a float of the padded rows [lo, hi) of
        each local block)."""
        rows = self.kind[kind]
        parts = [value(j * rows.W, j * rows.W + n * rows.r)
                 for j, n in enumerate(rows.sizes)]
        return float(self.total(torch.tensor(parts, dtype=torch.float64)[:, None]))

    def matrix(self, leaf, numel, batched=None):
        """The sum over blocks of leaf(j) (numel entries of local block j), along gram.py's
        tree one block's matrix at a time; or of batched() [blocks, numel] at once, in
        blocksum.py's tree, where those fit in BATCHED entries."""
        # decided on all ranks' blocks: every rank takes the same tree as one process
        if batched is not None and self.blocks.count * numel <= BATCHED:
            return self.total(batched().reshape(self.nb, numel))
        pb, first = self.problem, self.blocks.first
        _, ranges, mine = pb.blocks
        return tree_sum(ranges, mine, lambda k: leaf(k - first).reshape(-1), pb.share, numel)


BATCHED = 4_000_000     # entries of the per-block matrices summed at once at most


class _Rows:
    """The rows of one kind: r per sample, their order sample-major (`perm` when the
    sample axis is not the leading one), padded per block to W = r * the widest block of
    all ranks'."""

    def __init__(self, spans, widest, shape, axis, n, device):
        shape = tuple(shape)
        count = 1
        for s in shape:
            count *= s
        self.count, self.r = count, count // max(n, 1)
        order = torch.arange(count).reshape(shape).movedim(axis, 0).reshape(-1)
        self.perm = None if bool((order == torch.arange(count)).all()) else order.to(device)
        self.sizes = [hi - lo for lo, hi in spans]
        self.W = widest * self.r
        pos = [j * self.W + torch.arange((hi - lo) * self.r) for j, (lo, hi) in enumerate(spans)]
        self.pos = torch.cat(pos).to(device)
        self.nb = len(spans)

    def pad(self, x):
        lead = x.shape[:-1]
        x = x.reshape(-1, self.count)
        if self.perm is not None:
            x = x[:, self.perm]
        out = x.new_zeros(x.shape[0], self.nb * self.W)
        out[:, self.pos] = x
        return out.reshape(lead + (self.nb * self.W,))
