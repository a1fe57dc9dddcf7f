"""`TrainResult`: what `Trainer.fit` returns (the factors, the objective, why the fit
stopped, the certificate), apart from the trainer so that the fit loop can build one
without importing the trainer back."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainResult:
    """objective = p_BM in float64 at the returned factors (after the cones are restored)."""
    objective: float
    loss: float
    regularizer: float
    method: str
    steps: int
    seconds: float
    stopped: str                      # max_steps | tol | certificate | time_limit | stalled
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
    cert_tol: float | None = None     # the duality-gap bound asked for (fit's cert_tol)

    @property
    def cert_tol_reached(self) -> bool | None:
        """None without cert_tol; else whether the final certificate's duality-gap bound is
        <= cert_tol (False also when no final certificate was computed)."""
        if self.cert_tol is None:
            return None
        cert = self.certificate
        return cert is not None and math.isfinite(cert.gap_bound) and \
            cert.gap_bound <= self.cert_tol

    @property
    def status(self) -> str:
        """"cert_tol not reached" when a requested cert_tol was not met (the CLI exits 3),
        else "finished" (a finite result; `stopped` says why it ended). A fit that
        diverged returns no result at all: it raises TrainingFailed."""
        return "cert_tol not reached" if self.cert_tol_reached is False else "finished"

    def _repr_markdown_(self) -> str:
        """Jupyter: the result and its certificate as a table (eq. (20) and the Fenchel
        duality-gap bound, Sahiner et al. 2024)."""
        from ..derive.render import markdown_table
        cert, ws = self.certificate, self.warm_start
        rows = [("p_BM (objective)", f"{self.objective:.10g}"), ("loss + regularizer",
                                                       f"{self.loss:.6g} + {self.regularizer:.6g}"),
                ("method", (f"{ws['method']} warm start ({ws['iterations']} iterations), then "
                            if ws else "") + self.method),
                ("steps", f"{self.steps} in {self.seconds:.2f} s, stopped by {self.stopped}"),
                ("device", f"{self.device} ({self.dtype})")]
        if cert is not None:
            rows += [("duality-gap bound (p_BM - p*)/p* <=", cert.gap_bound),
                     ("Theorem 3.4 bound (20)", f"{cert.thm34_bound:.6g}" + (
                         "" if cert.thm34_applicable else " (not applicable: not stationary)"))]
        else:
            rows.append(("certificate", "not computed"))
        rows.append(("max cone violation (19)", self.violation))
        return markdown_table("BM training result", rows)

    def to_dict(self) -> dict:
        cert = self.certificate
        cert = None if cert is None else {
            k: _finite(getattr(cert, k, None)) for k in
            ("gap_bound", "thm34_bound", "thm34_applicable", "dual_value", "stationarity")}
        return {"objective": self.objective, "loss": self.loss,
                "regularizer": self.regularizer, "method": self.method, "steps": self.steps,
                "seconds": self.seconds, "stopped": self.stopped, "violation": self.violation,
                "violation_before_restoring": self.violation_before, "certificate": cert,
                "device": self.device, "dtype": self.dtype, "warm_start": self.warm_start,
                "status": self.status, "cert_tol": self.cert_tol,
                "cert_tol_reached": self.cert_tol_reached}


def _finite(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x
