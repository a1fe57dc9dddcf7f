"""The warm starts: a convex solver of the lifted program whose solution, factored, starts
the BM method. One entry per solver, tried in the order of WARM_STARTS (the first that
accepts and starts wins); each declares where it applies (`accepts(problem, m)`: None, or
why not), its `name` (what `bmdsl compile --methods` selects it by) and `title`, how it is made (`of(problem)`: None if it cannot start there after
all), its chunk sizes for fit's certificates (FIRST_CHUNK, MAX_ITER), and whether the BM
method should polish its result (POLISH). lifted.py: the squared loss without cones (ADMM:
exact z-step, the D-norm's prox); pnewton.py: every other loss whose entry declares a
Hessian, no cones (proximal Newton, its steps solved by lifted.py's ADMM); proxadmm.py: every loss whose entry declares a prox,
no cones (ADMM split at the prediction u = L(Z)); interior.py: ReLU cones with a scalar output (an
interior-point method); proxgrad.py: every other loss (no prox, or too large for L^* L) and pair with a cheap prox, no cones
(accelerated proximal gradient). Where L's dense matrix does not fit, the first-order ones
apply L through its block over the free outputs (kronops.py: the prox ADMM then factors
G_F [N/c, N/c]); measured on the n = 2000 and digits CNNs with cross_entropy, the FISTA
through it beat the block prox ADMM and the majorization with Bohning's bound (their
refusals say where), so that order stands (docs/performance.md).
"""
from .interior import ConeInteriorPoint
from .lifted import LiftedADMM
from .majorize import LiftedMajorized
from .pnewton import LiftedProxNewton
from .proxadmm import LiftedProxADMM
from .proxgrad import LiftedFISTA

WARM_STARTS = (LiftedADMM, LiftedProxNewton, LiftedMajorized, LiftedProxADMM, ConeInteriorPoint,
               LiftedFISTA)


def warm_refusals(problem, m) -> str:
    """Why no warm start applies: each entry's reason, joined."""
    return "; ".join(f"{start.title}: {start.accepts(problem, m) or 'it could not start here'}"
                     for start in WARM_STARTS)


def warm_start_for(problem, m):
    """The first warm start that accepts this problem with m units per pattern and can
    start there, or None."""
    solvers = (start.of(problem) for start in WARM_STARTS if start.accepts(problem, m) is None)
    return next((solver for solver in solvers if solver is not None), None)
