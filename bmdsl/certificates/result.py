"""`Certificate`: what was certified, by which bound, valid under which hypothesis."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .checks import TheoremCheck


# Weak duality gives d <= p* <= p, so (p - d)/d >= 0 up to the rounding of two sums over
# the data; below -ROUNDING the values themselves are wrong (e.g. a loss parameter so small
# that F underflows), and the certificate says so instead of printing a negative gap.
ROUNDING = 1e-9


def relative_gap(p: float, d: float) -> float:
    """(p - d) / d, the relative gap bound; +inf (vacuous) when d <= 0, except p = d: then
    d <= p* <= p pins p = p* (e.g. Z = 0 for an all-zero target, p* = 0), a gap of 0."""
    if d > 0:
        return (p - d) / d
    return 0.0 if p == d else math.inf


def gap_warnings(p: float, d: float) -> tuple[str, ...]:
    """A warning when p < d beyond rounding (impossible in exact arithmetic)."""
    gap = relative_gap(p, d)
    if math.isfinite(gap) and gap < -ROUNDING:
        return (f"the dual value d = {d:.6g} exceeds the objective p = {p:.6g} by "
                f"{-gap:.1e} (relative), beyond rounding: weak duality d <= p* <= p fails "
                "numerically, so these values are inaccurate and the bound is not to be "
                "trusted (check the scale of the data and of the loss's parameters)",)
    if not math.isfinite(p) or math.isnan(d):
        return (f"the objective p = {p} or the dual value d = {d} is not finite: the data's "
                "scale is out of float64's reach (rescale it)",)
    return ()


@dataclass(frozen=True)
class Certificate:
    """Optimality certificate of a point of the convex program (16) / its BM factorization.

    gap_bound >= (p - p*)/p* ALWAYS (Fenchel duality, any point); thm34_bound >= it only at
    a stationary point (Theorem 3.4, eq. (20)), hence reported beside the stationarity
    residual and flagged by thm34_applicable; thm34_any_point adds the non-stationarity
    term and holds at every point (docs/certificates.md)."""
    model: str
    activation: str
    point: str                     # "BM factors U [..], V [..]" or "lifted Z [..]"
    P: int
    beta: float
    objective: float               # p_BM (or the convex objective at Z)
    dual_value: float              # d = -F*(v) <= p*
    gap_bound: float               # (objective - d) / d; inf when d <= 0 and p != d (vacuous)
    dual_source: str
    plain_dual_value: float        # d from the plain scaled point (before improvements)
    plain_gap_bound: float
    refine_iterations: int
    refinement: str
    thm34_bound: float             # max_k (||G_k||_D* / beta - 1)_+, eq. (20)
    thm34_applicable: bool         # stationarity residual <= stationarity_tol
    thm34_any_point: float         # thm34_bound + max(delta, 0) / d, valid everywhere
    euler_residual: float          # delta / objective, delta = regularizer + <G, Z>
    stationarity: float            # relative residual (see stationarity.py)
    stationarity_kind: str
    stationarity_tol: float
    dual_norms: tuple[float, ...]  # ||G_k||_D* per pattern (exact or upper bound)
    dual_norm_kinds: tuple[str, ...]
    dual_norm_methods: tuple[str, ...]
    exact_or_bounded: str          # "exact" or "upper bound (n of P patterns)"
    cone_method: str | None        # the cone dual-norm method(s) used, None without cones
    cone_violation: float          # relative violation of the ReLU cones (19); 0 if none
    objective_kind: str            # how the objective was evaluated
    theorems: tuple[TheoremCheck, ...]
    scope: str
    warnings: tuple[str, ...] = ()     # values that cannot be right (gap_warnings)

    @property
    def vacuous(self) -> bool:
        return not math.isfinite(self.gap_bound)

    def to_dict(self) -> dict:
        """JSON-ready: non-finite numbers become None (with `vacuous` saying why)."""
        def clean(x):
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, (list, tuple)):
                return [clean(y) for y in x]
            if isinstance(x, dict):
                return {k: clean(y) for k, y in x.items()}
            return x
        d = clean(asdict(self))
        d["vacuous"] = self.vacuous
        return d

    def text(self) -> str:
        fmt = lambda x: "inf (vacuous: d <= 0)" if not math.isfinite(x) else f"{x:.3e}"  # noqa
        ratios = [n / self.beta for n in self.dual_norms]
        stat_ok = "<=" if self.thm34_applicable else ">"
        lines = [
            f"certificate for model {self.model} ({self.activation}, P = {self.P} "
            f"pattern{'s' if self.P != 1 else ''}, beta = {self.beta:g})",
            f"  point               {self.point}",
            f"  objective p         {self.objective:.10g}   ({self.objective_kind})",
            f"  dual value d        {self.dual_value:.10g}   (-F*(v) <= p*; v: {self.dual_source})",
            f"  duality-gap bound   (p - p*)/p* <= {fmt(self.gap_bound)}   [valid at every point]",
            f"    plain point only  {fmt(self.plain_gap_bound)}   "
            f"(d = {self.plain_dual_value:.10g})",
            f"    refinement        {self.refinement}",
            f"  Theorem 3.4 (20)    {fmt(self.thm34_bound)}   "
            + ("[applicable" if self.thm34_applicable else "[NOT applicable")
            + f": stationarity residual {self.stationarity:.2e} {stat_ok} "
            f"{self.stationarity_tol:g}]",
            f"    at any point      {fmt(self.thm34_any_point)}   (adds max(delta, 0)/d; "
            f"delta/p = {self.euler_residual:.2e})",
            f"    residual kind     {self.stationarity_kind}",
            f"  dual norms          max_k ||G_k||_D*/beta = {max(ratios):.6g} "
            f"(min {min(ratios):.3g}); {self.exact_or_bounded}; methods: "
            f"{', '.join(sorted(set(self.dual_norm_methods)))}",
        ]
        if self.cone_method is not None:
            lines.append(f"  ReLU cones          dual-norm method {self.cone_method}; "
                         f"cone violation {self.cone_violation:.2e}")
        lines.append("  theorems" + ("" if self.theorems else
                                     "            (none: Theorems 3.3, 3.5 concern BM factors)"))
        for t in self.theorems:
            lines.append(f"    {t.reference:<15} {t.status}: {t.detail}")
        lines.append(f"  scope               {self.scope}")
        lines += [f"  WARNING             {w}" for w in self.warnings]
        return "\n".join(lines)
