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

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import TrainerError
from .fitloop import run_fit
from .methods import METHODS, resolve
from .runtime.cones import AugmentedLagrangian
from .runtime.fit import initial_factors
from .runtime.gram import GRAM_MAX_N, gram_pays
from .runtime.problem import BMProblem
from .runtime.warm import warm_start_for
from .spec import PLACEHOLDERS, build_spec, shapes

DTYPES = {"float32": torch.float32, "float64": torch.float64}
# steps between multiplier updates of the augmented Lagrangian (newton and als use none)
SMALL_WORK = 20_000_000  # below this, one thread per step (see Trainer.fit)
AL_EVERY = {"newton": 20, "lbfgs": 5, "precgd": 20, "als": 1, "adam": 20, "sgd": 20}
# the penalty's curvature rho |A|^2 must stay within reach of a fixed learning rate; for
# lbfgs, 1e3 instead of 1e6 (measured on two ReLU problems at n = 600, d = 20, 40 s:
# (p - p*)/p* 0.155 vs 0.548 and 0.130 vs 1.19; docs/performance.md)
RHO_MAX = {"lbfgs": 1e3, "precgd": 1e4, "adam": 1e3, "sgd": 1e3, "als": 1e6}
MAX_STEPS = {"newton": 10000, "lbfgs": 2000, "als": 5000, "precgd": 20000, "adam": 20000,
             "sgd": 20000}


@dataclass
class TrainResult:
    """objective = p_BM in float64 at the returned factors (after the cones are restored)."""
    objective: float
    loss: float
    regularizer: float
    method: str
    steps: int
    seconds: float
    stopped: str                      # max_steps | tol | certificate | time_limit
    violation: float | None           # max(0, -(2D_k - 1) * A(u_kj)) after restoring (ReLU)
    violation_before: float | None    # the same before the restoration
    certificate: object | None
    device: str
    dtype: str
    U: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    history: list = field(default_factory=list, repr=False)        # (step, value, seconds)
    certificates: list = field(default_factory=list, repr=False)   # (step, gap_bound)
    warm_start: dict | None = None    # the lifted ADMM's iterations, seconds, rho, residuals

    def to_dict(self) -> dict:
        cert = self.certificate
        cert = None if cert is None else {
            k: _finite(getattr(cert, k, None)) for k in
            ("gap_bound", "thm34_bound", "thm34_applicable", "dual_value", "stationarity")}
        return {"objective": self.objective, "loss": self.loss,
                "regularizer": self.regularizer, "method": self.method, "steps": self.steps,
                "seconds": self.seconds, "stopped": self.stopped, "violation": self.violation,
                "violation_before_restoring": self.violation_before, "certificate": cert,
                "device": self.device, "dtype": self.dtype, "warm_start": self.warm_start}


