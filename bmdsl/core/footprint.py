"""Memory footprints, in bytes, of the arrays each stage builds: estimates from sizes alone.

One function per allocation that can grow past a machine's memory (read from the code that
builds it); each returns a `memory.Estimate` naming the array with its shape and what to
change. Factors *_COPIES are measured peaks over the array's own size (docs/performance.md,
"Memory planning"): they cover the temporaries numpy, torch and CVXPY make around it.
`model_least(model)` bounds, before any data, what no data can make smaller. The CVXPY
program's own footprint and its lowering plan are in cvxfootprint.py, the lifted warm starts' in
warmfootprint.py.
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
# Newton's step holds its Hessian [N, N] 5 times: the Gauss-Newton part, the Hessian, H + mu I,
# the identity and the Cholesky factor (measured: 465-518 MB added at N = 3600, 5 x 104 MB)
HESSIAN_COPIES = 5
# ... and without the Gram its Jacobian [|y|, N] 4 times: its two halves, the whole, the
# loss's Hessian times it (measured: 398 MB added for a 99 MB Jacobian, huber, |y| = 15000)
JACOBIAN_COPIES = 4
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
            cone=False, ny=1, gram=False) -> Estimate:
    """Trainer: data and masks on the device, the factors U [P, m, p], V [P, m, q] with
    their gradients and the method's state, one step's pre-activations [P, m, *a_batch]
    (with the ReLU multipliers), and the final numpy certificate's [P, m, *a] (float64).
    method "auto" counts the largest method it may pick (runtime/policy.AUTO). gram: the
    squared loss through G = L^* L: no pre-activations, and Newton builds no Jacobian."""
    P, m, p, q, a_size = (int(x) for x in (P, m, p, q, a_size))
    factors = P * m * (p + q)
    if method == "auto":
        copies = METHOD_COPIES["lbfgs" if batch_fraction >= 1.0 else "adam"]
        extra = _newton(factors, ny, itemsize, gram) if batch_fraction >= 1.0 else 0
    else:
        copies = METHOD_COPIES.get(method, 4)
        extra = _newton(factors, ny, itemsize, gram) if method == "newton" else 0
        if method == "als":   # the Jacobian [|y|, P m max(p, q)] and the smaller normal matrix
            side = P * m * max(p, q)
            extra = (int(ny) * side + min(side, int(ny)) ** 2) * itemsize
    acts = P * m * max(1, int(a_size * batch_fraction))
    # through the Gram the steps never touch the samples (runtime/gram.py): no pre-activations
    step = 0 if gram else (STEP_COPIES + (3 if cone else 0)) * acts * itemsize
    cert = CERTIFICATE_COPIES * P * m * a_size * F64
    masks = P * a_size * itemsize if P > 1 or cone else 0
    nbytes = data_bytes + masks + copies * factors * itemsize + max(step + extra, cert)
    return Estimate(f"the BM trainer (factors U {dims_text((P, m, p))}, V {dims_text((P, m, q))}, "
                    f"pre-activations {dims_text((P, m, a_size))})", nbytes, TO_TRAINER)


def _newton(n_vars: int, ny: int, itemsize: int, gram: bool = False) -> int:
    """Where newton may run (runtime/curvature.Newton.refusals: N <= NEWTON_MAX_VARS, and
    without the Gram a Jacobian [|y|, N] within JACOBIAN_BUDGET entries): the dense Hessian
    [N, N] and the Jacobian (not with the Gram) with their copies."""
    jacobian = 0 if gram else int(ny) * n_vars
    if n_vars > NEWTON_MAX_VARS or jacobian > JACOBIAN_BUDGET:
        return 0
    return (HESSIAN_COPIES * n_vars * n_vars + JACOBIAN_COPIES * jacobian) * itemsize


def trainer_for(bound, m: int, itemsize: int, method="auto", batch_size=None,
                gram=False) -> Estimate:
    """`trainer` at a bound model's sizes; batch_size None or >= n is the full batch."""
    n = bound.sizes.get(bound.model.target.dims[0], 1) if bound.model.target.dims else 1
    n_layer = bound.model.target.dims[:1] and bound.model.target.dims[0] in bound.model.layer.dims
    fraction = 1.0
    if batch_size is not None and n_layer and 0 < int(batch_size) < n:
        fraction = int(batch_size) / n
    data_bytes = sum(a.size for a in bound.arrays.values()) * itemsize
    return trainer(bound.P, m, bound.p, bound.q, math.prod(bound.a_shape), data_bytes,
                   itemsize, method, fraction, bound.cone, bound.Y.size, gram)


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
