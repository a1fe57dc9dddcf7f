"""`ConvexSolution`: what a CVXPY solve returns, and its .npz file.

exactness "exact": `value` is p*, the optimum of the convex program for these patterns.
exactness "bracket": the exact program is NP-hard (ReLU with q > 1 and R != l1, or an
NP-hard (C, R) pair beyond the enumeration cap); `lower` <= p* <= `upper`, `value` is None
and `Z` is the solution of the upper (restricted) program: a feasible point whose
objective is `upper`. `note` says what was relaxed or restricted, in which direction.

Honesty: `status` is CVXPY's status as it is (for a bracket, the worst of its two
programs). Only `optimal` is a solution: "optimal_inaccurate" (the solver stopped early
or at reduced accuracy, e.g. SCS at its iteration limit) keeps the value the solver
reported in `value` / `lower` / `upper`, but `optimal` is False and `reason` says why;
any other status has no value and no Z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import DataError

OPTIMAL = ("optimal", "optimal_inaccurate")  # statuses with a point and a value
SOLVED = "optimal"                            # the only status that is a solution
NONZERO_TOL = 1e-6  # a pattern is used when ||Z_k||_F > NONZERO_TOL * max_k ||Z_k||_F


@dataclass
class ConvexSolution:
    status: str
    value: float | None
    Z: np.ndarray | None  # [P, p, q]
    solve_time: float  # wall-clock seconds of problem.solve (compilation + solver)
    exactness: str = "exact"  # "exact" (value is p*) or "bracket" (lower <= p* <= upper)
    lower: float | None = None
    upper: float | None = None
    note: str = ""
    patterns: object = None  # the bound's PatternSet (None for linear)
    model: str = ""
    solver: str = ""
    split: np.ndarray | None = None  # ReLU split [2, P, p, q]: Z_k = A_k - B_k, cones
    statuses: dict = field(default_factory=dict)  # per program side

    @property
    def optimal(self) -> bool:
        """A solution: every program solved to full accuracy with a finite value."""
        return (self.status == SOLVED and all(s == SOLVED for s in self.statuses.values())
                and all(v is not None and math.isfinite(v) for v in self._values()))

    ok = optimal  # the older name

    @property
    def reason(self) -> str:
        """Why this is not a solution ('' when it is)."""
        if self.optimal:
            return ""
        sides = {k: v for k, v in self.statuses.items() if v != SOLVED} or \
            {"exact" if self.exactness == "exact" else "upper": self.status}
        where = ", ".join(f"{v} ({k} program)" for k, v in sides.items())
        if all(v == "optimal_inaccurate" for v in sides.values()):
            return (f"{self.solver or 'the solver'} stopped at reduced accuracy: {where}; "
                    "its value is not certified to be p*")
        if all(v == SOLVED for v in sides.values()):
            return "the solver reported optimal but a value is not finite"
        return f"{self.solver or 'the solver'} found no solution: {where}"

    def _values(self):
        return [self.value] if self.exactness == "exact" else [self.lower, self.upper]

    @property
    def nonzero_units(self) -> int:
        """Number of patterns k whose block Z_k is not zero (relative to the largest)."""
        if self.Z is None:
            return 0
        norms = np.linalg.norm(self.Z.reshape(self.Z.shape[0], -1), axis=1)
        top = norms.max() if norms.size else 0.0
        return int(np.count_nonzero(norms > NONZERO_TOL * top)) if top > 0 else 0

    def describe(self) -> str:
        if self.optimal:
            if self.exactness == "bracket":
                return f"{self.lower:.10g} <= p* <= {self.upper:.10g}"
            return f"p* = {self.value:.10g}"
        if any(v is not None for v in self._values()):
            got = (f"objective {self.value:.10g}" if self.exactness == "exact" else
                   f"bounds {_g(self.lower)} .. {_g(self.upper)}")
            return f"no p*: {got} reported with status {self.status}"
        return f"no p*: status {self.status}"

    def to_dict(self) -> dict:
        """The numbers and statuses, JSON-ready (no arrays)."""
        return {"status": self.status, "optimal": self.optimal, "reason": self.reason,
                "statuses": dict(self.statuses), "exactness": self.exactness, "value": self.value,
                "lower": self.lower, "upper": self.upper, "solver": self.solver,
                "solve_time": self.solve_time, "note": self.note}

    # -- file ----------------------------------------------------------------------------
    def save(self, path) -> None:
        """npz (no pickles) with Z, value, status, exactness, bounds, note, model and patterns
        (PatternSet.to_npz_dict keys, so `PatternSet.from_npz_dict(np.load(path))` works)."""
        nan = lambda x: np.nan if x is None else float(x)  # noqa: E731
        out = {"Z": np.zeros(0) if self.Z is None else self.Z, "value": nan(self.value),
               "status": np.array(self.status), "exactness": np.array(self.exactness),
               "lower": nan(self.lower), "upper": nan(self.upper), "note": np.array(self.note),
               "model": np.array(self.model), "solver": np.array(self.solver),
               "solve_time": float(self.solve_time)}
        if self.split is not None:
            out["split"] = self.split
        if self.patterns is not None:
            out.update(self.patterns.to_npz_dict())
        try:
            np.savez(path, **out)
        except OSError as exc:
            raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path) -> "ConvexSolution":
        from ..derive.patterns import PatternSet
        try:
            with np.load(path, allow_pickle=False) as f:
                d = {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read solution file {path}: {exc}") from None
        if "exactness" not in d and "kind" in d:      # files written before the rename
            d["exactness"] = d["kind"]
        missing = [k for k in ("Z", "value", "status", "exactness") if k not in d]
        if missing:
            raise DataError(f"{path} is not a bmdsl solution (missing {', '.join(missing)})")
        num = lambda k: None if k not in d or math.isnan(float(d[k])) else float(d[k])  # noqa: E731
        return cls(status=str(d["status"]), value=num("value"),
                   Z=d["Z"] if d["Z"].size else None, solve_time=num("solve_time") or 0.0,
                   exactness=str(d["exactness"]), lower=num("lower"), upper=num("upper"),
                   note=str(d.get("note", "")), model=str(d.get("model", "")),
                   solver=str(d.get("solver", "")),
                   patterns=PatternSet.from_npz_dict(d) if "masks" in d else None,
                   split=d.get("split"))


def _g(x) -> str:
    return "?" if x is None else f"{x:.10g}"
