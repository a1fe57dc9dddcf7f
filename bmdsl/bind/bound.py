"""`BoundModel`: a derivation with data. The numeric surface both backends lower from.

Shapes (ints): w1_shape (first-layer weight), w2_shape, a_shape (pre-activation A),
y_shape (output); p = prod(w1_shape), q = prod(w2_shape); P patterns; m units.
Maps (numpy by default; `backend="torch"` with `arrays=bound.arrays_as(...)` for tensors):
  pre_activation(W1)   [*b, *w1] -> [*b, *a]             A(w1)
  output(H, W2)        [*b, *a], [*b, *w2] -> [*y]       B(H, w2), summed over batch b
  predict_bm(U, V)     [P, m, *w1], [P, m, *w2] -> [*y]  sum_kj B(D_k * A(u_kj), v_kj)  (14)
  cone_slack(U)        (2 D_k - 1) * A(u_kj), >= 0 when the ReLU cones hold          (19)
  predict_lifted(Z)    [P, p, q] -> [*y]                 sum_k L_k(Z_k)
  adjoint(R)           [*y] -> [P, p, q]                 G_k = L_k^*(R)              (20)
  operator()           [P, |y|, p q] dense matrices of L_k (for CVXPY)
  operator_nnz()       a bound on the non-zeros of L = [L_1 ... L_P] built sparse
                       (cvx/structured.py: Z's indices shared with Yhat are deltas in L)
  layer_matrix()       [N_A, p] the arrangement matrix of A (cones, exact patterns)
  theorems()           the paper's theorems decided at these sizes (Theorem 3.3: m >= p + q)
Masks, patches, pooling, the arrangement matrix and the operator are estimated against the
memory budget before they are built (memory.py, footprint.py): MemoryBudgetError if not.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import cvxfootprint, footprint
from .binding import validate
from ..core.memory import require
from ..core.stages import later
from ..core.errors import DataError
from ..core.contract import contract


def _batch(n: int) -> tuple[str, ...]:
    return tuple(f"_b{i}" for i in range(n))


def z_indices(spec) -> tuple[str, ...]:
    """The indices of Z in a lifted term."""
    return next(idx for name, idx in spec.operands if name == "Z")


def shared_indices(spec) -> tuple[str, ...]:
    """Z's indices that also index Yhat in a lifted term: Kronecker deltas of L_k (L_k[y, z]
    = 0 unless y and z agree on them), in Z's order."""
    return tuple(i for i in z_indices(spec) if i in spec.out)


