"""Which BM methods and warm starts an emitted trainer carries (`bmdsl compile --methods`).

An entry can be carried only where its `accepts` can hold for some data of the model: it
is asked on the most favourable problem of the model's SPEC (`favourable`: every free size
1, one pattern, float64, the full batch, gates where the model has patterns, the Gram path
on where its loss has one), so what refuses there refuses on every data set, by the model's static facts alone
(cones or not, the loss, the norm pair, an output bias, ...). Of those, the selection
(SELECTIONS) picks: `auto` one method, the first applicable of policy.AUTO that accepts
even the least favourable data (`unfavourable`: so the stand-alone `auto` trains wherever
bmdsl's does; it polishes the warm start's factors, where lbfgs ends where newton does:
docs/architecture.md, "Emitted modules") and the applicable warm starts of warm.WARM_STARTS
in its order through the first that accepts `moderate` data (as bmdsl falls through them
at run time: the prox ADMM refuses where |y| < P p q, the lifted FISTA takes over; only
the first where none does, e.g. the cone interior point, which needs a scalar output);
`all` every applicable entry; or names, comma-separated.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.errors import SemanticError
from ..core.literals import Prose
from .runtime.gram import gram_pays
from .runtime.policy import AUTO, METHODS
from .runtime.problem import BMProblem
from .runtime.warm import WARM_STARTS

SELECTIONS = ("auto", "all")      # or NAME,NAME of METHODS and warm starts
UNITS = (1, 2)                    # units per pattern asked: some entries need m >= 2


def _warm_starts() -> dict:
    return {start.name: start for start in WARM_STARTS}


def _problem(spec, size, patterns, dtype, gram) -> BMProblem:
    """The model's BM problem with every free size `size` (the fixed ones kept), zeros
    that take no memory (expanded views: `accepts` reads shapes and dtypes only)."""
    sizes = dict(spec["sizes"])
    shapes = {k: tuple(sizes.get(d, size) for d in dims) for k, dims in spec["dims"].items()}
    z = lambda shape: torch.zeros((), dtype=dtype).expand(shape)  # noqa: E731
    D = z((patterns,) + shapes["a"]) if spec["masked"] else None
    gates = z((patterns,) + shapes["w1"]) if spec["masked"] else None
    problem = BMProblem(spec, {spec["target"]: z(shapes["y"])}, D, shapes, gates)
    problem.gram = gram       # accepts ask whether the Gram path is on, never more
    return problem


def favourable(spec) -> BMProblem:
    """The most favourable data: sizes 1, one pattern, float64, the Gram path on where
    the model's loss has one (gram.gram_pays: the plain squared loss)."""
    problem = _problem(spec, 1, 1, torch.float64, None)
    problem.gram = True if gram_pays(problem, torch.float64, True) else None
    return problem


def moderate(spec) -> BMProblem:
    """Small but not degenerate data: free sizes 3 (a vector output where the model's is
    free), 4 patterns, float64, the Gram path on where the loss has one."""
    problem = _problem(spec, 3, 4, torch.float64, None)
    problem.gram = True if gram_pays(problem, torch.float64, True) else None
    return problem


def unfavourable(spec) -> BMProblem:
    """Data no size limit allows: sizes 10^4, 10^3 patterns, float32, no Gram path."""
    return _problem(spec, 10_000, 1_000, torch.float32, None)


def refusal(entry, problem) -> str | None:
    """None if `entry` accepts the problem for some m of UNITS, else its reasons."""
    reasons = []
    for m in UNITS:
        try:
            why = entry.accepts(problem, m)
        except (AttributeError, TypeError, ValueError, RuntimeError):
            return None       # it asks the data more than shapes: it may apply, carry it
        if why is None:
            return None
        reasons.append(why)
    return reasons[-1]


def _accepts(entry, problem, m) -> bool:
    try:
        return entry.accepts(problem, m) is None
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return False          # undecided on these data: not a fallback for every data


@dataclass(frozen=True)
class Selection:
    methods: tuple          # names of policy.METHODS carried, in table order
    warm: tuple             # names of the warm starts carried
    never: dict             # name -> why it never applies to this model (left out)
    choice: str             # the --methods text that selects this

    def excluded(self) -> set:
        """Class names the emitted module leaves out of its tables."""
        left = [c for n, c in METHODS.items() if n not in self.methods]
        left += [c for n, c in _warm_starts().items() if n not in self.warm]
        return {c.__name__ for c in left}


def select(spec, choice: str = "auto") -> Selection:
    """The methods and warm starts carried for `choice` (SELECTIONS, or names)."""
    problem = favourable(spec)
    warm = _warm_starts()
    never = {n: why for n, e in {**METHODS, **warm}.items()
             if (why := refusal(e, problem)) is not None}
    methods = [n for n in METHODS if n not in never]
    starts = [n for n in warm if n not in never]
    choice = (choice or "auto").strip()
    if choice == "all":
        return Selection(tuple(methods), tuple(starts), never, choice)
    if choice == "auto":      # of bmdsl's order, the first that accepts any data
        worst = unfavourable(spec)
        order = [n for n in AUTO if n in methods]
        order = [next((n for n in order if all(_accepts(METHODS[n], worst, m)
                                               for m in UNITS + (1000,))), order[-1])]
        middle, carried = moderate(spec), []
        for name in starts:       # bmdsl's order, through the first that accepts moderate data
            carried.append(name)
            if all(_accepts(warm[name], middle, m) for m in UNITS):
                break
        else:
            carried = starts[:1]
        return Selection(tuple(n for n in METHODS if n in order), tuple(carried), never,
                         choice)
    names = [n.strip() for n in choice.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS and n not in warm]
    if unknown or not names:
        raise SemanticError(f"--methods {choice!r}: " + (f"unknown name(s) {', '.join(unknown)}"
                                                         if unknown else "no names given"),
                            hint=f"choose {', '.join(SELECTIONS)} or names of methods "
                                 f"({', '.join(METHODS)}) and warm starts "
                                 f"({', '.join(warm)}), comma-separated")
    bad = [f"{n}: {never[n]}" for n in names if n in never]
    if bad:
        raise SemanticError(f"--methods: never applies to model {spec['model']}: " +
                            "; ".join(bad),
                            hint=f"applicable here: {', '.join(methods + starts)}")
    if not any(n in METHODS for n in names):
        raise SemanticError(f"--methods {choice!r} names no BM method",
                            hint=f"add one of {', '.join(methods)}")
    return Selection(tuple(n for n in METHODS if n in names),
                     tuple(n for n in warm if n in names), never, ",".join(names))


def spec_entry(selection: Selection) -> dict:
    """What the emitted SPEC says of the selection (runtime/fit.py reads it): the methods
    carried, those left out, and for the ones that never apply to the model, why."""
    return {"carried": selection.methods, "warm": selection.warm,
            "left_out": tuple(n for n in METHODS if n not in selection.methods),
            "never": {n: Prose(" ".join(w.split())) for n, w in selection.never.items()
                      if n in METHODS}}
