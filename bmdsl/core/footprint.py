"""Memory footprints, in bytes, of the arrays each stage builds: estimates from sizes alone.

One function per allocation that can grow past a machine's memory (read from the code that
builds it); each returns a `memory.Estimate` naming the array with its shape and what to
change. Factors *_COPIES are measured peaks over the array's own size (docs/performance.md,
"Memory planning"): they cover the temporaries numpy, torch and CVXPY make around it.
`model_least(model)` bounds, before any data, what no data can make smaller. The CVXPY
program's own footprint and its lowering plan are in cvxfootprint.py.
"""
from __future__ import annotations

import math

from .memory import Estimate

F64 = 8
# One lbfgs or adam step on an MLP (P = 100, m = 5, n = 20000): peak 7.8x the
# pre-activations [P, m, *a] (A, D * A, the output's intermediates and their gradients).
STEP_COPIES = 8
# The final certificate in numpy float64: A(u_kj), D_k * A(u_kj) and one product at a time.
CERTIFICATE_COPIES = 3
# Copies of the factors (U, V) each method keeps: the factors, their gradients and the
# method's state (torch.optim.LBFGS keeps history_size = 50 pairs (s, y), runtime/steps.py).
METHOD_COPIES = {"adam": 4, "sgd": 3, "lbfgs": 2 + 2 * 50 + 3, "precgd": 6, "als": 3,
                 "newton": 4}
NEWTON_MAX_VARS = 6000    # runtime/curvature.Newton.MAX_VARS: where "auto" may pick newton
JACOBIAN_BUDGET = 60_000_000   # Newton.JACOBIAN_BUDGET: its dense Jacobian, entries
GRAM_CHUNK = 20_000_000   # runtime/gram.py: entries of one chunk of L's matrix
GRAM_BLOCKS = 256         # runtime/gram.py: the samples are summed in at most this many blocks
LIFTED_DENSE_MAX = 4_000_000   # runtime/proxgrad.DENSE_MAX: L's matrix kept dense at most
KRON_DENSE_MAX = 40_000_000    # runtime/kronops.KRON_DENSE_MAX: entries of L's block F at most
ROWS_CHUNK = 20_000_000   # runtime/hessian.ROWS_CHUNK: entries of H L's rows made at once
TO_TRAINER = ("fewer patterns (--patterns), fewer units (--m), float32 (--dtype float32), a "
              "method with less state (--method adam) or mini-batches (bmdsl train "
              "--batch-size)")


