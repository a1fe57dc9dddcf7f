"""The CVXPY program's footprint and its lowering plan: the dense operator L_k, or the
sparse one built from the lifted network (cvx/structured.py), with the nuclear norm's PSD
blocks; `cvxpy_plan` picks the smaller (docs/cvxpy.md, "How the program is lowered")."""
from __future__ import annotations

import math

from .footprint import F64, dims_text
from .memory import Estimate

# Solving an MLP program (P = 100, n = 600): peak RSS 7.8x the dense operator [P, |y|, p q]
# (the operator, its stacked copy, CVXPY's canonical matrices, the solver's KKT system).
CVXPY_COPIES = 8


# -- the program ---------------------------------------------------------------
def operator(P: int, ny: int, pq: int) -> Estimate:
    """BoundModel.operator: L_k of the basis of p x q [pq, P, |y|] and its transpose, with the
    basis [pq, pq] itself."""
    return Estimate(f"the dense operator L_k {dims_text((P, ny, pq))}",
                    (2 * int(P) * int(ny) * int(pq) + int(pq) ** 2) * F64,
                    "fewer patterns or fewer samples; the trainer never builds L_k")


# The structured lowering (cvx/structured.py): L built sparse, never dense. What a solve
# adds per non-zero of the bound `BoundModel.operator_nnz` (CVXPY's canonical matrices,
# Clarabel's copy, its KKT system), besides the KKT factor's triangles below: fitted with
# them to the digits CNN (P = 16) at n = 100, 200, every loss; predicted / measured 1.04
# at n = 400 and 1.10 at n = 1797 (squared); docs/performance.md, "The CVXPY program's memory".
STRUCTURED_BYTES_PER_NNZ = 95
# The nuclear norm's PSD blocks: an interior point keeps each block's scaling as a dense
# [d, d] block (d = s (s+1) / 2 for an s-square block) in its KKT system, with its factor.
PSD_KKT_COPIES = 3
# One (p+q)-square block per pattern is CVXPY's normNuc; above this many KKT entries per
# pattern (64 MB; p + q >= 76) the column form (max(p, q) blocks of side min(p, q) + 1) is
# used when smaller (with it, a layerwise stage's CVXPY optimum came out 4.5e-8 below the
# trainer's certified objective at Clarabel's default tolerances: kept for large blocks).
NUCLEAR_COLUMN_ABOVE = 8_000_000
# The solver's KKT factor (Clarabel's LDL), fitted to the digits CNN's measured peaks at
# n = 100, 200 (bench/fit_cvx_memory.py; docs/performance.md, "The CVXPY program's memory").
# Z side: every sample's rows of one output touch all of that output's columns of Z, so the
# factor holds c dense triangles [P p q / c] (KKT_Z_BYTES per entry, n-independent). Rows
# side: the loss's CVXPY form, declared by its registry entry (`Loss.cvxpy_size`: rows and
# auxiliary variables per entry of Yhat and per sample), LOSS_BYTES_PER_ROW per canonical
# row or variable; the rows of one output share Z's columns, so for a loss that is a sum
# over entries the factor holds c triangles [n, n]; a per-sample variable (log-sum-exp's
# epigraph variable) joins the sample's c outputs into one triangle [|y|, |y|], c times
# the entries (KKT_FILL_BYTES per entry; the rows side is capped by the Z side's size).
KKT_Z_BYTES = 16
LOSS_BYTES_PER_ROW = 700
KKT_FILL_BYTES = 25
# A loss that declares no size (e.g. one registered at test time) is charged the largest
# built-in declaration in each place (tests/test_memory_loss.py checks it stays so).
LOSS_DEFAULT = (7, 3, 1, 1)
LOWER_CVXPY = ("fewer patterns (--patterns) or fewer samples; or the BM trainer alone "
               "(bmdsl train), which never builds L_k")


def _svec(side: int) -> int:
    return side * (side + 1) // 2


def nuclear_blocks(p: int, q: int, form: str = "auto") -> tuple[str, int, int]:
    """(form, PSD blocks per pattern, their side) of the nuclear norm of Z [p, q]: "full"
    (CVXPY's normNuc, one (p+q)-square block) or "column" (cvx/structured.column_nuclear);
    "auto" takes the column form when the full block's KKT entries exceed
    NUCLEAR_COLUMN_ABOVE and the column form's are fewer."""
    p, q = int(p), int(q)
    full = ("full", 1, p + q)
    column = ("column", max(p, q), min(p, q) + 1)
    if form == "full":
        return full
    if form == "column":
        return column
    entries = lambda f: f[1] * _svec(f[2]) ** 2   # noqa: E731
    return column if entries(full) > NUCLEAR_COLUMN_ABOVE and \
        entries(column) < entries(full) else full


