"""ReLU cones on shards, in one process: the cone NNLS (certificates/conennls.py) with
its rows split among threads standing for ranks gives the one-process result, and the
sharded restoration (runtime/cones.py) the same feasible point as the unsharded one.
(The 2-process runs are in test_distributed.py.)"""
import threading

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

import bmdsl
from bmdsl.certificates.conennls import cone_nnls
from bmdsl.core import memory
from bmdsl.trainer.runtime.cones import into_cones, max_violation, restore_cones


class _Ranks:
    """`size` threads reducing through a barrier, in rank order (as an all-reduce)."""

    def __init__(self, size):
        self.size, self.box = size, [None] * size
        self.barrier = threading.Barrier(size, timeout=60)   # a failing rank: no hang

    def view(self, r):
        ranks = self

        class View:
            rank = r

            def total(self, x):
                return ranks._reduce(r, x, lambda xs: sum(xs[1:], xs[0]))

            def most(self, x):
                return ranks._reduce(r, x, lambda xs: np.maximum.reduce(xs))
        return View()

    def _reduce(self, r, x, op):
        self.box[r] = np.asarray(x, dtype=np.float64)
        self.barrier.wait()
        out = op(list(self.box))
        self.barrier.wait()
        return out if np.ndim(x) else float(out)


def _split(fn, n, size):
    """fn(rank view, start, stop) in `size` threads over n rows; their results in order."""
    ranks, out = _Ranks(size), [None] * size
    bounds = np.linspace(0, n, size + 1).astype(int)

    def run(r):
        out[r] = fn(ranks.view(r), bounds[r], bounds[r + 1])
    threads = [threading.Thread(target=run, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_cone_nnls_on_shards_equals_one_process_and_scipy(seed):
    rng = np.random.default_rng(seed)
    n, p, B = 70, 5, 6
    M = np.hstack([rng.standard_normal((n, p - 1)), np.ones((n, 1))])
    signs = np.where(M @ rng.standard_normal((p, B)) >= 0, 1.0, -1.0).T   # B cones
    c = rng.standard_normal((B, p))
    allowed = rng.random((B, n)) < 0.7
    w1, lam1 = cone_nnls(M, signs, c, allowed=allowed)
    for b in range(B):                       # the exact NNLS of each problem
        K = signs[b, allowed[b], None] * M[allowed[b]]
        x, res = nnls(K.T, -c[b])
        assert np.linalg.norm(w1[b]) == pytest.approx(res, rel=1e-10, abs=1e-12)
    assert lam1.min() >= 0 and not lam1[~allowed].any()
    assert np.allclose(w1, c + np.einsum("bn,np->bp", signs * lam1, M), atol=1e-12)
    for size in (2, 3):
        parts = _split(lambda s, a, z: cone_nnls(M[a:z], signs[:, a:z], c, s,
                                                 allowed=allowed[:, a:z]), n, size)
        for w, _ in parts:                   # the same on every rank, and as one process
            assert np.array_equal(w, parts[0][0])
        assert np.abs(parts[0][0] - w1).max() <= 1e-13 * np.abs(w1).max()
        assert np.allclose(np.concatenate([lam for _, lam in parts], 1), lam1, atol=1e-12)


class _Sharded:
    """A problem's cone rows [start, stop) with reductions over the threads."""
    sharded = True

    def __init__(self, problem, s, start, stop):
        self.problem, self.p, self.gates = problem, problem.p, problem.gates
        self.D = problem.D[:, start:stop]
        self.rows = slice(start, stop)
        red = lambda f: (lambda x: torch.as_tensor(f(x.detach().numpy()), dtype=x.dtype))  # noqa
        self.reduce_sum, self.reduce_max = red(s.total), red(s.most)

    def layer_basis(self):
        return self.problem.layer_basis()[..., self.rows]

    def slack(self, U):
        return self.problem.slack(U)[..., self.rows]


def _problem(rng):
    X = rng.standard_normal((40, 3))
    model = bmdsl.parse(open("models/relu.bm").read().replace("patterns = 50", "patterns = 4"))
    bound = model.derive().bind({"X": X, "Y": np.sign(X[:, 0])})
    return bound.to_torch(device="cpu", progress=False, warm_start=False).problem


def test_projection_and_violation_on_shards_equal_the_unsharded_ones():
    rng = np.random.default_rng(1)
    problem = _problem(rng)
    U = torch.as_tensor(rng.standard_normal((4, 2, 3)))
    whole = into_cones(problem, U)
    assert max_violation(problem, U) > 0 and max_violation(problem, whole) == 0
    for size in (2, 3):
        parts = _split(lambda s, a, z: (into_cones(_Sharded(problem, s, a, z), U),
                                        max_violation(_Sharded(problem, s, a, z), U)),
                       40, size)
        for got, violation in parts:
            assert torch.equal(got, whole) and violation == max_violation(problem, U)


def test_the_cone_nnls_is_estimated_before_it_allocates(monkeypatch):
    monkeypatch.setenv(memory.BUDGET_ENV, "1M")
    with pytest.raises(memory.MemoryBudgetError, match="cone NNLS"):
        cone_nnls(np.ones((20000, 3)), np.ones((10, 20000)), np.ones((10, 3)))


def test_restoration_on_shards_is_feasible_and_near_the_unsharded_one():
    rng = np.random.default_rng(0)
    problem = _problem(rng)
    U = torch.as_tensor(rng.standard_normal((4, 2, 3)))
    assert max_violation(problem, U) > 0
    whole = restore_cones(problem, U)
    assert max_violation(problem, whole) <= 1e-12
    for size in (1, 2):
        parts = _split(lambda s, a, z: restore_cones(_Sharded(problem, s, a, z), U), 40, size)
        for got in parts:
            assert torch.equal(got, parts[0])
            assert max_violation(problem, got) <= 1e-12 * float(got.norm())
            assert torch.allclose(got, whole, atol=1e-9)


def _interior(recipe):
    import torch

    from bmdsl.trainer import Trainer, distributed, launch
    from bmdsl.trainer.sharded import DistributedTrainer
    torch.set_num_threads(1)
    bound = launch.rebind(recipe)
    make = DistributedTrainer if distributed.active() else Trainer
    result = make(bound, device="cpu", progress=False).fit()
    c = result.certificate
    return result.warm_start["iterations"], result.objective, c.gap_bound, c.dual_value


def test_the_interior_point_on_two_processes_takes_one_process_bits():
    """The cone interior point's sums over samples in the fixed block order (rowsums.py):
    with n = 149 (9 blocks, 5 and 4 per rank, one of 17 samples) 2 processes run the
    same iterations to the same objective, bit for bit; the gap bounds (the certificate's
    all-reduced sums) agree to 1e-12 of the objective."""
    from bmdsl.trainer import launch
    rng = np.random.default_rng(4)
    X = rng.standard_normal((149, 3))
    text = open("models/relu.bm").read().replace("patterns = 50", "patterns = 10")
    bound = bmdsl.parse(text).derive().bind({"X": X, "Y": np.sign(X[:, 0] * X[:, 1] + 0.2)})
    recipe = launch.recipe(bound)
    one = _interior(recipe)
    two = launch.spawn(_interior, 2, (recipe,), timeout=300)
    assert one[0] == two[0] and one[1] == two[1]
    assert abs(one[2] - two[2]) * one[3] <= 1e-12 * one[1] and one[2] < 1e-4