def dims_text(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


# -- binding: data, patches, pooling, patterns ------------------------------------------------
def data(name: str, shape, itemsize: int = F64) -> Estimate:
    return Estimate(f"the data tensor {name} {dims_text(shape)}", math.prod(shape) * itemsize,
                    "smaller data (fewer samples or features)")


def patches(images_shape, kernel: int, stride: int, padding: int, name: str = "X") -> Estimate:
    """builders.extract_patches: the padded images and the patches [n, K, ch kernel^2]."""
    n, ch, H, W = (int(s) for s in images_shape)
    rows = max(1, (H + 2 * padding - kernel) // stride + 1)
    cols = max(1, (W + 2 * padding - kernel) // stride + 1)
    padded = n * ch * (H + 2 * padding) * (W + 2 * padding)
    out = n * rows * cols * ch * kernel * kernel
    return Estimate(f"the patches {name} {dims_text((n, rows * cols, ch * kernel * kernel))} (with "
                    f"the images padded by {padding})", (padded + out) * F64,
                    "a smaller padding, a larger stride, smaller images or fewer samples")


def pooling(cells: int, positions: int, name: str = "P") -> Estimate:
    """The dense pooling matrix [a, K] (builders.POOLS)."""
    return Estimate(f"the pooling matrix {name} {dims_text((cells, positions))}",
                    int(cells) * int(positions) * F64,
                    "fewer patch positions (a larger stride, less padding, smaller images)")


def sampled_patterns(count: int, p: int, a_size: int) -> Estimate:
    """patterns.sample_patterns: gates [count, p], pre-activations and masks [count, *a]
    in float64, the boolean comparison and the kept masks."""
    nbytes = int(count) * (int(p) + 3 * int(a_size)) * F64 + int(count) * int(a_size)
    return Estimate(f"{count} sampled patterns (gates {dims_text((count, p))}, masks "
                    f"{dims_text((count, a_size))})", nbytes,
                    "fewer patterns (`patterns = ...` or --patterns) or smaller data")


def layer_matrix(p: int, a_size: int) -> Estimate:
    """BoundModel.layer_matrix: the basis of W1 [p, p] and A of it [p, |a|] (and its transpose)."""
    return Estimate(f"the arrangement matrix of A {dims_text((a_size, p))}",
                    (int(p) * int(p) + 2 * int(p) * int(a_size)) * F64,
                    "sampled patterns instead of exact ones, or smaller data")


def exact_patterns(cells: int, p: int, a_size: int) -> Estimate:
    """enumerate_patterns: one gate [p] and one mask [|a|] per cell, with temporaries."""
    return Estimate(f"up to {cells} exact patterns (masks {dims_text((cells, a_size))})",
                    int(cells) * (2 * int(p) + 3 * int(a_size)) * F64,
                    "sampled patterns (`activation relu(patterns = 256)`) or a lower cap")


# -- the BM trainer -------------------------------------------------------------------------
def trainer(P, m, p, q, a_size, data_bytes, itemsize, method="auto", batch_fraction=1.0,
            cone=False, ny=1) -> Estimate:
    """Trainer: data and masks on the device, the factors U [P, m, p], V [P, m, q] with
    their gradients and the method's state, one step's pre-activations [P, m, *a_batch]
    (with the ReLU multipliers), and the final numpy certificate's [P, m, *a] (float64).
    method "auto" counts the largest method it may pick (runtime/policy.AUTO)."""
    P, m, p, q, a_size = (int(x) for x in (P, m, p, q, a_size))
    factors = P * m * (p + q)
    if method == "auto":
        copies = METHOD_COPIES["lbfgs" if batch_fraction >= 1.0 else "adam"]
        extra = _newton(factors, ny, itemsize) if batch_fraction >= 1.0 else 0
    else:
        copies = METHOD_COPIES.get(method, 4)
        extra = _newton(factors, ny, itemsize) if method == "newton" else 0
        if method == "als":   # the Jacobian [|y|, P m max(p, q)] and the smaller normal matrix
            side = P * m * max(p, q)
            extra = (int(ny) * side + min(side, int(ny)) ** 2) * itemsize
    acts = P * m * max(1, int(a_size * batch_fraction))
    step = (STEP_COPIES + (3 if cone else 0)) * acts * itemsize
    cert = CERTIFICATE_COPIES * P * m * a_size * F64
    masks = P * a_size * itemsize if P > 1 or cone else 0
    nbytes = data_bytes + masks + copies * factors * itemsize + max(step + extra, cert)
    return Estimate(f"the BM trainer (factors U {dims_text((P, m, p))}, V {dims_text((P, m, q))}, "
                    f"pre-activations {dims_text((P, m, a_size))})", nbytes, TO_TRAINER)


def _newton(n_vars: int, ny: int, itemsize: int) -> int:
    """Where newton may run (N <= NEWTON_MAX_VARS): the dense Hessian [N, N] with its
    factor, and the Jacobian [|y|, N] (Newton.JACOBIAN_BUDGET entries at most)."""
    if n_vars > NEWTON_MAX_VARS:
        return 0
    return (2 * n_vars * n_vars + min(int(ny) * n_vars, JACOBIAN_BUDGET)) * itemsize


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
    predictions and loss gradients [*y]."""
    P, p, q, ny = int(P), int(p), int(q), int(ny)
    operator, what, _ = lifted_operator(P, p, q, ny, a_size, c, sharded)
    return Estimate(f"the lifted FISTA's {what} and iterates {dims_text((P, p, q))}",
                    ((0 if gram else operator) + 10 * P * p * q + 6 * ny) * F64,
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
                       "footprint.WARM_STARTS")
    return WARM_STARTS[name](problem)


def trainer_for(bound, m: int, itemsize: int, method="auto", batch_size=None) -> Estimate:
    """`trainer` at a bound model's sizes; batch_size None or >= n is the full batch."""
    n = bound.sizes.get(bound.model.target.dims[0], 1) if bound.model.target.dims else 1
    n_layer = bound.model.target.dims[:1] and bound.model.target.dims[0] in bound.model.layer.dims
    fraction = 1.0
    if batch_size is not None and n_layer and 0 < int(batch_size) < n:
        fraction = int(batch_size) / n
    data_bytes = sum(a.size for a in bound.arrays.values()) * itemsize
    return trainer(bound.P, m, bound.p, bound.q, math.prod(bound.a_shape), data_bytes,
                   itemsize, method, fraction, bound.cone, bound.Y.size)


# -- before any data ----------------------------------------------------------------------
def least_sizes(model) -> dict[str, int]:
    """Each size at its least: declared values as given, sizes bound by data at 1, derived
    sizes by their formulas at those (monotone in the data's sizes), and never below 1."""
    import sympy
    out = {}
    for s in model.sizes:
        expr = model.symbolic(s.name)
        if isinstance(expr, sympy.Expr) and expr.free_symbols:
            expr = expr.subs({sym: 1 for sym in expr.free_symbols})
        try:
            out[s.name] = max(1, int(expr))
        except (TypeError, ValueError):
            out[s.name] = 1
    return out


def model_least(model, sampled: bool = True) -> dict[str, list[Estimate]]:
    """Lower bounds before data, by stage ("bind", "trainer"): n = 1, data sizes 1, P = 1
    pattern after de-duplication, float32. What exceeds the budget here, no data rescues.
    sampled=False: the patterns are given (a saved PatternSet), no gates are drawn."""
    size = least_sizes(model)
    numel = lambda dims: math.prod(size.get(d, 1) for d in dims)  # noqa: E731
    p, q = numel(model.first_weight.dims), numel(model.second_weight.dims)
    a_size, m = numel(model.layer.dims), int(model.units.value)
    bind = [data(t.name, [size.get(d, 1) for d in t.dims]) for t in (*model.inputs, model.target)]
    bind += [Estimate(f"the weight {w.name} {dims_text([size.get(d, 1) for d in w.dims])}",
                      numel(w.dims) * F64, "smaller declared sizes")
             for w in (model.first_weight, model.second_weight)]
    act = model.activation
    if sampled and act.name != "linear" and isinstance(act.patterns, int) and not act.gates:
        bind.append(sampled_patterns(act.patterns, p, a_size))
    for pt in model.patches:
        dims = model.tensor(pt.images).dims
        bind.append(patches([size.get(d, 1) for d in dims], pt.kernel, pt.stride, pt.padding,
                            pt.tensor))
    for pl in model.pools:
        t = model.tensor(pl.tensor).dims
        bind.append(pooling(size.get(t[0], 1), size.get(t[1], 1), pl.tensor))
    return {"bind": bind,
            "trainer": [trainer(1, m, p, q, 1, 0, 4, method="sgd",
                                batch_fraction=1.0 / max(1, a_size))]}


def require_model(model, stages=("bind", "trainer"), value=None, sampled=True) -> None:
    """MemoryBudgetError when a stage's lower bound (`model_least`) exceeds the budget."""
    from .memory import require_all
    least = model_least(model, sampled)
    require_all([e for stage in stages for e in least[stage]], value,
                prefix="even at the least sizes this model allows (n = 1, sizes from data "
                       "1, one pattern), ")
