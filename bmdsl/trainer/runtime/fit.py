"""Training without bmdsl: data from an .npz, the default method, and a command line.

`initial_factors` is also what bmdsl.trainer uses, so a stand-alone run with the same seed
starts where the trainer starts. Default method (docs/trainer.md): the Newton method of
newton.py when C = R = l2 and its dense Hessian is small, else L-BFGS (strong Wolfe)
with the augmented Lagrangian of cones.py for ReLU; where a warm start of warm.py
applies, it starts from that solver's solution (run to its tolerance), as the trainer's
default does, and returns it as it is when the solver needs no polish (interior.py).
"""
import argparse
import math
import sys
import time

import numpy as np
import torch

from .cones import AugmentedLagrangian, into_cones, max_violation, restore_cones
from ...kernel.masks import sample_gates, unique_masks
from ...kernel.npz import read_npz
from .data import derived
from .gram import gram_pays
from .newton import newton_iteration
from .problem import BMProblem
from .warm import warm_start_for

NEWTON_MAX_VARS = 6000
SPEC = None   # the emitted module defines the model's SPEC above this file


def initial_factors(problem, m, seed, scale=0.1, dtype=None, device=None):
    """U, V ~ N(0, scale^2) from a CPU generator (the same on every device), U then V;
    with cones, each u_kj is shifted into its cone along the pattern's gate."""
    gen = torch.Generator().manual_seed(int(seed))
    U = scale * torch.randn((problem.P, m) + problem.w1_shape, generator=gen, dtype=torch.float64)
    V = scale * torch.randn((problem.P, m) + problem.w2_shape, generator=gen, dtype=torch.float64)
    dtype, device = dtype or problem.Y.dtype, device or problem.Y.device
    U, V = U.to(device, dtype), V.to(device, dtype)
    if problem.cone:
        U = into_cones(problem, U) if problem.gates is not None else restore_cones(problem, U)
    return U, V


def _sizes(spec, arrays):
    sizes = dict(spec["sizes"])
    dims = dict(spec["inputs"])
    dims[spec["target"]] = spec["target_dims"]
    dims.update({p["tensor"]: p["dims"] for p in spec["patches"] + spec["pools"]})
    for name, names in dims.items():
        for dim, n in zip(names, np.shape(arrays[name])):
            if sizes.setdefault(dim, n) != n:
                raise ValueError(f"'{name}' has {dim} = {n}, but {dim} = {sizes[dim]} elsewhere")
    return {k: tuple(sizes[d] for d in v) for k, v in spec["dims"].items()}


def setup(spec, data, masks=None, gates=None, device="cpu", dtype=torch.float64):
    """BMProblem from a dict of arrays; masks/gates optional (else sampled as bmdsl does)."""
    names = [n for n, _ in spec["inputs"]] + [spec["target"]]
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"the data lacks {missing}; this model needs {names}")
    arrays = {n: np.asarray(data[n], dtype=np.float64) for n in names}
    t = arrays[spec["target"]]
    if t.ndim == len(spec["target_dims"]) - 1:
        arrays[spec["target"]] = t[..., None]
    arrays = derived(spec, arrays)
    shapes = _sizes(spec, arrays)
    to = lambda a: torch.as_tensor(np.array(a), dtype=dtype, device=device)  # noqa: E731
    used = {n for eq in ("layer", "output", "adjoint") for s in spec[eq] for n, _ in s[1]}
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
        A = bare.pre_activation(to(gates), batch=("k_",)).cpu().numpy()
        masks = (A >= 0).astype(np.float64)
        if spec["patterns"] not in (None, "exact") and not spec["gates"]:
            masks, kept = unique_masks(masks)
            gates = np.asarray(gates)[kept]
    return BMProblem(spec, tensors, to(masks), shapes, None if gates is None else to(gates))


