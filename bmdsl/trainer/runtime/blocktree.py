"""The samples in blocks fixed by n alone, and their sums over a fixed binary tree: the
same additions in the same order on any number of processes (the Gram matrix of gram.py,
the row sums of rowsums.py and blocksum.py)."""


GRAM_BLOCKS = 256              # the samples are summed in at most this many blocks
MIN_BLOCK = 16                 # samples per block at least (a block costs ~1 ms of calls)


def block_count(n: int) -> int:
    """Blocks of the Gram sums (and the units of the processes' shards, so at most this
    many processes): a function of n alone, so that every number of processes sums the
    same blocks."""
    return max(1, min(int(n) // MIN_BLOCK, GRAM_BLOCKS))


def block_start(n: int, k: int) -> int:
    """The first sample of block k: blocks of floor(n / count) or one more samples."""
    return int(k) * int(n) // block_count(n)


def pairwise_sum(lo, hi, leaf, release=lambda x: None):
    """The sum of leaf(k) over blocks k in [lo, hi) by pairwise halving; a right child,
    once added, goes to release(x) (leaf may reuse its memory)."""
    if hi - lo == 1:
        return leaf(lo)
    mid = (lo + hi) // 2
    left, right = pairwise_sum(lo, mid, leaf, release), pairwise_sum(mid, hi, leaf, release)
    left.add_(right)                                   # one partial sum per tree level
    release(right)
    return left


def tree_sum(ranges, mine, leaf, share, numel, release=lambda x: None):
    """The sum of leaf(k) over blocks k in [0, nb) (nb = ranges[-1][1]) by pairwise
    halving of [0, nb): the same additions in the same order for any `ranges` (rank r
    holds blocks ranges[r]). A node inside one rank's range is summed by that rank
    (`pairwise_sum`) and sent to the others by share(value or None, owner, numel) (the
    same value, of numel entries, on every rank); the nodes above are added on
    every rank. In one process (ranges = [(0, nb)]) this is pairwise_sum(0, nb)."""
    def added(left, right):
        left.add_(right)
        release(right)
        return left

    def local(lo, hi):
        return pairwise_sum(lo, hi, leaf, release)

    def node(lo, hi):
        owner = next((r for r, (a, b) in enumerate(ranges) if a <= lo and hi <= b), None)
        if owner is not None:
            return share(local(lo, hi) if owner == mine else None, owner, numel)
        mid = (lo + hi) // 2
        return added(node(lo, mid), node(mid, hi))
    return node(0, ranges[-1][1])
