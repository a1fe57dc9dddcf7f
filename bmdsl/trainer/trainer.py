"""`Trainer`: the BM factorization (14)/(18)/(19) of a bound model, trained in torch.

    trainer = bound.to_torch()            # or Trainer(bound, device=None, dtype="float64")
    result = trainer.fit()                # TrainResult: objective, certificate, violation
    net = trainer.network()               # an ordinary torch.nn.Module

Factors U [P, m, *w1_shape], V [P, m, *w2_shape] live on `cuda` when available (else
CPU). One step contracts all patterns and units at once (runtime/problem.py); the data
and the masks D_k are moved to the device once, mini-batches slice them along the sample
axis. ReLU cones (19) are kept exactly by the Newton method (runtime/activeset.py) or by
an augmented Lagrangian (the other methods), and restored at the end (runtime/cones.py).
Checkpoints resume to the same result; Ctrl-C saves one (fitloop.py).
"""
from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .arguments import check_arguments
from .errors import TrainerError
from .factored import handoff
from .fitloop import run_fit
from .lossgrads import registry_terms_grad, registry_value_grad
from .result import TrainResult  # noqa: F401  (bmdsl.trainer's name for it)
from .methods import METHODS, resolve
from .runtime.cones import AugmentedLagrangian
from .runtime.fit import initial_factors
from .runtime.freeoutputs import Outputs
from .runtime.gram import gram_pays
from .runtime.problem import BMProblem
from .runtime.warm import WARM_STARTS, warm_refusals
from ..core import footprint, memory, warmfootprint
from .spec import PLACEHOLDERS, build_spec, shapes

DTYPES = {"float32": torch.float32, "float64": torch.float64}
SMALL_WORK = 20_000_000  # below this, one thread per step (see Trainer.fit)


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise TrainerError(f"unknown device {device!r}; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainerError("device cuda was asked for but torch sees no CUDA device",
                           hint="use --device cpu (or leave the device unset)")
    return dev


def estimate(bound, m, dtype=torch.float64, method="auto", batch_size=None, gram="auto",
             budget=None, spec=None):
    """footprint.trainer_for with the Gram path as Trainer decides it (below), from sizes
    alone, before any tensor is made: Newton builds no Jacobian with the Gram."""
    spec, dtype = spec or build_spec(bound.derivation), DTYPES.get(dtype, dtype)
    c = Outputs(spec, 1, 1, bound.w2_shape).c
    G = warmfootprint.gram(bound.P, bound.p, bound.q, int(bound.Y.size), c)
    sizes = SimpleNamespace(spec=spec, P=bound.P, p=bound.p, q=bound.q, free_outputs=c)
    full = batch_size is None or int(batch_size) >= (bound.Y.shape[0] if bound.Y.ndim else 1)
    return footprint.trainer_for(bound, m, dtype.itemsize, method, batch_size,
                                 _gram_on(gram, G, budget, sizes, dtype, full))


def _gram_on(gram, G, budget, sizes, dtype, full_batch) -> bool:
    """The Gram path: asked for (True), or "auto" where G fits the budget and pays."""
    return gram is True or (gram == "auto" and memory.fits(G, budget) and
                            gram_pays(sizes, dtype, full_batch))


