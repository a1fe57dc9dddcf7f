"""Training without bmdsl: the problem from arrays, a method of policy.py's table, the
warm start (driver.py is the stand-alone command line around it).

`initial_factors` is also what bmdsl.trainer uses, so a stand-alone run with the same seed
starts where the trainer starts. The method is chosen by the same table as the trainer's
(policy.choose; `auto`: newton where it accepts, else lbfgs) and takes the same steps,
with the augmented Lagrangian of cones.py for ReLU where the method does not keep the
cones itself; where a warm start of warm.py applies, it starts from that solver's solution
(run to its tolerance), as the trainer's default does, and returns it as it is when the
solver needs no polish (interior.py).
"""
import math
import sys
import time

import numpy as np
import torch

from .cones import AugmentedLagrangian, into_cones, restore_cones
from ...kernel.masks import sample_gates, unique_masks
from ...kernel.npz import numeric
from .data import derived
from .gram import gram_pays
from .policy import METHODS, choose
from .problem import BMProblem
from .warm import warm_start_for

PATIENCE = 5   # consecutive steps with relative change <= tol that end a run (as fitloop's)


def initial_factors(problem, m, seed, scale=0.1, dtype=None, device=None):
    """U, V ~ N(0, scale^2) from a CPU generator (the same on every device), U then V;
    with cones, each u_kj is shifted into its cone along the pattern's gate."""
    gen = torch.Generator().manual_seed(int(seed))
    U = scale * torch.randn((problem.P, m) + problem.w1_shape, generator=gen, dtype=torch.float64)
    V = scale * torch.randn((problem.P, m) + problem.w2_shape, generator=gen, dtype=torch.float64)
    U, V = (W.to(device or problem.Y.device, dtype or problem.Y.dtype) for W in (U, V))
    if problem.cone:
        U = into_cones(problem, U) if problem.gates is not None else restore_cones(problem, U)
    return U, V


def setup(spec, data, masks=None, gates=None, device="cpu", dtype=torch.float64):
    """BMProblem from a dict of arrays; masks/gates optional (else sampled as bmdsl does)."""
    dims = dict(spec["inputs"], **{spec["target"]: spec["target_dims"]})
    arrays = derived(spec, {n: numeric(data, n, d, n == spec["target"]) for n, d in dims.items()})
    dims.update({p["tensor"]: p["dims"] for p in spec["patches"] + spec["pools"]})
    sizes = dict(spec["sizes"])
    for name, names in dims.items():          # every size agrees across the arrays
        for dim, n in zip(names, np.shape(arrays[name])):
            if sizes.setdefault(dim, n) != n:
                raise ValueError(f"'{name}' has {dim} = {n}, but {dim} = {sizes[dim]} elsewhere")
    shapes = {k: tuple(sizes[d] for d in v) for k, v in spec["dims"].items()}
    if masks is not None and tuple(np.shape(masks)[1:]) != shapes["a"]:
        raise ValueError(f"masks {list(np.shape(masks))} do not fit [P, *{list(shapes['a'])}]")
    to = lambda a: torch.as_tensor(np.array(a), dtype=dtype, device=device)  # noqa: E731
    used = {n for s in spec["layer"] + spec["output"] + spec["adjoint"] for n, _ in s[1]}
    tensors = {k: to(v) for k, v in arrays.items() if k in used or k == spec["target"]}
    if not spec["masked"]:
        return BMProblem(spec, tensors, None, shapes)
    if masks is None:
        if gates is None and spec["gates"]:
            gates = np.asarray(data[spec["gates"]], dtype=np.float64)
        if gates is None and spec["patterns"] == "exact":
            raise ValueError("this model enumerates its patterns exactly: pass the masks and "
                             "gates saved by bmdsl (--masks FILE.npz)")
        if gates is None:
            gates = sample_gates(shapes["w1"], spec["patterns"], spec["seed"])
        bare = BMProblem(spec, tensors, None, shapes)
        masks = (bare.pre_activation(to(gates), batch=("k_",)).cpu().numpy() >= 0) * 1.0
        if spec["patterns"] not in (None, "exact") and not spec["gates"]:
            masks, kept = unique_masks(masks)
            gates = np.asarray(gates)[kept]
    return BMProblem(spec, tensors, to(masks), shapes, None if gates is None else to(gates))


