"""Names, sizes and tensors: the declarations of a model, collected and checked.

A size is introduced by `size` (optionally with a value), by the first tensor declaration
that uses it (then it is bound by data), or derived by a `patches` or `pool` declaration.
Every name is declared once.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..front import ast
from ..atoms.builders import PATCH_PARAMS, POOLS
from ..core.errors import SemanticError
from ..core.limits import RANGES
from ..front.params import bind
from ..core.source import Span


@dataclass(frozen=True)
class SizeInfo:
    name: str
    value: int | None  # fixed by `size name = value`; None when bound by data
    origin: str  # where it is bound, in words
    span: Span
    formula: sympy.Expr | None = None  # derived sizes: in terms of other sizes

    @property
    def symbol(self) -> sympy.Symbol:
        return sympy.Symbol(self.name, positive=True, integer=True)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[str, ...]  # size names
    role: str  # input, target, first_weight, second_weight, patches, pool
    span: Span


@dataclass(frozen=True)
class PatchesInfo:
    tensor: str
    images: str
    kernel: int
    stride: int
    padding: int
    grid: tuple[str, str]  # size names of the output grid (rows, cols)


@dataclass(frozen=True)
class PoolInfo:
    tensor: str
    builder: str  # the pooling builder's name (builders.POOLS), e.g. 'average'
    args: tuple[tuple[str, object], ...]
    positions: str  # size name of the pooled axis (patch positions)
    grid: tuple[str, str]


@dataclass(frozen=True)
class UnitsInfo:
    name: str
    value: int
    span: Span


class Declarations:
    """Mutable while collecting; `check` freezes what it needs into the `Model`."""

    def __init__(self):
        self.sizes: dict[str, SizeInfo] = {}
        self.tensors: dict[str, TensorInfo] = {}
        self.patches: list[PatchesInfo] = []
        self.pools: list[PoolInfo] = []
        self.units: UnitsInfo | None = None
        self.names: dict[str, Span] = {}  # every declared name, for duplicate detection

    def claim(self, name: str, span: Span, what: str) -> None:
        if name in self.names:
            first = self.names[name]
            raise SemanticError(f"'{name}' is declared twice (first at line {first.line}, "
                                f"column {first.column})", span=span,
                                hint=f"each {what} needs its own name")
        self.names[name] = span

    def size(self, name: str, span: Span, origin: str, value: int | None = None,
             formula=None) -> None:
        if name in self.tensors:
            raise SemanticError(f"'{name}' is a tensor and cannot be used as a size", span=span)
        if name not in self.sizes:
            self.claim(name, span, "size")
            self.sizes[name] = SizeInfo(name, value, origin, span, formula)

    def tensor(self, shape: ast.Shape, role: str, origin: str, *, binds_sizes: bool) -> TensorInfo:
        self.claim(shape.name, shape.span, "tensor")
        if shape.name in self.sizes:
            raise SemanticError(f"'{shape.name}' is a size and cannot name a tensor",
                                span=shape.span)
        for axis, dim in enumerate(shape.dims):
            if dim.name in self.sizes:
                continue
            if dim.name in self.tensors:
                raise SemanticError(f"'{dim.name}' is a tensor, not a size", span=dim.span)
            if not binds_sizes:
                raise SemanticError(f"size '{dim.name}' of {role.replace('_', ' ')} "
                                    f"'{shape.name}' is never bound", span=dim.span,
                                    hint=f"declare it with 'size {dim.name} = <value>' or use it "
                                         f"in an input's shape")
            self.size(dim.name, dim.span, f"bound by data: {origin} {shape.name} axis {axis}")
        info = TensorInfo(shape.name, tuple(d.name for d in shape.dims), role, shape.span)
        self.tensors[shape.name] = info
        return info

    def size_decl(self, stmt: ast.SizeDecl) -> None:
        for item in stmt.items:
            if item.value is not None and item.value not in RANGES["size"]:
                wrong = "must be positive" if item.value <= 0 else f"= {item.value} is too large"
                raise SemanticError(f"size '{item.name}' {wrong}", span=item.span,
                                    hint=f"accepted: {RANGES['size'].words(item.name)} "
                                         f"({RANGES['size'].why})")
            origin = (f"fixed: size {item.name} = {item.value}" if item.value
                      else f"declared: size {item.name}; bound by data")
            self.claim(item.name, item.span, "size")
            self.sizes[item.name] = SizeInfo(item.name, item.value, origin, item.span)

    def units_decl(self, stmt: ast.UnitsDecl) -> None:
        self.claim(stmt.name, stmt.span, "units count")
        if stmt.value not in RANGES["units"]:
            wrong = "must be positive" if stmt.value <= 0 else f"{stmt.value} is too large"
            raise SemanticError(f"the number of units {wrong}", span=stmt.span,
                                hint=f"accepted: {RANGES['units'].words(stmt.name)} "
                                     f"({RANGES['units'].why})")
        self.units = UnitsInfo(stmt.name, stmt.value, stmt.span)

    def weights_decl(self, stmt: ast.WeightsDecl) -> None:
        self.tensor(stmt.first, "first_weight", "weight", binds_sizes=False)
        self.tensor(stmt.second, "second_weight", "weight", binds_sizes=False)

    def patches_decl(self, stmt: ast.PatchesDecl) -> None:
        call = stmt.call
        if call.name != "im2col":
            raise SemanticError(f"unknown patch builder '{call.name}'", span=call.span,
                                hint="accepted: im2col(images, kernel = K, stride = S, "
                                     "padding = P)")
        args = bind(call.name, call.args, PATCH_PARAMS, what="patch builder", span=call.span)
        images = self.tensors.get(args["images"])
        if images is None or images.role != "input":
            raise SemanticError(f"'{args['images']}' is not an input tensor", span=call.span,
                                hint="declare the images first: input I[n, channels, height, "
                                     "width]")
        if len(images.dims) != 4:
            raise SemanticError(f"images '{images.name}' must have 4 axes [n, channels, height, "
                                f"width], not {len(images.dims)}", span=call.span)
        dims = stmt.tensor.dims
        if len(dims) != 3:
            raise SemanticError(f"patches '{stmt.tensor.name}' must have 3 axes [n, positions, "
                                f"patch size]", span=stmt.tensor.span)
        if dims[0].name != images.dims[0]:
            raise SemanticError(f"the first axis of '{stmt.tensor.name}' must be the batch size "
                                f"'{images.dims[0]}' of '{images.name}'", span=dims[0].span)
        n, ch, H, W = (self.sizes[d].symbol for d in images.dims)
        k, s, pad = args["kernel"], args["stride"], args["padding"]
        rows, cols = (f"{stmt.tensor.name}_rows", f"{stmt.tensor.name}_cols")
        where = f"patches {stmt.tensor.name}"
        for grid, side in ((rows, H), (cols, W)):  # builders.conv_out, symbolically
            self.size(grid, stmt.span, f"derived by {where}",
                      formula=sympy.floor((side + 2 * pad - k) / s) + 1)
        r, c = self.sizes[rows].symbol, self.sizes[cols].symbol
        for dim, formula in ((dims[1], r * c), (dims[2], ch * k * k)):
            if dim.name in self.sizes:
                raise SemanticError(f"size '{dim.name}' is derived by the patches and cannot be "
                                    f"declared elsewhere", span=dim.span)
            self.size(dim.name, dim.span, f"derived by {where}", formula=formula)
        self.tensor(stmt.tensor, "patches", "patches", binds_sizes=False)
        self.patches.append(PatchesInfo(stmt.tensor.name, images.name, k, s, pad, (rows, cols)))

    def pool_decl(self, stmt: ast.PoolDecl) -> None:
        call = stmt.call
        pool = POOLS.get(call.name)
        if pool is None:
            hint = "max pooling is not linear; " if call.name == "max" else ""
            raise SemanticError(f"unknown pooling '{call.name}'", span=call.span,
                                hint=f"{hint}accepted: {', '.join(POOLS)}, or an input matrix "
                                     f"P[a, k] used directly in the output equation")
        args = bind(call.name, call.args, pool.params, what="pooling", span=call.span)
        dims = stmt.tensor.dims
        if len(dims) != 2:
            raise SemanticError(f"pooling '{stmt.tensor.name}' must have 2 axes [pooled, "
                                f"positions]", span=stmt.tensor.span)
        source = next((p for p in self.patches if self.sizes_of(p.tensor)[1] == dims[1].name), None)
        if source is None:
            raise SemanticError(f"'{dims[1].name}' is not the positions axis of a patches "
                                f"declaration", span=dims[1].span,
                                hint="pooling acts on patch positions: declare 'patches X[n, k, h] "
                                     "= im2col(I, kernel = 3)' first and pool over k")
        rows, cols = (self.sizes[g].symbol for g in source.grid)
        formula = pool.symbolic(rows, cols, args)
        if dims[0].name in self.sizes:
            raise SemanticError(f"size '{dims[0].name}' is derived by the pooling and cannot be "
                                f"declared elsewhere", span=dims[0].span)
        self.size(dims[0].name, dims[0].span, f"derived by pool {stmt.tensor.name}",
                  formula=formula)
        self.tensor(stmt.tensor, "pool", "pool", binds_sizes=False)
        self.pools.append(PoolInfo(stmt.tensor.name, pool.name, tuple(sorted(args.items())),
                                   dims[1].name, source.grid))

    def sizes_of(self, tensor: str) -> tuple[str, ...]:
        return self.tensors[tensor].dims