def train(problem, m, steps=2000, seed=0, tol=1e-12, log=None):
    """Train with the default method; returns U, V, objective, steps taken."""
    U, V = initial_factors(problem, m, seed)
    f0 = float(problem.objective(U, V))
    if not math.isfinite(f0):
        raise FloatingPointError(f"the objective is {f0} at the initial factors: the data's "
                                 "scale overflows float64 in the loss (rescale the inputs "
                                 "and the target)")
    if problem.gram is None and gram_pays(problem, problem.Y.dtype, True):
        problem.use_gram()      # full batch, squared loss: steps independent of n (gram.py)
    warm = warm_start_for(problem, m)
    if warm is not None:        # a convex solver's solution, factored (warm.py)
        try:
            done = warm.run(warm.MAX_ITER)
        except FloatingPointError as exc:   # it only accelerates: BM from random factors
            print(f"warning: warm start failed, training from the initial factors: {exc}",
                  file=sys.stderr)
            warm = None
    if warm is not None:
        Uw, Vw = warm.factors(m)
        U, V = Uw.reshape(U.shape), Vw.reshape(V.shape)
        if done and not warm.POLISH:      # already a BM optimum
            return U, V, float(problem.objective(U, V)), 0
    newton = (problem.C, problem.R) == ("l2", "l2") and \
        problem.P * m * (problem.p + problem.q) <= NEWTON_MAX_VARS
    if newton:
        mu, last, calm, step = 1e-3, None, 0, 0      # (step: --steps 0 takes none)
        for step in range(1, steps + 1):
            U, V, f, mu, _ = newton_iteration(problem, U, V, problem.objective, mu)
            calm = calm + 1 if last is not None and abs(last - f) <= tol * max(1.0, abs(f)) else 0
            last = f
            if log:
                log(step, f)
            if calm >= 5:
                break
        return U, V, float(problem.objective(U, V)), step
    U.requires_grad_(True)
    V.requires_grad_(True)
    al = AugmentedLagrangian((problem.P, m) + problem.a_shape, U.dtype, U.device,
                             rho_max=1e3) if problem.cone else None   # as the trainer's lbfgs
    opt = torch.optim.LBFGS([U, V], max_iter=10, history_size=50, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)

    def closure():
        opt.zero_grad()
        f = problem.objective(U, V)
        if al is not None:
            f = f + al.penalty(problem.slack(U))
        f.backward()
        return f
    for step in range(1, steps + 1):
        f = float(opt.step(closure).detach())
        if al is not None and step % 5 == 0:
            al.update(problem.slack(U.detach()))
            opt.state.clear()
        if log:
            log(step, f)
    U = U.detach()
    if problem.cone:
        U = into_cones(problem, U) if problem.gates is not None else restore_cones(problem, U)
    return U, V.detach(), float(problem.objective(U, V.detach())), steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=f"Train the BM factorization of model "
                                     f"{SPEC['model']} (generated by bmdsl).")
    parser.add_argument("data", help=".npz with the arrays " + ", ".join(
        [n for n, _ in SPEC["inputs"]] + [SPEC["target"]]))
    parser.add_argument("--masks", help=".npz with 'masks' [P, ...] and/or 'gates' [P, ...]")
    parser.add_argument("--m", type=int, default=SPEC["units"], help="units per pattern")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", help="write U, V (and masks) to this .npz")
    args = parser.parse_args(argv)
    data = read_npz(args.data)
    found = read_npz(args.masks, "masks", ("masks", "gates")) if args.masks else {}
    masks, gates = found.get("masks"), found.get("gates")
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    problem = setup(SPEC, data, masks, gates, args.device, dtype)
    start = time.perf_counter()
    try:
        U, V, f, steps = train(problem, args.m, args.steps, args.seed)
    except (FloatingPointError, torch.linalg.LinAlgError) as exc:   # a breakdown, its cause
        print(f"error: training failed: {exc}", file=sys.stderr)
        return 3
    if not math.isfinite(f):                  # not a solution: nothing is saved
        print(f"error: training failed: the objective is {f} (diverged, or the data's scale "
              "overflows float64: rescale the inputs and the target)", file=sys.stderr)
        return 3
    print(f"objective {f!r}")
    print(f"steps {steps}  seconds {time.perf_counter() - start:.2f}  patterns {problem.P}")
    if problem.cone:
        print(f"cone violation {max_violation(problem, U)!r}")
    if args.output:
        out = {"U": U.cpu().numpy(), "V": V.cpu().numpy()}
        if problem.D is not None:
            out["masks"] = problem.D.cpu().numpy()
        if problem.gates is not None:     # predict.py rebuilds gated units' masks from them
            out["gates"] = problem.gates.cpu().numpy()
        if hasattr(problem.F, "offset"):  # the free output bias b* (offset.py)
            with torch.no_grad():
                out["b2"] = problem.F.offset(problem.predict(U, V), problem.Y).cpu().numpy()
        np.savez(args.output, **out)
    return 0
