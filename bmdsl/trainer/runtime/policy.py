"""Which BM method trains a problem: the table of methods and the order `auto` tries.

METHODS is the registry (name -> class of steps.py / curvature.py); AUTO is the order in
which `auto` asks them: the first whose `accepts(problem, m, full_batch)` is None trains.
A method named explicitly that does not accept is refused with its reasons. Adding a
method is one class (a subclass of steps.Method with `name`, `step` and, where it does not
apply everywhere, `refusals`) and one entry here. bmdsl's Trainer and the stand-alone
driver (fit.py) both choose through `choose`.

Why this order (docs/trainer.md, "The methods"): newton converges in the fewest steps
where its dense Hessian fits (C = R = l2); lbfgs is the general full-batch method (other
norm pairs, larger problems); adam trains mini-batches.
"""
from .curvature import ALS, Newton
from .steps import SGD, LBFGS, Adam, PrecGD

METHODS = {m.name: m for m in (Adam, SGD, LBFGS, ALS, PrecGD, Newton)}
AUTO = ("newton", "lbfgs", "adam")


class MethodRefused(ValueError):
    """A method that is unknown or does not apply; the message says why."""


def choose(name, problem, m, full_batch=True) -> str:
    """The method that trains `problem` with m units per pattern: for "auto" the first
    entry of AUTO that accepts it, else `name` itself if it accepts; MethodRefused with
    the reasons otherwise."""
    if name != "auto" and name not in METHODS:
        raise MethodRefused(f"unknown method {name!r}; accepted: auto, {', '.join(METHODS)}")
    reasons = []       # (an emitted module may leave out some of AUTO: emitmethods.py)
    for entry in [n for n in AUTO if n in METHODS] if name == "auto" else [name]:
        why = METHODS[entry].accepts(problem, m, full_batch)
        if why is None:
            return entry
        reasons.append(f"{entry}: {why}")
    raise MethodRefused(f"method {name!r} does not apply here: {why}" if name != "auto" else
                        "no method of the automatic order applies: " + "; ".join(reasons))