def _finite(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


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


class Trainer:
    def __init__(self, bound, device=None, dtype="float64", method="auto", m=None, seed=0, *,
                 lr=None, batch_size=None, init_scale=0.1, checkpoint=None,
                 checkpoint_every=None, progress=None, certificate_every=None, al_every=None,
                 gram="auto", warm_start="auto"):
        self.bound, self.device = bound, _device(device)
        if dtype not in DTYPES and dtype not in DTYPES.values():
            raise TrainerError(f"unknown dtype {dtype!r}; use float32 or float64")
        self.dtype = DTYPES.get(dtype, dtype)
        self.m, self.seed, self.lr = int(m or bound.m), int(seed), lr
        if self.m <= 0:
            raise TrainerError(f"the number of units m must be positive, not {m}")
        self.spec = build_spec(bound.derivation)
        self.problem = self._lower()
        n = self.problem.n
        if batch_size is not None and int(batch_size) <= 0:
            raise TrainerError(f"the batch size must be positive, not {batch_size}")
        self.batch_size = None if batch_size is None or int(batch_size) >= n else int(batch_size)
        self.batches_per_epoch = 1 if self.batch_size is None else -(-n // self.batch_size)
        if gram is True or (gram == "auto" and
                            gram_pays(self.problem, self.dtype, self.batch_size is None)):
            self.problem.use_gram()
        self.method_name = resolve(method, self.problem, self.m, self.batch_size is None)
        # "auto" stays off for a method asked for by name and for mini-batches (data that
        # is split is not given whole to a convex solver)
        off = warm_start == "auto" and (method != "auto" or self.batch_size is not None)
        self.warm = self._warm_start(False if off else warm_start)
        self.warm_info = None
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        self.progress, self.certificate_every = progress, certificate_every
        self.al_every = int(al_every or AL_EVERY[self.method_name])
        self._init_factors(init_scale)
        self.method = METHODS[self.method_name](self, lr)

    # -- set-up -----------------------------------------------------------------------------
    def _lower(self) -> BMProblem:
        b, spec = self.bound, self.spec
        names = {n for eq in ("layer", "output", "adjoint") for s in spec[eq] for n, _ in s[1]}
        names = (names - set(PLACEHOLDERS)) | {spec["target"]}
        to = lambda a: torch.as_tensor(np.array(a), dtype=self.dtype, device=self.device)  # noqa
        D = None if b.masks is None else to(b.masks)
        gates = None if b.patterns is None else to(b.patterns.gates)
        return BMProblem(spec, {k: to(b.arrays[k]) for k in names}, D, shapes(b), gates)

    def _warm_start(self, setting):
        """The convex warm start of runtime/warm.py, run by fit before the first BM step
        ("auto": wherever one applies, the method is "auto" and the batch is full -- a
        method asked for by name starts from random factors, as it always did; True:
        always, else an error; False: BM from the random factors alone)."""
        if setting not in ("auto", True, False):
            raise TrainerError(f"warm_start must be 'auto', True or False, not {setting!r}")
        if setting is False:
            return None
        warm = warm_start_for(self.problem, self.m)
        if warm is None and setting is True:
            raise TrainerError(
                "no warm start applies: the lifted ADMM needs the squared loss on the full "
                f"batch in float64 with C = R = l2, no ReLU cones and P p q <= {GRAM_MAX_N}; "
                "the cone interior point needs ReLU cones with a scalar output, the squared "
                "loss, C = l2, float64 and m >= 2; use warm_start='auto' or False")
        return warm

    def _init_factors(self, scale):
        """runtime.fit.initial_factors (seeded CPU generator; U projected into the cones)."""
        pb = self.problem
        U, V = initial_factors(pb, self.m, self.seed, scale, self.dtype, self.device)
        self.al = None   # Newton keeps the cones exactly; the other methods by the AL
        if pb.cone and self.method_name != "newton":
            self.al = AugmentedLagrangian((pb.P, self.m) + pb.a_shape, self.dtype, self.device,
                                          rho_max=RHO_MAX[self.method_name])
        self.U, self.V = U.requires_grad_(True), V.requires_grad_(True)
        self.batch_gen = torch.Generator().manual_seed(self.seed + 1)
        self.perm, self.pos = None, 0

    def config(self) -> dict:
        """What a checkpoint must share with this trainer to be resumed by it."""
        b = self.bound
        digest = hashlib.sha256(np.ascontiguousarray(b.Y).tobytes())
        if b.masks is not None:
            digest.update(np.ascontiguousarray(b.masks).tobytes())
        return {"model": b.model.name, "activation": b.activation.name, "P": b.P, "m": self.m,
                "w1_shape": list(b.w1_shape), "w2_shape": list(b.w2_shape),
                "method": self.method_name, "dtype": str(self.dtype).replace("torch.", ""),
                "seed": self.seed, "lr": self.lr, "batch_size": self.batch_size,
                "beta": b.beta, "C": b.C, "R": b.R, "loss": b.loss.name,
                "data_and_patterns": digest.hexdigest()}

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
        """Train; see fitloop.run_fit. max_steps (or epochs) defaults by method."""
        if max_steps is None:
            max_steps = (epochs * self.batches_per_epoch if epochs is not None
                         else MAX_STEPS[self.method_name])
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and self._work_per_step() < SMALL_WORK:
            # Measured: a small step on 2 threads of a busy 2-core machine ran 77x slower
            # than on 1 (OpenMP workers spin on each other); small steps gain nothing from
            # threads anyway. Restored afterwards: the setting is process-wide.
            torch.set_num_threads(1)
        try:
            return run_fit(self, int(max_steps), tol=tol, cert_tol=cert_tol,
                           every=certificate_every or self.certificate_every,
                           callback=callback, resume=resume, time_limit=time_limit,
                           certify=certify)
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

    def network(self):
        """The trained factors as an ordinary torch.nn.Module (see network.py)."""
        from .network import BMNetwork
        return BMNetwork.from_trainer(self)