def loss_program(ny: int, outputs: int, lifted: int, size=None) -> tuple[int, str]:
    """(bytes, text) the loss's CVXPY form adds to the program: `size` = (rows per entry,
    variables per entry, rows per sample, variables per sample) of its canonical form (the
    entry's `cvxpy_size`; None: LOSS_DEFAULT) for |y| = `ny` entries in rows of `outputs`,
    with Z of `lifted` = P p q entries (see LOSS_BYTES_PER_ROW and KKT_FILL_BYTES)."""
    declared = size is not None
    rows_e, vars_e, rows_s, vars_s = (int(v) for v in (size if declared else LOSS_DEFAULT))
    ny, outputs, lifted = int(ny), max(int(outputs), 1), int(lifted)
    samples = -(-ny // outputs)
    rows = (rows_e + vars_e) * ny + (rows_s + vars_s) * samples
    blocks, side = (1, min(ny, lifted)) if vars_s else \
        (outputs, min(samples, -(-lifted // outputs)))
    fill = blocks * side * (side + 1) // 2
    nbytes = LOSS_BYTES_PER_ROW * rows + KKT_FILL_BYTES * fill
    text = (f"the loss's {rows} canonical rows and variables, its KKT factor "
            + (f"[{side}, {side}] (a variable per sample couples the outputs)" if vars_s
               else f"{blocks} x [{side}, {side}]")
            + ("" if declared else " (the loss declares no size: a conservative default)"))
    return nbytes, text


def cvxpy_program(P: int, ny: int, p: int, q: int, cone_rows: int | None,
                  nnz: int | None = None, nuclear: str | None = None, loss_size=None,
                  outputs: int = 1) -> Estimate:
    """cvx/problem.py, the dense lowering: the dense operator L_k [P, |y|, p q]
    (BoundModel.operator, built whole, then stacked), CVXPY's copies of it and the
    solver's. With `nnz` (a bound on L's non-zeros, BoundModel.operator_nnz) the structured
    lowering instead: L sparse (cvx/structured.py), STRUCTURED_BYTES_PER_NNZ per non-zero;
    the smaller of the two is what `cvxpy_plan` picks. `nuclear` ("full" / "column"): the
    nuclear norm's PSD blocks in the KKT system (C = R = l2 without cones). For ReLU the
    cone constraints K_k A >= 0, K_k B >= 0: 2 N p q canonical non-zeros per pattern. The
    loss's form (`loss_program`): `loss_size` (its entry's `cvxpy_size`; None: the
    conservative default) on rows of `outputs` entries."""
    return cvxpy_plan(P, ny, p, q, cone_rows, nnz, nuclear, "auto", loss_size, outputs)[1]


def cvxpy_plan(P, ny, p, q, cone_rows, nnz=None, nuclear=None, lowering="auto",
               loss_size=None, outputs=1):
    """("dense" or "structured", Estimate): the lowering with the smaller estimate (or the
    one `lowering` names), see `cvxpy_program`; `loss_size` and `outputs` (the class axis)
    add the loss's own form (`loss_program`) and the KKT factor's Z side, the same for
    either lowering."""
    P, ny, p, q = int(P), int(ny), int(p), int(q)
    loss_bytes, loss_text = loss_program(ny, outputs, P * p * q, loss_size)
    z_side = max(int(outputs), 1) * _svec(-(-P * p * q // max(int(outputs), 1)))
    kkt = loss_bytes + KKT_Z_BYTES * z_side
    dense = CVXPY_COPIES * P * ny * p * q * F64 + kkt
    structured = None if nnz is None else STRUCTURED_BYTES_PER_NNZ * int(nnz) + kkt
    if lowering == "dense" or structured is None:
        path = "dense"
    elif lowering == "structured":
        path = "structured"
    else:
        path = "structured" if structured < dense else "dense"
    if path == "dense":
        what, nbytes = f"dense operator L_k {dims_text((P, ny, p * q))}", dense
    else:
        what, nbytes = (f"operator L {dims_text((ny, P * p * q))} sparse, at most {int(nnz)} "
                        "non-zeros"), structured
    if nuclear is not None:
        form, blocks, side = nuclear_blocks(p, q, nuclear)
        nbytes += PSD_KKT_COPIES * P * blocks * _svec(side) ** 2 * F64
        what += f", nuclear norm as {P * blocks} PSD blocks of side {side}"
    if cone_rows is not None:
        nbytes += STRUCTURED_BYTES_PER_NNZ * 2 * P * int(cone_rows) * p * q
        what += f", ReLU cones K_k {dims_text((P, cone_rows, p))} on {2 * P * q} columns"
    what += f", {loss_text}"
    return path, Estimate(f"the CVXPY program ({what})", nbytes, LOWER_CVXPY)


def cvxpy_for(bound, lowering: str = "auto", nuclear: str = "auto") -> Estimate:
    """`cvxpy_program` at a bound model's sizes (N cone rows = |a| for ReLU)."""
    return cvxpy_plan_for(bound, lowering, nuclear)[1]


def cvxpy_plan_for(bound, lowering: str = "auto", nuclear: str = "auto"):
    """`cvxpy_plan` at a bound model's sizes: ("dense" | "structured", Estimate)."""
    cone = math.prod(bound.a_shape) if bound.cone else None
    plain_nuclear = bound.euclidean and not bound.cone
    # the loss entry declares its CVXPY form's size; an entry without it gets LOSS_DEFAULT
    size = bound.loss.cvxpy_size
    outputs = bound.Y.shape[-1] if bound.Y.ndim > 1 else 1
    return cvxpy_plan(bound.P, bound.Y.size, bound.p, bound.q, cone,
                      bound.operator_nnz(), nuclear if plain_nuclear else None, lowering,
                      size, outputs)
