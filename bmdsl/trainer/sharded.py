"""The BM problem on one shard of the samples, and the trainer that uses it.

`ShardedProblem` holds rank r's contiguous block of the samples (axis n of every data
array, of the masks D_k and of Y; distributed.shard) and overrides the places of
BMProblem that sum over samples, each with one all-reduce:
* `objective`: F is a sum over samples; the local F is all-reduced in the forward pass
  and the factors' gradient of it in the backward pass (`_Shared`), the regularizer is
  added once (not N times);
* `loss`, `lifted_gradient` (G_k = L_k^*(grad F), eq. (20)), `loss_along` (escape.py's
  line search), `gauss_newton` (J^T (d^2 F) J of Newton's Hessian);
* `share` (for gram.py): G = L^* L, b = L^*(Y), ||Y||^2 are summed over blocks of
  samples along a fixed binary tree, each rank the subtrees inside its shard, and the
  subtrees' sums are broadcast so that every rank adds the rest of the tree in the same
  order: the same bits as one process. After it the Gram path, the lifted ADMM warm
  start and Newton need no communication.
Everything else is identical on every rank (the factors, the method's decisions).
The certificate's sums over samples (F, F*, G_k, the dual ray's inner products) go
through `ShardSamples`: the certificate evaluates them on the rank's shard and
all-reduces them, so its decisions are taken on the same numbers on every rank.

`DistributedTrainer` is `Trainer` on a ShardedProblem; it refuses what cannot give the
single-process result (docs/distributed.md): mini-batches (the batches are drawn from
the whole permutation), ALS (its dense Jacobian spans all samples) and BM steps with
ReLU cones (the active set and the augmented Lagrangian act on per-sample constraints);
ReLU cones train by the cone interior point, its sums reduced, and the cones' per-sample
rows (the initial projection, the violation, the final restoration: runtime/cones.py;
the certificate's cone dual norms and KKT multipliers: certificates/conennls.py) stay
on each rank's shard, reduced over the ranks.
"""
from __future__ import annotations


import logging

import numpy as np
import torch

from . import distributed as dd
from ..certificates.samples import Samples
from .errors import TrainerError
from .methods import METHODS
from .runtime.forms import regularizer
from .runtime.freeoutputs import Outputs
from .spec import build_spec, shapes
from .shards import _resized, _rows, shard_view  # noqa: F401 (shard_view: tests)
from .runtime.problem import BMProblem
from .lossgrads import registry_terms_grad, registry_value_grad
from .trainer import Trainer

log = logging.getLogger("bmdsl.trainer")


class _Shared(torch.autograd.Function):
    """Identity forward; the backward sums the gradient over ranks (the factors are the
    same on every rank, their gradient of sum_r F_r is sum_r grad F_r)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return dd.allreduce_sum(g)


class _Sum(torch.autograd.Function):
    """Sum over ranks forward; identity backward (the result is the same on every rank)."""

    @staticmethod
    def forward(ctx, x):
        return dd.allreduce_sum(x)

    @staticmethod
    def backward(ctx, g):
        return g


class ShardedProblem(BMProblem):
    sharded = True

    def __init__(self, spec, arrays, D, shapes, gates=None, F=None, *, outputs, n_all):
        super().__init__(spec, arrays, D, shapes, gates, F)
        self.outputs = outputs        # |Y| of all shards: method choice as on one process
        self.reduce_sum, self.reduce_max = dd.allreduce_sum, dd.allreduce_max
        self.n_all = n_all
        # the blocks of gram.py's sums: rank r holds blocks shard_blocks(n_all, r)
        self.blocks = (n_all, [dd.shard_blocks(n_all, r) for r in range(dd.world())],
                       dd.rank())

    @staticmethod
    def share(x, owner, numel):
        """gram.tree_sum's partial sum of the blocks of rank `owner`, on every rank."""
        return dd.broadcast(x, owner, numel)

    def objective(self, U, V, arrays=None, scale=1.0):
        if self.gram is not None and (arrays is None or arrays is self.arrays):
            return super().objective(U, V, arrays, scale)     # G is already the full sum
        arrays = arrays or self.arrays
        Us, Vs = _Shared.apply(U), _Shared.apply(V)
        local = self.F(self.predict(Us, Vs, arrays), arrays[self.spec["target"]])
        return scale * _Sum.apply(local) + regularizer(self.beta, self.norms["C"], self.norms["R"], U, V)

    def loss(self, U, V):
        if self.gram is not None:
            return super().loss(U, V)
        return _Sum.apply(self.F(self.predict(U, V), self.Y))

    def lifted_gradient(self, U, V):
        G = super().lifted_gradient(U, V)
        return G if self.gram is not None else dd.allreduce_sum(G)

    def loss_along(self, U, V, dU, dV):
        along = super().loss_along(U, V, dU, dV)
        if self.gram is not None:
            return along
        return lambda t: dd.allreduce_sum(torch.as_tensor(along(t)))

    def gauss_newton(self, U, V, active):
        H = super().gauss_newton(U, V, active)
        return H if self.gram is not None else dd.allreduce_sum(H)


