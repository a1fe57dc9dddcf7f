"""Sums over samples in a fixed order, the same bits with any number of processes: the
lifted warm starts' reductions (proxgrad.py, proxadmm.py).

The samples are cut into gram.py's blocks (fixed by n alone; a shard of a distributed run
holds whole blocks, `problem.blocks`). A sum over samples is the sum of the blocks'
partial sums, each evaluated on its block alone (the same shapes whatever the sharding),
added along a fixed binary tree: node (l, i) holds blocks [i 2^l, (i + 1) 2^l) and is its
two children's sum (or its one child). Each rank adds, level by level (one vectorized
addition per level), the nodes that lie inside its blocks; the nodes whose parent spans
other ranks' blocks are exchanged by one all-reduce of a buffer in which each node's row
is filled by the one rank that holds it (x + 0 is exact), and every rank adds the rest of
the tree the same way. In one process the root is all there is to exchange: nothing is.

The solvers run their iterations on one thread: a product split over
threads may round in another order, and the processes of a run need not have the same
number of threads as one process has.

Why not a plain all-reduce of each rank's sum: the lifted solvers stop at residuals near
rounding and take discrete decisions (the line search, restarts, rho's changes) on these
sums, so a last-bit difference grows into a different iterate (docs/distributed.md, "How
equal"). Also why the products are taken per block (padded to one size) rather than over
the shard at once: a product's summation order may depend on its shape, and a block's
shape is the same in every sharding.
"""
import torch

from .gram import block_start, tree_sum


