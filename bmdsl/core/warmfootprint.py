"""Memory footprints of the lifted warm starts (runtime/warm.WARM_STARTS), in bytes, from
sizes alone: the Gram matrix and its block over the free outputs, the lifted operators'
dense or block forms, and each solver's working arrays. One estimate per warm start
(WARM_STARTS, by class name); footprint.py has the trainer's own and the data's.
"""
from __future__ import annotations

import math

from .footprint import F64, dims_text
from .memory import Estimate

GRAM_CHUNK = 20_000_000   # runtime/gram.py: entries of one chunk of L's matrix
GRAM_BLOCKS = 256         # runtime/gram.py: the samples are summed in at most this many blocks
LIFTED_DENSE_MAX = 4_000_000   # runtime/proxgrad.DENSE_MAX: L's matrix kept dense at most
KRON_DENSE_MAX = 40_000_000    # runtime/kronops.KRON_DENSE_MAX: entries of L's block F at most
ROWS_CHUNK = 20_000_000   # runtime/hessian.ROWS_CHUNK: entries of H L's rows made at once


def gram(P: int, p: int, q: int, ny: int, c: int = 1) -> Estimate:
    """runtime/gram.py: the block G_F [N/c, N/c] of G = L^* L = I_c (x) G_F (N = P p q, c
    the free outputs: gram.free_outputs) with B [N/c, c], summed pairwise over at most
    GRAM_BLOCKS blocks of samples (one partial sum per level of the tree, log2 of them,
    plus the result), and one chunk of L's rows of output 0 [rows, N/c] (at most
    GRAM_CHUNK entries, at most |y| / c rows) with its product's copy."""
    c = max(1, int(c))
    N = int(P) * int(p) * int(q) // c
    chunk = min(GRAM_CHUNK, int(ny) // c * N)
    levels = 2 + math.ceil(math.log2(GRAM_BLOCKS))
    what = f"the Gram matrix G {dims_text((N, N))}" if c == 1 else \
        f"the Gram matrix's block G_F {dims_text((N, N))} (G = I_{c} (x) G_F)"
    return Estimate(f"{what} and its {levels - 1} partial sums",
                    (levels * (N * N + N * c) + 2 * chunk) * F64,
                    "gram=False (the loss from the samples)")


def lifted_admm(P: int, p: int, q: int, c: int = 1) -> Estimate:
    """runtime/lifted.py: the Cholesky factor of G_F + rho I and its temporaries [N/c, N/c]
    (G = I_c (x) G_F, c the free outputs)."""
    N = int(P) * int(p) * int(q) // max(1, int(c))
    return Estimate(f"the lifted ADMM's factorization {dims_text((N, N))}", 3 * N * N * F64,
                    "warm_start=False (--no-warm-start)")


def cone_interior(P: int, p: int, ny: int, a_size: int) -> Estimate:
    """runtime/interior.py: L [|y|, P p], M M^T rows [|a|, p^2], the per-pattern signs and
    slacks [P, 2, |a|], and the Newton system: dense [2 P p]^2 with its Cholesky factor when
    |y| > 2 P p, else Woodbury's [|y|, |y|] and L B [|y|, P p]."""
    P, p, ny, a_size = int(P), int(p), int(ny), int(a_size)
    fixed = 2 * ny * P * p + a_size * (p * p + p) + 8 * P * a_size
    system = 3 * (2 * P * p) ** 2 if ny > 2 * P * p else 3 * ny * ny + ny * P * p
    return Estimate(f"the cone interior point's Newton system (|y| = {ny}, 2 P p = "
                    f"{2 * P * p})", (fixed + system) * F64, "warm_start=False (--no-warm-start)")


def lifted_operator(P: int, p: int, q: int, ny: int, a_size: int, c: int = 1,
                    sharded: bool = False) -> tuple:
    """(entries, what, c') of the operator runtime/kronops.lifted_operator builds: L's dense
    matrix [|y|, N] where it has at most LIFTED_DENSE_MAX entries (c' = 1), else L's block F
    [|y| / c, N / c] over the c free outputs (kron_form: within KRON_DENSE_MAX, one
    process; c' = c), else the basis activations D_k * A(e_a) [P, p, *a] (c' = 1); rows
    padded to the widest block: at most 1/16 more (runtime/liftedops.py)."""
    P, p, q, ny, a_size, c = int(P), int(p), int(q), int(ny), int(a_size), max(1, int(c))
    N, rows = P * p * q, ny // c
    kron, dense = (rows + rows // 16) * (N // c), ny * N <= LIFTED_DENSE_MAX
    if not sharded and kron <= KRON_DENSE_MAX and not dense:
        return kron, "L's block F " + dims_text((rows, N // c)), c
    if dense:
        return (ny + ny // 16) * N, "L's matrix " + dims_text((ny, N)), 1
    return P * p * a_size, "basis activations " + dims_text((P, p, a_size)), 1


def lifted_fista(P: int, p: int, q: int, ny: int, a_size: int, gram: bool, c: int = 1,
                 sharded: bool = False) -> Estimate:
    """runtime/proxgrad.py: its operator (lifted_operator; none with the Gram matrix);
    about 10 iterates and gradients [P, p, q] (with the prox's SVD or sort) and 6
    predictions and loss gradients [*y]; its L-BFGS phase (trainer/factored.py): 2 x 50
    stored pairs and about 8 more vectors of P min(p, q) (p + q) <= 2 P p q factor entries."""
    P, p, q, ny = int(P), int(p), int(q), int(ny)
    operator, what, _ = lifted_operator(P, p, q, ny, a_size, c, sharded)
    return Estimate(f"the lifted FISTA's {what} and iterates {dims_text((P, p, q))}",
                    ((0 if gram else operator) + (10 + 2 * 108) * P * p * q + 6 * ny) * F64,
                    "warm_start=False (--no-warm-start)")


def lifted_prox_admm(P: int, p: int, q: int, ny: int, a_size: int, c: int = 1,
                     sharded: bool = False) -> Estimate:
    """runtime/proxadmm.py: L^* L's block + eta I and its Cholesky factor and inverse
    [N/c, N/c] (N = P p q; c = 1 unless the operator is L's block F), the operator
    (lifted_operator), about 8 iterates [P, p, q] and 8 predictions and multipliers [*y]
    (the loss prox's Newton temporaries)."""
    N = int(P) * int(p) * int(q)
    operator, what, c = lifted_operator(P, p, q, ny, a_size, c, sharded)
    return Estimate(f"the lifted prox ADMM's L^* L block {dims_text((N // c, N // c))} and "
                    f"{what}", (3 * (N // c) ** 2 + operator + 8 * N + 8 * int(ny)) * F64,
                    "warm_start=False (--no-warm-start)")


def lifted_prox_newton(P: int, p: int, q: int, ny: int) -> Estimate:
    """runtime/pnewton.py: L's dense matrix M [|y|, N], N = P p q (at most
    pnewton.PN_DENSE_MAX entries), one chunk of H M's rows (at most hessian.ROWS_CHUNK entries), the weighted
    Gram L^* H L with its symmetrized copy and the ADMM's Cholesky factor and inverse
    [N, N] (5 N^2), about 12 iterates [P, p, q] and 8 predictions and gradients [*y]."""
    N, ny = int(P) * int(p) * int(q), int(ny)
    rows = min(ROWS_CHUNK, ny * N)
    return Estimate(f"the lifted proximal Newton's L {dims_text((ny, N))} and L^* H L "
                    f"{dims_text((N, N))}", (ny * N + rows + 5 * N * N + 12 * N + 8 * ny) * F64,
                    "warm_start=False (--no-warm-start)")


def lifted_majorized(P: int, p: int, q: int, ny: int, c: int = 1) -> Estimate:
    """runtime/majorize.py: L's block F [|y| / c, N / c] (rows padded by at most 1/16,
    runtime/kronops.py), G_F and the ADMM's Cholesky factor and inverse [N/c, N/c] (4 of
    them, with one rebalanced copy), about 12 iterates [P, p, q] and 8 predictions [*y]."""
    c = max(1, int(c))
    nf, ny = int(P) * int(p) * int(q) // c, int(ny)
    rows = ny // c + ny // c // 16
    return Estimate(f"the lifted majorization's F {dims_text((ny // c, nf))} and G_F "
                    f"{dims_text((nf, nf))}",
                    (rows * nf + 5 * nf * nf + 12 * nf * c + 8 * ny) * F64,
                    "warm_start=False (--no-warm-start)")


def _blocks(pb) -> tuple:
    """(c, sharded) of a BMProblem: its free outputs and whether it is one shard."""
    return getattr(pb, "free_outputs", 1), bool(getattr(pb, "sharded", False))


WARM_STARTS = {   # runtime/warm.WARM_STARTS by class name -> its estimate on a BMProblem
    "LiftedADMM": lambda pb: lifted_admm(pb.P, pb.p, pb.q, getattr(pb, "free_outputs", 1)),
    "LiftedMajorized": lambda pb: lifted_majorized(pb.P, pb.p, pb.q, pb.Y.numel(),
                                                   getattr(pb, "free_outputs", 1)),
    "LiftedProxNewton": lambda pb: lifted_prox_newton(pb.P, pb.p, pb.q, pb.Y.numel()),
    "LiftedProxADMM": lambda pb: lifted_prox_admm(pb.P, pb.p, pb.q, pb.Y.numel(),
                                                  math.prod(pb.a_shape), *_blocks(pb)),
    "ConeInteriorPoint": lambda pb: cone_interior(pb.P, pb.p, pb.Y.numel(),
                                                  math.prod(pb.a_shape)),
    "LiftedFISTA": lambda pb: lifted_fista(pb.P, pb.p, pb.q, pb.Y.numel(),
                                           math.prod(pb.a_shape), pb.gram is not None,
                                           *_blocks(pb)),
}


def warm_start(name: str, problem) -> Estimate:
    """The estimate of the warm start `name` (a class of runtime/warm.WARM_STARTS)."""
    if name not in WARM_STARTS:
        raise KeyError(f"no memory estimate for the warm start {name}; add it to "
                       "warmfootprint.WARM_STARTS")
    return WARM_STARTS[name](problem)