class ShardSamples(Samples):
    """The certificate's sums over samples on this rank's shard (`local`, a view of the
    bound on samples [start, stop)), all-reduced over the ranks (certificates.samples)."""
    sharded = True
    backend = "numpy"   # torch's einsum on 2 shards: 5e-10 from one process's dual value

    @property
    def rank(self):
        return dd.rank()

    def total(self, x):
        return _reduced(dd.allreduce_sum, x)

    def most(self, x):
        return _reduced(dd.allreduce_max, x)


def _reduced(op, x):
    """op on a float64 tensor of x (on this rank's GPU under nccl), back to numpy/float."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float64), device=dd.device() or "cpu")
    out = op(t).cpu().numpy()
    return float(out) if np.ndim(x) == 0 else out


class DistributedTrainer(Trainer):
    """Trainer(bound, ...) on this rank's shard; call distributed.init() first (spawn and
    the CLI's --nproc do). Same options as Trainer; the result equals one process's."""

    def __init__(self, bound, device=None, dtype="float64", method="auto", m=None, seed=0,
                 **options):
        if options.get("batch_size") is not None:
            raise TrainerError("--batch-size with --nproc > 1 is not supported: the "
                               "mini-batches are drawn from the whole sample order, which a "
                               "shard does not hold; use a full-batch method")
        if method in METHODS and not METHODS[method].shards:
            raise TrainerError(f"method {method!r} with --nproc > 1 is not supported (it "
                               "needs all samples in one process); use newton or lbfgs")
        if bound.model.bias.output:
            raise TrainerError("an output bias (`bias output`) with --nproc > 1 is not "
                               "supported: its best offset b* is a minimum over all samples, "
                               "which one shard does not hold; train it with one process")
        if not dd.active():
            raise TrainerError("DistributedTrainer needs a process group: run under torchrun "
                               "or bmdsl.trainer.launch.spawn (CLI: --nproc N)")
        if device is None and dd.device() is not None:
            device = dd.device()          # nccl: this rank's GPU (LOCAL_RANK)
        if options.get("gram", "auto") == "auto" and not _fits_everywhere(bound, options):
            options["gram"] = False       # every rank takes the same path, or none
        super().__init__(bound, device, dtype, method, m, seed, **options)
        if bound.cone:
            self._cones_by_interior_point()
        if not dd.is_writer():
            self.progress = False        # rank 0 draws the progress bar
        self._same_everywhere()
        self.config()                    # its digests: one collective, on every rank now
        from ..core import footprint, memory
        start, stop = self.shard
        log.info("rank %d of %d: samples %d..%d of %d (%s), trainer memory estimated at %s",
                 dd.rank(), dd.world(), start, stop - 1, self.problem.n_all,
                 "this shard bound" if getattr(bound, "shard", None) else "all bound",
                 memory.human(footprint.trainer_for(bound, self.m, self.dtype.itemsize,
                                                    method).nbytes))

    def _cones_by_interior_point(self):
        """ReLU cones: only the cone interior point (its sums all-reduced) runs sharded;
        BM steps with cones (the active set, the augmented Lagrangian) act on per-sample
        constraints and are refused."""
        if self.warm is None or self.warm.POLISH:     # a warm start that ends the fit
            raise TrainerError(
                "ReLU cones (activation relu) with --nproc > 1 need the cone interior point "
                "warm start (a scalar output, a loss with a diagonal Hessian, C = l2, float64, "
                "m >= 2, method auto): BM steps with cones act on per-sample constraints and "
                "are not supported across processes; use gated_relu or one process")
        self.method = _NoConeSteps(self.method)

    def _same_everywhere(self):
        """Every rank must hold the same model, number of samples and gates (rank 0's
        are broadcast by the CLI; a torchrun script could bind different files): compared
        with rank 0's (sha256 digests; each rank holds other samples, its shard)."""
        from .checkpoint import digest_arrays
        gates = None if self.bound.patterns is None else self.bound.patterns.gates
        n = self.problem.n_all
        mine = {"model": super().config()["model_digest"], "number of samples": n,
                "gates": None if gates is None else digest_arrays({"g": gates})}
        theirs = dd.broadcast_object(mine)
        differ = sorted(k for k in mine if mine[k] != theirs[k])
        if differ:
            raise dd.DistributedError(
                f"rank {dd.rank()} holds another {' and '.join(differ)} than rank 0",
                hint="every rank must read the same data files with the same pattern "
                     "options (bmdsl train --nproc broadcasts them)")

    def _lower(self):
        """This rank's ShardedProblem: of the bound itself when it holds one shard
        (shards.rebind: `bound.shard`), else of samples [start, stop) of a whole bound."""
        from .spec import PLACEHOLDERS, shapes
        b, spec = self.bound, self.spec
        names = {n for eq in ("layer", "output", "adjoint") for s in spec[eq] for n, _ in s[1]}
        names = (names - set(PLACEHOLDERS)) | {spec["target"]}
        if getattr(b, "shard", None) is not None:
            start, stop, n = b.shard
            rows = lambda a, axis: a  # noqa: E731 -- the bound holds this shard only
        else:
            n = b.Y.shape[spec["sample_axes"][spec["target"]]]
            start, stop = dd.shard(n)
            rows = lambda a, axis: _rows(a, axis, start, stop)  # noqa: E731
        dd.check_shard(n)
        to = lambda a: torch.as_tensor(np.array(a), dtype=self.dtype, device=self.device)  # noqa
        arrays = {k: to(rows(b.arrays[k], spec["sample_axes"].get(k))) for k in names}
        D = None if b.masks is None else to(rows(b.masks, None if spec["mask_axis"] is None
                                                 else spec["mask_axis"] + 1))
        gates = None if b.patterns is None else to(b.patterns.gates)
        local = dict(shapes(b))
        if spec["mask_axis"] is not None:
            local["a"] = _resized(local["a"], spec["mask_axis"], stop - start)
        local["y"] = _resized(local["y"], spec["sample_axes"][spec["target"]], stop - start)
        self.shard = (start, stop)
        view = b if getattr(b, "shard", None) is not None else shard_view(b, spec, start, stop)
        self.samples = ShardSamples(b, view)
        axis = spec["sample_axes"][spec["target"]]
        outputs = b.Y.size // b.Y.shape[axis] * n        # |Y| of all samples
        # the loss as one process's trainer has it (Trainer._lower): the lifted warm starts
        # evaluate its value, gradient and prox on this shard's blocks
        problem = ShardedProblem(spec, arrays, D, local, gates, b.loss.torch_value,
                                 outputs=outputs, n_all=n)
        problem.value_grad = registry_value_grad(b.loss, problem.Y)
        problem.terms_grad = registry_terms_grad(b.loss, problem.Y)
        problem.loss_prox = b.loss.prox
        return problem

    def config(self) -> dict:
        """A checkpoint resumes with the same number of processes. The data and masks
        digests are those of every rank's shard in rank order (gathered once, in
        __init__): a rank holding all samples and one holding its shard agree."""
        config = dict(super().config(), nproc=dd.world())
        if getattr(self, "_shard_digests", None) is None:
            import hashlib

            from .checkpoint import digest_arrays
            local = self.samples.local
            mine = (digest_arrays(local.arrays),
                    None if local.masks is None else digest_arrays({"masks": local.masks}))
            every = [None] * dd.world()
            dd.all_gather_object(every, mine)
            self._shard_digests = {
                f"{what}_digest": hashlib.sha256(" ".join(str(d[i]) for d in every).encode())
                .hexdigest() for i, what in enumerate(("data", "patterns"))}
        return dict(config, **self._shard_digests)


def _fits_everywhere(bound, options) -> bool:
    """Whether the Gram matrix fits the memory budget of every rank (the free memory of
    the nodes differs; a rank alone on the Gram path would wait at collectives the
    others never make)."""
    from ..core import memory, warmfootprint
    spec = build_spec(bound.derivation)
    c = Outputs(spec, 1, 1, tuple(shapes(bound)["w2"])).c      # G = I_c (x) G_F
    G = warmfootprint.gram(bound.P, bound.p, bound.q, int(bound.Y.size), c)
    misfit = torch.tensor(0.0 if memory.fits(G, options.get("memory_budget")) else 1.0,
                          dtype=torch.float64, device=dd.device())
    return float(dd.allreduce_max(misfit)) == 0.0


class _NoConeSteps:
    """Stands for the BM method where ReLU cones allow no sharded BM step: the fit ends
    with the interior point (POLISH False); reaching a step means it did not converge."""

    def __init__(self, method):
        self.inner = method

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step(self):
        raise TrainerError("the cone interior point stopped before it converged (its "
                           "iteration or time limit) and BM steps with ReLU cones are not "
                           "supported with --nproc > 1; rerun with one process, or with "
                           "a larger --time-limit")
