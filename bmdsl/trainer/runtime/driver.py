"""The stand-alone module's one entry point (emit.py pastes it, not in MODULES).

    python <model>_torch.py DATA.npz [--masks M.npz] [--steps N] [--output OUT.npz] [--force]
    python <model>_torch.py predict WEIGHTS NEW.npz [--output PRED.npz] [--force]

Training is fit.py's `train` (the warm start and the BM method of policy.py's table as
bmdsl's trainer runs them); `predict` is predict.py's; --output follows bmdsl's output
rule (outputs.py), checked before any work. A bad file or bad data ends with
"error: ..." and exit 1, a method this module cannot train with exit 2, a training that
breaks down or diverges exit 3.
"""
import argparse
import math
import sys
import time

import numpy as np
import torch

from ...kernel.npz import read_npz
from .cones import max_violation
from .fit import setup, train
from .offset import has_output_bias
from .outputs import refuse_unsafe_output
from .policy import AUTO, METHODS, MethodRefused
from .predict import predict

SPEC = None   # the emitted module defines the model's SPEC above this file


def _fail(message, code):
    print(f"error: {message}", file=sys.stderr)
    return code


def _recompile(names):
    return f"`bmdsl compile {SPEC['model']}.bm --methods {','.join([*METHODS, *names])}`"


def not_carried(name):
    """Why this module cannot train with method `name` (None: it can try): left out when
    it was compiled (and the command that adds it), never applies to the model, unknown."""
    carried = ", ".join(METHODS)
    if name in SPEC["methods"]["never"]:
        return f"method {name!r} does not apply here: {SPEC['methods']['never'][name]}"
    if name in SPEC["methods"]["left_out"]:
        return (f"this module carries the method(s) {carried}; {name!r} was left out when "
                f"it was compiled: {_recompile([name])} (or --methods all) adds it")
    return None if name in ("auto", *METHODS) else \
        f"unknown method {name!r}; this module carries: auto, {carried}"


def _train(args):
    found = read_npz(args.masks, "masks", ("masks", "gates")) if args.masks else {}
    problem = setup(SPEC, read_npz(args.data), found.get("masks"), found.get("gates"),
                    args.device, getattr(torch, args.dtype))
    start = time.perf_counter()
    try:
        U, V, f, steps = train(problem, args.m, args.steps, args.seed, method=args.method)
    except MethodRefused as exc:              # a method named that does not apply: why
        left = SPEC["methods"]["left_out"]
        return _fail(f"{exc}" + (f"\n  hint: this module leaves out {', '.join(left)}; "
                                 f"{_recompile(left)} adds them" if left else ""), 2)
    except (FloatingPointError, torch.linalg.LinAlgError) as exc:   # a breakdown, its cause
        return _fail(f"training failed: {exc}", 3)
    if not math.isfinite(f):                  # not a solution: nothing is saved
        return _fail(f"training failed: the objective is {f} (diverged, or the data's scale "
                     "overflows float64: rescale the inputs and the target)", 3)
    print(f"objective {f!r}")
    print(f"steps {steps}  seconds {time.perf_counter() - start:.2f}  patterns {problem.P}")
    if problem.cone:
        print(f"cone violation {max_violation(problem, U)!r}")
    if args.output:
        out = {"U": U, "V": V, "masks": problem.D, "gates": problem.gates}
        if has_output_bias(SPEC):         # the free output bias b* (offset.py)
            with torch.no_grad():
                out["b2"] = problem.F.offset(problem.predict(U, V), problem.Y)
        np.savez(args.output, **{k: v.cpu().numpy() for k, v in out.items() if v is not None})
    return 0


def _predict(args):
    Yhat, name = predict(SPEC, args.weights, args.data), SPEC.get("output_name", "Yhat")
    if args.output:
        np.savez(args.output, **{name: Yhat})
        print(f"predictions {len(Yhat)} -> {args.output} ({name})")
    for row in () if args.output else Yhat.reshape(len(Yhat), -1):
        print(",".join(f"{x:.10g}" for x in row))
    return 0


def main(argv=None):
    """Train, or predict with `predict` first; the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    predicting = argv[:1] == ["predict"]
    parser = argparse.ArgumentParser(prog=f"{SPEC['model']}_torch.py" + " predict" * predicting,
                                     description=__doc__.split("\n")[0])   # the module's
    add, inputs = parser.add_argument, ", ".join(n for n, _ in SPEC["inputs"])
    if predicting:
        add("weights", help=".npz of U, V (and gates), or a network saved with net.save()")
        add("data", help=f".npz with the input arrays {inputs}")
        add("--output", help="write the predictions to this .npz (default: print them)")
    else:
        add("data", help=f".npz with the arrays {inputs}, {SPEC['target']}")
        add("--masks", help=".npz with 'masks' [P, ...] and/or 'gates' [P, ...]")
        add("--m", type=int, default=SPEC["units"], help="units per pattern")
        add("--steps", type=int, default=2000)
        add("--method", default="auto", help=f"auto (the first of "
            f"{[a for a in AUTO if a in METHODS]} that applies) or one of {[*METHODS]}")
        add("--seed", type=int, default=0)
        add("--dtype", choices=["float32", "float64"], default="float64")
        add("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        add("--output", help="write U, V (and masks) to this .npz")
    add("--force", action="store_true", help="replace an existing --output file")
    args = parser.parse_args(argv[predicting:])
    why = None if predicting else not_carried(args.method) or args.m < 1 and "--m must be >= 1" \
        or args.device != "cpu" and not torch.cuda.is_available() and "no GPU here: --device cpu"
    if why:                                   # a method left out, a value out of range
        return _fail(why, 2)
    if args.output:                           # bmdsl's output rule, before any work
        refuse_unsafe_output(args.output, [args.data, getattr(args, "masks", None),
                                           getattr(args, "weights", None)], args.force)
    try:
        return _predict(args) if predicting else _train(args)
    except (ValueError, TypeError, OSError) as exc:   # a bad file, bad data, a full disk
        return _fail(exc, 1)