class Trainer:
    def __init__(self, bound, device=None, dtype="float64", method="auto", m=None, seed=0, *,
                 lr=None, batch_size=None, init_scale=0.1, checkpoint=None,
                 checkpoint_every=None, progress=None, certificate_every=None, al_every=None,
                 gram="auto", warm_start="auto", interrupt_checkpoint=None, memory_budget=None):
        check_arguments(m=m, seed=seed, lr=lr, batch_size=batch_size, init_scale=init_scale,
                        checkpoint_every=checkpoint_every, certificate_every=certificate_every,
                        al_every=al_every)    # TrainerError before any work (arguments.py)
        self.bound, self.device = bound, _device(device)
        if dtype not in DTYPES and dtype not in DTYPES.values():
            raise TrainerError(f"unknown dtype {dtype!r}; use float32 or float64")
        self.dtype = DTYPES.get(dtype, dtype)
        self.m, self.seed, self.lr = int(m or bound.m), int(seed), lr
        if self.m <= 0:
            raise TrainerError(f"the number of units m must be positive, not {m}")
        self.spec = build_spec(bound.derivation)
        # estimated against the memory budget before the data, masks and factors are
        # allocated on the device (bmdsl.core.memory; memory_budget overrides the default)
        self.memory_budget = memory_budget
        memory.require(estimate(bound, self.m, self.dtype, method, batch_size, gram,
                                memory_budget, self.spec), memory_budget)
        self.problem = self._lower()
        n = self.problem.n
        if batch_size is not None and int(batch_size) <= 0:
            raise TrainerError(f"the batch size must be positive, not {batch_size}")
        self.batch_size = None if batch_size is None or int(batch_size) >= n else int(batch_size)
        self.batches_per_epoch = 1 if self.batch_size is None else -(-n // self.batch_size)
        G = warmfootprint.gram(self.problem.P, self.problem.p, self.problem.q,
                           self.problem.Y.numel(), self.problem.free_outputs)
        if gram is True:
            memory.require(G, memory_budget)
        if _gram_on(gram, G, memory_budget, self.problem, self.dtype, self.batch_size is None):
            self.problem.use_gram()
        self.method_name = resolve(method, self.problem, self.m, self.batch_size is None)
        # "auto" stays off for a method asked for by name and for mini-batches (data that
        # is split is not given whole to a convex solver)
        off = warm_start == "auto" and (method != "auto" or self.batch_size is not None)
        self.warm = self._warm_start(False if off else warm_start)
        self.warm_info = None
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        # where Ctrl-C saves when `checkpoint` is not set (fitloop._interrupt_path; a free
        # name is chosen there, so nothing is replaced); None: ./<model>-interrupted.pt
        self.interrupt_checkpoint = interrupt_checkpoint
        self.progress, self.certificate_every = progress, certificate_every
        self.al_every = int(al_every or METHODS[self.method_name].al_every)
        self._init_factors(init_scale)
        self._method = None     # made at its first use: see `method`

    # -- set-up -----------------------------------------------------------------------------
    def _lower(self) -> BMProblem:
        b, spec = self.bound, self.spec
        names = {n for eq in ("layer", "output", "adjoint") for s in spec[eq] for n, _ in s[1]}
        names = (names - set(PLACEHOLDERS)) | {spec["target"]}
        to = lambda a: torch.as_tensor(np.array(a), dtype=self.dtype, device=self.device)  # noqa
        D = None if b.masks is None else to(b.masks)
        gates = None if b.patterns is None else to(b.patterns.gates)
        # the loss from its registry entry (bmdsl.atoms.losses): torch_value for the BM steps,
        # value and grad for the lifted solvers, so a loss added there needs nothing here
        # (an output bias: F's own torch form, which the runtime wraps, offset.py)
        problem = BMProblem(spec, {k: to(b.arrays[k]) for k in names}, D, shapes(b), gates,
                            F=(b.loss.base or b.loss).torch_value)
        problem.value_grad = registry_value_grad(b.loss, problem.Y)
        problem.terms_grad = registry_terms_grad(b.loss, problem.Y)
        problem.loss_prox = b.loss.prox   # None: the loss declares no prox (or an offset)
        # the lifted FISTA's L-BFGS phase (factored.py), which reads the fit's goal off the
        # problem (fitloop) and checks it on the bound's loss and pair
        problem.handoff = partial(handoff, bound=b)
        return problem

    def _warm_start(self, setting):
        """The convex warm start of runtime/warm.py, run by fit before the first BM step
        ("auto": wherever one applies, the method is "auto" and the batch is full -- a
        method asked for by name starts from random factors, as it always did; True:
        always, else an error; False: BM from the random factors alone)."""
        if setting not in ("auto", True, False):
            raise TrainerError(f"warm_start must be 'auto', True or False, not {setting!r}")
        if setting is False:
            return None
        warm, refused = None, None
        for start in WARM_STARTS:   # runtime/warm.warm_start_for, each estimate checked first
            if start.accepts(self.problem, self.m) is not None:
                continue
            estimate = warmfootprint.warm_start(start.__name__, self.problem)
            if not memory.fits(estimate, self.memory_budget):
                refused = refused or estimate      # "auto": the BM method starts alone
                continue
            warm = start.of(self.problem)
            if warm is not None:
                break
        if warm is None and setting is True and refused is not None:
            memory.require(refused, self.memory_budget)
        if warm is None and setting is True:
            raise TrainerError(f"no warm start applies: {warm_refusals(self.problem, self.m)}"
                               "; use warm_start='auto' or False")
        return warm

    def _init_factors(self, scale):
        """runtime.fit.initial_factors (seeded CPU generator; U projected into the cones)."""
        pb = self.problem
        U, V = initial_factors(pb, self.m, self.seed, scale, self.dtype, self.device)
        # a method with no penalty cap (newton) keeps the cones exactly; the others by the AL
        self.al = None
        rho_max = METHODS[self.method_name].rho_max
        if pb.cone and rho_max is not None:
            self.al = AugmentedLagrangian((pb.P, self.m) + pb.a_shape, self.dtype, self.device,
                                          rho_max=rho_max)
        self.U, self.V = U.requires_grad_(True), V.requires_grad_(True)
        self.batch_gen = torch.Generator().manual_seed(self.seed + 1)
        self.perm, self.pos = None, 0

    def config(self) -> dict:
        """What a checkpoint must share with this trainer to be resumed by it."""
        b = self.bound
        if getattr(self, "_digests", None) is None:   # once: the data do not change in a fit
            from .checkpoint import digest_arrays, digest_literal
            ps = b.patterns
            self._digests = {
                "model_digest": digest_literal(self.spec),
                "data_digest": digest_arrays(b.arrays),
                "patterns_digest": None if ps is None else digest_arrays(
                    {"masks": ps.masks, **({} if ps.gates is None else {"gates": ps.gates})})}
        return {"model": b.model.name, "activation": b.activation.name, "P": b.P, "m": self.m,
                "w1_shape": list(b.w1_shape), "w2_shape": list(b.w2_shape),
                "method": self.method_name, "dtype": str(self.dtype).replace("torch.", ""),
                "seed": self.seed, "lr": self.lr, "batch_size": self.batch_size,
                "gram": self.problem.gram is not None,
                "beta": b.beta, "C": b.C, "R": b.R, "loss": b.loss.name, **self._digests}

    @property
    def method(self):
        """The BM method's stepper (runtime/steps.py, curvature.py), made at its first use:
        a fit that a warm start certifies takes no BM step, and a torch optimizer's first
        construction in a process imports torch._dynamo (measured 2.0 s of the 3.9 s of
        the n = 2000 spiral with logistic and (l2, l1); docs/performance.md)."""
        if self._method is None:
            self._method = METHODS[self.method_name](self, self.lr)
        return self._method

    @method.setter
    def method(self, value):
        self._method = value

    # -- what the methods call ----------------------------------------------------------------
    def objective(self, U, V, arrays=None, scale=1.0, idx=None):
        """Training objective: scale * F + regularizer (+ the augmented-Lagrangian term)."""
        f = self.problem.objective(U, V, arrays, scale)
        if self.al is not None:
            lam = None if idx is None else self.al.lam.index_select(
                2 + self.spec["mask_axis"], idx)
            f = f + scale * self.al.penalty(self.problem.slack(U, arrays), lam)
        return f

    def next_batch(self):
        """(arrays, scale n/|B|, sample indices or None, last batch of the epoch?)."""
        if self.batch_size is None:
            return self.problem.arrays, 1.0, None, True
        n = self.problem.n
        if self.perm is None or self.pos >= n:
            self.perm, self.pos = torch.randperm(n, generator=self.batch_gen), 0
        idx = self.perm[self.pos:self.pos + self.batch_size].to(self.device)
        self.pos += self.batch_size
        return self.problem.batch(idx), n / idx.numel(), idx, self.pos >= n

    # -- public -------------------------------------------------------------------------------
    def fit(self, max_steps=None, *, epochs=None, tol=1e-12, cert_tol=None,
            certificate_every=None, callback=None, resume=None, time_limit=None,
            certify=True) -> TrainResult:
        """Train; see fitloop.run_fit. max_steps (or epochs) defaults by method.
        A NaN or infinite objective or factor, or a numerical breakdown, raises
        TrainingFailed (a SolverError; health.py); cert_tol not reached is reported by
        result.cert_tol_reached = False and result.status."""
        check_arguments(max_steps=max_steps, epochs=epochs, tol=tol, cert_tol=cert_tol,
                        certificate_every=certificate_every, time_limit=time_limit)
        if max_steps is None:
            max_steps = (epochs * self.batches_per_epoch if epochs is not None
                         else METHODS[self.method_name].max_steps)
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and self._work_per_step() < SMALL_WORK:
            # Measured: a small step on 2 threads of a busy 2-core machine ran 77x slower
            # than on 1 (OpenMP workers spin on each other); small steps gain nothing from
            # threads anyway. Restored afterwards: the setting is process-wide.
            torch.set_num_threads(1)
        try:
            # numpy's BLAS (the certificates' products) with as many threads as torch: its
            # workers spin on each other on a busy machine as torch's do (measured: the
            # n = 2000 self-attention certificates 1.2-1.7 s with 2 BLAS threads, 0.7-0.8 s
            # with 1, at load average 3)
            with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
                result = run_fit(self, int(max_steps), tol=tol, cert_tol=cert_tol,
                                 every=certificate_every if certificate_every is not None
                                 else self.certificate_every,
                                 callback=callback, resume=resume, time_limit=time_limit,
                                 certify=certify)
            result.cert_tol = cert_tol
            return result
        finally:
            torch.set_num_threads(threads)

    def _work_per_step(self) -> int:
        """Entries touched by one step: pre-activations of all units times p + q, or with
        the Gram path (which never touches the samples) G and the dense Hessian."""
        pb = self.problem
        if pb.gram is not None:
            return (pb.P * pb.p * pb.q) ** 2 + (pb.P * self.m * (pb.p + pb.q)) ** 2
        return math.prod(pb.a_shape) * pb.P * self.m * (pb.p + pb.q)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """U, V as float64 numpy arrays."""
        return (self.U.detach().cpu().double().numpy().copy(),
                self.V.detach().cpu().double().numpy().copy())

    def output_bias(self):
        """b* [c], the best free output offset at the current factors, for a model with
        `bias output` (offset.py); None without one."""
        F = self.problem.F
        if not hasattr(F, "offset"):
            return None
        with torch.no_grad():
            return F.offset(self.problem.predict(self.U, self.V), self.problem.Y).cpu().numpy()

    def network(self, prune=True):
        """The trained factors as an ordinary torch.nn.Module (see network.py); prune=True
        drops exactly-zero units, prune=False keeps all P m."""
        from .network import BMNetwork
        return BMNetwork.from_trainer(self, prune=prune)