class BoundModel:
    def __init__(self, derivation, data: dict, patterns=None, *, pattern_cap: int = 10_000):
        from ..atoms.losses import get_loss
        model = derivation.model
        self.derivation, self.model, self.network = derivation, model, derivation.network
        # what no data can shrink is refused before the data is even looked at (memory.py)
        footprint.require_model(model, stages=("bind",), sampled=patterns is None)
        self.arrays, self.sizes = validate(model, data)
        for name, key in self.network.data_keys:  # data named like a placeholder (lifting.py)
            self.arrays[key] = self.arrays[name]
        self.Y = self.arrays[model.target.name]
        ints = lambda dims: tuple(self.sizes[d] for d in dims)  # noqa: E731
        self.w1_shape = ints(model.first_weight.dims)
        self.w2_shape = ints(model.second_weight.dims)
        self.a_shape = ints(model.layer.dims)
        self.y_shape = ints(model.output.dims)
        self.p, self.q = math.prod(self.w1_shape), math.prod(self.w2_shape)
        self.m = model.units.value
        self.loss = get_loss(model.loss.name, **dict(model.loss.params))
        if model.bias.output:      # the free output offset is folded into F (offset.py)
            from ..atoms.offset import with_offset
            self.loss = with_offset(self.loss, self.y_shape[-1] if len(self.y_shape) > 1 else 1)
        problem = self.loss.target_check(self.Y)
        if problem:  # e.g. cross-entropy rows not summing to 1 make every program unbounded
            raise DataError(f"target '{model.target.name}' does not suit loss "
                            f"{self.loss.name}: {problem}", span=model.loss.span,
                            source=model.source)
        reg = model.regularizer
        self.beta, self.C, self.R = reg.beta, reg.C, reg.R
        self.activation = model.activation
        self.cone = derivation.activation.cone
        self.patterns = self._patterns(patterns, pattern_cap) if derivation.activation.uses_patterns \
            else None
        self.masks = None if self.patterns is None else np.asarray(self.patterns.masks)
        self.P = 1 if self.masks is None else self.masks.shape[0]

    # -- patterns -------------------------------------------------------------------------
    def _patterns(self, given, cap):
        from ..derive import patterns as pat
        from ..derive.arrangement import enumerate_patterns
        from ..core.errors import DataError
        act = self.activation
        a_size = math.prod(self.a_shape)
        if given is not None and getattr(given, "masks", None) is None:
            # gates drawn for all samples, these being a shard of them (pat.Gates)
            require(footprint.sampled_patterns(given.gates.shape[0], self.p, a_size))
            return given.on(self.pre_activation)
        if given is not None:
            masks = np.asarray(given.masks)
            if masks.shape[1:] != self.a_shape:
                raise DataError(f"the given patterns have shape {list(masks.shape[1:])}, but "
                                f"this model's pre-activation has shape {list(self.a_shape)}",
                                hint="patterns (a --patterns file, or those saved with the "
                                     "weights) fit only the model and data they were made for")
            return given
        if act.gates:
            gates = self.arrays[act.gates]
            require(footprint.sampled_patterns(gates.shape[0], self.p, a_size))
            return pat.PatternSet(pat.masks_from_gates(self.pre_activation, gates), gates,
                                  "gates", None, gates.shape[0])
        if act.patterns == "exact":
            require(footprint.layer_matrix(self.p, a_size))
            try:
                return enumerate_patterns(self.layer_matrix(), self.a_shape, cap=cap,
                                              p_shape=self.w1_shape)
            except pat.PatternCountError as exc:  # say which model and how to proceed
                raise pat.PatternCountError(
                    f"{exc.message}, for {self.model.layer.lhs}{list(self.a_shape)} with "
                    f"p = {self.p}", span=act.span, source=self.model.source,
                    hint="use sampled patterns (`activation relu(patterns = 256)`, or "
                         "--patterns 256), or raise the cap: bind(data, pattern_cap=N)") from None
        require(footprint.sampled_patterns(act.patterns, self.p, a_size))
        return pat.sample_patterns(self.pre_activation, self.w1_shape, act.patterns, act.seed)

    def _repr_markdown_(self) -> str:
        """Jupyter: the bound model's sizes and settings as a table."""
        from ..derive.render import markdown_table
        pats = self.patterns
        return markdown_table(f"bound model {self.model.name}", [
            ("activation", self.activation.name + ("" if pats is None else
                                                   f", P = {self.P} patterns ({pats.source})")),
            ("sizes", ", ".join(f"{k} = {v}" for k, v in self.sizes.items()
                                if not k.endswith(("_rows", "_cols")))),
            ("first / second layer weight", f"{list(self.w1_shape)} / {list(self.w2_shape)}"),
            ("lifted Z_k", f"{self.p} x {self.q} (p x q)"),
            ("units m per pattern", self.m),
            ("loss", self.loss.name),
            ("regularizer", f"beta = {self.beta:g}, C = {self.C}, R = {self.R}")])

    def output_bias(self, U, V):
        """b* [c], the best free output offset for the factors U, V on this data (a model with
        `bias output`, offset.py); None without one."""
        if self.loss.offset is None:
            return None
        return self.loss.offset(self.predict_bm(U, V), self.Y)

    def theorems(self):
        """The paper's theorems with this data's sizes: `holds` is True or False."""
        return self.derivation.at(self.sizes, self.P).theorems

    # -- maps -----------------------------------------------------------------------------
    def arrays_as(self, convert) -> dict:
        """The data arrays converted (e.g. to torch tensors on a device)."""
        out = {k: convert(v) for k, v in self.arrays.items()}
        if self.masks is not None:
            out["D"] = convert(self.masks)
        return out

    def _run(self, specs, arrays, backend, **extra):
        arrays = dict(self.arrays if arrays is None else arrays)
        arrays.update(extra)
        total = None
        for spec in specs:
            r = contract(spec, arrays, backend)
            total = r if total is None else total + r
        return total

    def pre_activation(self, W1, *, backend="numpy", arrays=None):
        b = _batch(W1.ndim - len(self.w1_shape))
        specs = [s.with_batch({"W1": b}, b) for s in self.network.layer]
        return self._run(specs, arrays, backend, W1=W1)

    def output(self, H, W2, *, backend="numpy", arrays=None):
        b = _batch(H.ndim - len(self.a_shape))
        specs = [s.with_batch({"H": b, "W2": b}, ()) for s in self.network.output]
        return self._run(specs, arrays, backend, H=H, W2=W2)

    def activate(self, A, *, backend="numpy", arrays=None):
        """D_k * A for A [P, m, *a] (identity when linear)."""
        if self.masks is None:
            return A
        D = (arrays or {}).get("D", self.masks)
        return D[:, None] * A

    def predict_bm(self, U, V, *, backend="numpy", arrays=None):
        A = self.pre_activation(U, backend=backend, arrays=arrays)
        return self.output(self.activate(A, backend=backend, arrays=arrays), V,
                           backend=backend, arrays=arrays)

    def cone_slack(self, U, *, backend="numpy", arrays=None):
        D = (arrays or {}).get("D", self.masks)
        return (2 * D[:, None] - 1) * self.pre_activation(U, backend=backend, arrays=arrays)

    def predict_lifted(self, Z, backend="numpy"):
        """sum_k L_k(Z_k); backend "numpy_by_torch" (numpy in and out) for the certificate."""
        Z = np.asarray(Z).reshape((self.P,) + self.w1_shape + self.w2_shape)
        specs = [s.with_batch({"D": ("_k",), "Z": ("_k",)}, ()) for s in self.network.lifted]
        extra = {"Z": Z} if self.masks is None else {"Z": Z, "D": self.masks}
        return self._run(specs, None, backend, **extra)

    def adjoint(self, R, backend="numpy"):
        """G_k = L_k^*(R): [P, p, q]; R may carry leading batch axes ([*b, *y] -> [*b, P, p, q])."""
        R = np.asarray(R)
        b = _batch(R.ndim - len(self.y_shape))
        out = b + (("_k",) if self.masks is not None else ())
        specs = [s.with_batch({"D": ("_k",), "R": b}, out) for s in self.network.adjoint]
        extra = {"R": R} if self.masks is None else {"R": R, "D": self.masks}
        G = self._run(specs, None, backend, **extra)
        if self.masks is None:  # no pattern axis in the network: add P = 1
            G = np.expand_dims(G, len(b))
        return G.reshape(R.shape[:len(b)] + (self.P, self.p, self.q))

    def operator(self) -> np.ndarray:
        """Dense L_k as matrices [P, |y|, p*q]: each L_k applied to the basis of p x q
        (memory |y| P p q; the adjoint of the basis of y would need |y|^2)."""
        pq = self.p * self.q
        require(cvxfootprint.operator(self.P, self.Y.size, pq))
        E = np.broadcast_to(np.eye(pq).reshape((pq, 1) + self.w1_shape + self.w2_shape),
                            (pq, self.P) + self.w1_shape + self.w2_shape)
        batch = ("_e", "_k") if self.masks is not None else ("_e",)
        specs = [s.with_batch({"D": ("_k",), "Z": batch}, batch) for s in self.network.lifted]
        extra = {"Z": E if self.masks is not None else E[:, 0]}
        if self.masks is not None:
            extra["D"] = self.masks
        L = self._run(specs, None, "numpy", **extra).reshape(pq, self.P, -1)  # [pq, P, |y|]
        return np.ascontiguousarray(L.transpose(1, 2, 0))

    def operator_nnz(self) -> int:
        """At most this many non-zeros in L = [L_1 ... L_P] [|y|, P p q]: each lifted term
        fills 1/(product of its shared indices' sizes) of it (no data is looked at)."""
        z_shape = tuple(self.w1_shape) + tuple(self.w2_shape)
        total = 0
        for spec in self.network.lifted:
            z = z_indices(spec)
            deltas = math.prod(z_shape[z.index(i)] for i in shared_indices(spec))
            total += self.P * self.Y.size * self.p * self.q // deltas
        return min(total, self.P * self.Y.size * self.p * self.q)

    @property
    def euclidean(self) -> bool:
        """C = R = l2: the D-norm is the nuclear norm (the norm-pair table says so)."""
        from ..atoms.pairs import NormPair
        return NormPair(self.C, self.R).euclidean

    def layer_matrix(self) -> np.ndarray:
        require(footprint.layer_matrix(self.p, math.prod(self.a_shape)))
        basis = np.eye(self.p).reshape((self.p,) + self.w1_shape)
        return self.pre_activation(basis).reshape(self.p, -1).T

    # -- lowerings ---------------------------------------------------------------------------
    def to_cvxpy(self, **options):
        """The convex program as a `bmdsl.cvx.ConvexProblem` (wraps a `cvxpy.Problem`)."""
        return later("to_cvxpy")(self, **options)

    def to_torch(self, device=None, **options):
        """A `bmdsl.trainer.Trainer` of the BM factorization, on `cuda` when available."""
        return later("to_torch")(self, device=device, **options)

    # -- objective pieces -------------------------------------------------------------------
    def regularizer_bm(self, U, V) -> float:
        from ..atoms.norms import get_norm
        C, R = get_norm(self.C), get_norm(self.R)
        u = np.asarray(U).reshape(U.shape[0], U.shape[1], -1)
        v = np.asarray(V).reshape(V.shape[0], V.shape[1], -1)
        return 0.5 * self.beta * float((C.numpy(u, axis=-1) ** 2).sum() + (R.numpy(v, axis=-1) ** 2).sum())

    def objective_bm(self, U, V) -> float:
        """F(sum_k L_k(U_k V_k^T)) + (beta/2) sum (||u||_C^2 + ||v||_R^2), eq. (14)."""
        return float(self.loss.value(self.predict_bm(U, V), self.Y)) + self.regularizer_bm(U, V)

    def lift(self, U, V) -> np.ndarray:
        """Z_k = U_k V_k^T as [P, p, q]."""
        u = np.asarray(U).reshape(self.P, U.shape[1], self.p)
        v = np.asarray(V).reshape(self.P, V.shape[1], self.q)
        return np.einsum("kjp,kjq->kpq", u, v)