class Blocks:
    """The local samples in their blocks: padding of per-sample tensors [*y] to
    [blocks, R] (R = the largest block's entries; zeros after a block's own) and back,
    block views of the data, and `total` (the fixed-order sum of per-block rows)."""

    def __init__(self, problem):
        n_all, ranges, mine = problem.blocks
        self.ranges, self.mine = ranges, mine
        self.first, last = ranges[mine]
        self.count = ranges[-1][1]           # blocks of all ranks
        offset = block_start(n_all, self.first)
        self.spans = [(block_start(n_all, k) - offset, block_start(n_all, k + 1) - offset)
                      for k in range(self.first, last)]
        self.problem, self.reduce = problem, problem.reduce_sum
        spec = problem.spec
        self.axis = spec["sample_axes"][spec["target"]]
        Y = problem.Y
        self.y_shape = tuple(Y.shape)
        self.r = Y.numel() // max(Y.shape[self.axis], 1)     # entries per sample
        widest = max(block_start(n_all, k + 1) - block_start(n_all, k)
                     for k in range(self.count))
        self.widest, self.R = widest, -(-widest * self.r // 8) * 8   # 64-byte aligned rows
        self.pos = _block_positions(self.spans, self.R, self.r, Y.device)[0]
        # blocks of one width and rows without alignment zeros: padding is a view (the
        # same entries, no copy; decided by n alone, so on every rank alike)
        self.plain = self.pos.numel() == len(self.spans) * self.R
        self._pos = {}
        self.levels = _tree_levels(self.count)
        self.plan = [_tree_plan(a, b, self.count, self.levels) for a, b in ranges]
        self.dtype, self.device = Y.dtype, Y.device

    # -- per-sample tensors ------------------------------------------------------------------
    def pad(self, x):
        """[*y] -> [blocks, R]: block j's entries (sample-major) first, then zeros."""
        flat = x.movedim(self.axis, 0).reshape(-1)
        if self.plain:
            return flat.view(len(self.spans), self.R)
        out = torch.zeros(len(self.spans) * self.R, dtype=x.dtype, device=x.device)
        out[self.pos] = flat
        return out.view(len(self.spans), self.R)

    def unpad(self, xp):
        """[blocks, R] -> [*y] (the inverse of pad)."""
        moved = self.y_shape[self.axis:self.axis + 1] + self.y_shape[:self.axis] + \
            self.y_shape[self.axis + 1:]
        flat = xp.reshape(-1) if self.plain else xp.reshape(-1)[self.pos]
        return flat.reshape(moved).movedim(0, self.axis)

    def part(self, x, j, axis=None):
        """Block j of x along the sample axis (the target's, or `axis`)."""
        lo, hi = self.spans[j]
        return x.narrow(self.axis if axis is None else axis, lo, hi - lo)

    def arrays(self, j):
        """The problem's arrays (masks included) of block j, contiguous."""
        pb, spec = self.problem, self.problem.spec
        out = dict(pb.arrays)
        for name, axis in spec["sample_axes"].items():
            if name in out:
                out[name] = self.part(out[name], j, axis).contiguous()
        if pb.D is not None:
            out["D"] = self.part(pb.D, j, spec["mask_axis"] + 1).contiguous()
        return out

    def sums(self, x):
        """Per-block sums [blocks, 1] of x with the sample axis of the target and any
        number of entries per sample (e.g. a loss's terms per row)."""
        rows = x.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)
        r = rows.shape[1]
        if r not in self._pos:
            self._pos[r] = _block_positions(self.spans, -(-self.widest * r // 8) * 8, r, x.device)
        pos, width = self._pos[r]
        if pos.numel() == len(self.spans) * width:          # no padding: a view
            return rows.reshape(len(self.spans), width).sum(1, keepdim=True)
        out = torch.zeros(len(self.spans) * width, dtype=x.dtype, device=x.device)
        out[pos] = rows.reshape(-1)
        return out.view(len(self.spans), width).sum(1, keepdim=True)

    def dots(self, xp, yp):
        """Per-block inner products of two padded tensors [blocks, R] -> [blocks, 1] (a
        row's sum does not depend on the other rows, on one thread)."""
        return (xp * yp).sum(1, keepdim=True)

    # -- the fixed-order sum -----------------------------------------------------------------
    def total(self, rows):
        """The sum over all ranks' blocks of rows [blocks, K] (this rank's blocks), in the
        tree's order: [K], the same bits on every rank and with any sharding."""
        rows = rows.reshape(len(self.spans), -1)
        K = rows.shape[1]
        if len(self.ranges) == 1:
            return _pairwise(rows)
        mine = _tree_inside(rows, self.plan[self.mine], self.levels)
        slots = [s for plan in self.plan for s in plan["export"]]
        buf = torch.zeros(len(slots), K, dtype=rows.dtype, device=rows.device)
        at = sum(len(plan["export"]) for plan in self.plan[:self.mine])
        for i, key in enumerate(self.plan[self.mine]["export"]):
            buf[at + i] = mine[key]
        if len(self.ranges) > 1:
            buf = self.reduce(buf)
        return _tree_merge(dict(zip(slots, buf)), self.levels)


def _block_positions(spans, width, r, device):
    """Where the entries of the local samples (r per sample, sample-major) go in blocks
    padded to `width` entries: (indices, width)."""
    pos = [j * width + torch.arange((hi - lo) * r) for j, (lo, hi) in enumerate(spans)]
    return torch.cat(pos).to(device), width


def _tree_levels(nb):
    """Nodes per level of the tree over nb leaves: nb, ceil(nb / 2), ..., 1."""
    out = [nb]
    while out[-1] > 1:
        out.append((out[-1] + 1) // 2)
    return out


def _tree_plan(a, b, nb, levels):
    """For leaves [a, b): per level, the range [lo, hi) of nodes inside, and the nodes
    (level, index) whose parent is not inside (sent to the other ranks)."""
    inside, export = [], []
    for level, count in enumerate(levels):
        w = 1 << level
        lo = -(-a // w)
        hi = count if b == nb else b // w
        inside.append((lo, max(lo, hi)))
    for level, (lo, hi) in enumerate(inside):
        if level + 1 == len(levels):
            covered = (lo, lo)
        else:
            plo, phi = inside[level + 1]
            covered = (2 * plo, min(2 * phi, levels[level])) if phi > plo else (lo, lo)
        export += [(level, i) for i in range(lo, hi) if not covered[0] <= i < covered[1]]
    return {"inside": inside, "export": export}


def _tree_inside(rows, plan, levels):
    """The nodes inside this rank's blocks, level by level: {(level, index): [K]} of
    those sent to the others."""
    want = {}
    for key in plan["export"]:
        want.setdefault(key[0], []).append(key[1])
    out, vals = {}, rows
    for level, (lo, hi) in enumerate(plan["inside"]):
        for i in want.get(level, ()):
            out[(level, i)] = vals[i - lo]
        if level + 1 == len(levels):
            break
        plo, phi = plan["inside"][level + 1]
        if phi <= plo:
            break
        pairs = min(phi, levels[level] // 2)     # parents with two children
        left = vals[2 * plo - lo:2 * pairs - lo:2]
        right = vals[2 * plo - lo + 1:2 * pairs - lo + 1:2]
        nxt = left + right
        if phi > pairs:                          # the last parent has one child
            nxt = torch.cat([nxt, vals[2 * pairs - lo:2 * pairs - lo + 1]])
        vals = nxt
    return out


def _pairwise(rows):
    """The whole tree in one process: the same additions as _tree_inside and _tree_merge
    (node i of a level = nodes 2i + 2i+1 of the level below, or 2i alone at the end), one
    vectorized addition per level and no bookkeeping (measured: 0.34 ms -> 0.05 ms per
    sum of [250, 121] rows). A few columns on the CPU are added as Python floats: the
    same IEEE additions in the same order, without a tensor operation per level (the
    interior point's scalar sums, measured at 250 blocks: 0.26 -> 0.05 ms)."""
    if rows.shape[1] <= SMALL and rows.device.type == "cpu" and rows.dtype == torch.float64:
        cols = [_pairwise_floats(c) for c in rows.T.tolist()]
        return torch.tensor(cols, dtype=rows.dtype)
    while rows.shape[0] > 1:
        count = rows.shape[0]
        nxt = rows[0:count - 1:2] + rows[1::2]
        rows = torch.cat([nxt, rows[count - 1:]]) if count % 2 else nxt
    return rows[0]


SMALL = 4      # columns at most summed as Python floats


def _pairwise_floats(vals):
    while len(vals) > 1:
        nxt = [vals[i] + vals[i + 1] for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def _tree_merge(nodes, levels):
    """The tree's root from disjoint nodes covering all leaves, added bottom-up."""
    for level, count in enumerate(levels[:-1]):
        for i in sorted(i for (lv, i) in list(nodes) if lv == level):
            if (level, i) not in nodes:
                continue                          # taken as a right child
            if i % 2:
                raise AssertionError(f"tree node ({level}, {i}) without its left sibling")
            node = nodes.pop((level, i))
            if i + 1 < count:
                node = node + nodes.pop((level, i + 1))
            nodes[(level + 1, i // 2)] = node
    (root,) = nodes.values()
    return root


def blocks_gram(problem, mats, first, size):
    """sum_j M_j^T M_j [size, size] over the blocks' matrices mats[k - first] (padded rows
    add zeros), added along tree_sum's tree: the same bits with any sharding."""
    free = []

    def leaf(k):
        out = free.pop().zero_() if free else mats.new_zeros(size * size)
        Mk = mats[k - first]
        out.view(size, size).addmm_(Mk.T, Mk)
        return out
    _, ranges, mine = problem.blocks
    total = tree_sum(ranges, mine, leaf, problem.share, size * size, free.append)
    return total.view(size, size)