class FullBatch:
    """A full-batch run as a method of steps.py / curvature.py steps it (bmdsl's Trainer is
    the other kind of run): the factors, the problem, and the objective with, for ReLU
    cones, the augmented Lagrangian of cones.py (unless the method keeps the cones itself:
    rho_max None)."""
    batches_per_epoch = 1

    def __init__(self, problem, U, V, method, lr=None):
        self.problem, self.U, self.V = problem, U.requires_grad_(True), V.requires_grad_(True)
        self.al = AugmentedLagrangian((problem.P, U.shape[1]) + problem.a_shape, U.dtype,
                                      U.device, rho_max=METHODS[method].rho_max) \
            if problem.cone and METHODS[method].rho_max is not None else None
        self.method = METHODS[method](self, lr)

    def objective(self, U, V, arrays=None, scale=1.0, idx=None):
        if self.al is None:
            return self.problem.objective(U, V, arrays, scale)
        return self.problem.objective(U, V, arrays, scale) + \
            scale * self.al.penalty(self.problem.slack(U, arrays))

    def next_batch(self):
        return self.problem.arrays, 1.0, None, True


def _warm(problem, m):
    """The warm start's factors, run to its tolerance (warm.py), and whether they need no
    polish; None where none applies or it broke down (it only accelerates)."""
    warm, done = warm_start_for(problem, m), False
    try:                # (a run may pause before MAX_ITER, for bmdsl to certify it)
        while warm is not None and not done and warm.iterations < warm.MAX_ITER:
            done = warm.run(warm.MAX_ITER - warm.iterations)
    except FloatingPointError as exc:
        print(f"warning: warm start failed, training from the initial factors: {exc}",
              file=sys.stderr)
        return None
    return None if warm is None else (*warm.factors(m), done and not warm.POLISH)


def train(problem, m, steps=2000, seed=0, tol=1e-12, method="auto"):
    """Train with `method` (policy.py; MethodRefused where it does not apply); returns U,
    V, objective, steps taken."""
    U, V = initial_factors(problem, m, seed)
    f0 = float(problem.objective(U, V))
    if not math.isfinite(f0):
        raise FloatingPointError(f"the objective is {f0} at the initial factors: the data's "
                                 "scale overflows float64 (rescale the inputs and the target)")
    if problem.gram is None and gram_pays(problem, problem.Y.dtype, True):
        problem.use_gram()      # full batch, squared loss: steps independent of n (gram.py)
    name = choose(method, problem, m)
    # as the trainer: the warm start for `auto` only (a method named is measured alone)
    warm = _warm(problem, m) if method == "auto" else None
    if warm is not None:        # a convex solver's solution, factored
        U, V = warm[0].reshape(U.shape), warm[1].reshape(V.shape)
        if warm[2]:             # already a BM optimum
            return U, V, float(problem.objective(U, V)), 0
    run = FullBatch(problem, U, V, name)
    last, calm, step = None, 0, 0          # (step: --steps 0 takes none)
    for step in range(1, steps + 1):
        f = run.method.step()
        if run.al is not None and (step % run.method.al_every == 0 or run.method.settled):
            run.al.update(problem.slack(run.U.detach()))
            run.method.reset()
        calm = calm + 1 if last is not None and abs(last - f) <= tol * max(1.0, abs(f)) else 0
        last = f
        if calm >= PATIENCE and (run.al is None or run.al.last_violation <= 1e-12):
            break
    U, V = run.U.detach(), run.V.detach()
    if problem.cone and run.al is not None:      # projected on the cones, as bmdsl's fitloop
        U = restore_cones(problem, U)
    return U, V, float(problem.objective(U, V)), step
