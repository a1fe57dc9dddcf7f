"""From data arrays to the numbers of the convex program, without bmdsl (numpy only).

What bmdsl.bind.binding and bmdsl.bind.bound do, driven by a SPEC dict of plain literals: the
checked arrays and sizes, the fixed maps and masks D_k of the kernel (bmdsl/kernel, the
same formulas as bmdsl), the stacked operator L = [L_1 ... L_P] and the layer matrix.
"""
import numpy as np

from ..kernel.einsum import contract_terms
from ..kernel.layout import POOL_MATRICES, conv_out, extract_patches
from ..kernel.masks import sample_gates, unique_masks
from ..kernel.npz import numeric

CVXPY_COPIES = 8    # = core.cvxfootprint.CVXPY_COPIES (a test checks): peak RSS / dense L


class DataError(ValueError):
    """Data that does not fit the model (names, shapes, NaN/inf, empty, masks)."""


def check_arrays(spec, data):
    """float64 arrays by tensor name (inputs, target, patches, pools) and every size."""
    sizes, origin, arrays = dict(spec["fixed_sizes"]), {}, {}
    needed = list(spec["inputs"]) + [spec["target"]]
    for i, (name, dims) in enumerate(needed):  # a target whose last size is 1 may omit it
        short = i == len(needed) - 1 and bool(dims) and sizes.get(dims[-1]) == 1
        a = numeric(data, name, dims, short)
        for axis, (dim, n) in enumerate(zip(dims, a.shape)):
            if dim in sizes and sizes[dim] != n:
                raise DataError(f"'{name}' axis {axis} ({dim}) has length {n}, but {dim} = "
                                f"{sizes[dim]} from {origin.get(dim, 'the model')}")
            sizes.setdefault(dim, n)
            origin.setdefault(dim, f"'{name}' axis {axis}")
        arrays[name] = a
    if spec["patches"]:            # a model fact: the emitter keeps this only when true
        add_patches(spec, arrays, sizes)
    if spec["pools"]:
        add_pools(spec, arrays, sizes)
    if spec["bias"]["hidden"]:  # the hidden bias (bmdsl/atoms/bias.py): a constant feature
        hidden = spec["bias"]["hidden"]     # on the axis W1 contracts
        a = arrays[hidden["tensor"]]
        one = np.full(a.shape[:hidden["axis"]] + (1,) + a.shape[hidden["axis"] + 1:],
                      hidden["value"])
        arrays[hidden["tensor"]] = np.concatenate([a, one], axis=hidden["axis"])
        sizes[hidden["size"]] = a.shape[hidden["axis"]] + 1
    bad = [s for s in spec["sizes"] if sizes.get(s, 0) <= 0]
    if bad:
        raise DataError(f"size(s) {', '.join(bad)} are not positive for this data")
    return arrays, sizes


def add_patches(spec, arrays, sizes):
    """The im2col patches of each image tensor, and the sizes of their grid."""
    for p in spec["patches"]:
        _, ch, H, W = arrays[p["images"]].shape
        rows, cols = (conv_out(H, p["kernel"], p["stride"], p["padding"]),
                      conv_out(W, p["kernel"], p["stride"], p["padding"]))
        if rows <= 0 or cols <= 0:
            raise DataError(f"images '{p['images']}' of size {H}x{W} are smaller than the "
                            f"kernel {p['kernel']}")
        arrays[p["tensor"]] = extract_patches(arrays[p["images"]], p["kernel"], p["stride"],
                                              p["padding"])
        sizes[p["grid"][0]], sizes[p["grid"][1]] = rows, cols
        sizes[p["dims"][1]], sizes[p["dims"][2]] = rows * cols, ch * p["kernel"] ** 2


def add_pools(spec, arrays, sizes):
    """The pooling matrices over each patch grid, and their cell counts."""
    for p in spec["pools"]:
        P = POOL_MATRICES[p["builder"]]((sizes[p["grid"][0]], sizes[p["grid"][1]]), p["args"])
        if P.shape[0] == 0:
            raise DataError(f"pooling '{p['tensor']}' leaves no cells on this grid")
        arrays[p["tensor"]] = P
        sizes[p["dims"][0]] = P.shape[0]


def pre_activation(spec, arrays, W1):
    """A(W1) for a batch W1 [b, *w1] -> [b, *a]."""
    return contract_terms(spec["layer"], dict(arrays, W1=W1))


def given(x, shape, what):
    """Masks or gates passed in, as float64, if their shape is [P, *shape]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[1:] != shape or x.shape[0] == 0:
        raise DataError(f"{what} of shape {list(x.shape)}, not [P, {', '.join(map(str, shape))}]")
    return x


def pattern_masks(spec, arrays, shapes, masks=None, gates=None):
    """Masks D_k [P, *a] (None for linear): given masks, given gates, or sampled."""
    act = spec["activation"]
    if not act["masked"]:
        return None
    if masks is not None:
        masks = given(masks, shapes["a"], "masks")
        if not np.all((masks == 0) | (masks == 1)):
            raise DataError("masks must be 0/1")
        return masks
    if gates is None and act["gates"] is not None:
        gates = arrays[act["gates"]]
    if gates is not None:
        gates = given(gates, shapes["w1"], "gates")
        return (pre_activation(spec, arrays, gates) >= 0).astype(np.float64)
    if act["patterns"] == "exact":
        raise DataError("this model enumerates its patterns exactly: pass the masks saved "
                        "by `bmdsl solve` (the 'masks' array of its output .npz)")
    gates = sample_gates(shapes["w1"], act["patterns"], act["seed"])
    return unique_masks((pre_activation(spec, arrays, gates) >= 0).astype(np.float64))[0]


def stacked_operator(spec, arrays, shapes, masks):
    """L = [L_1, ..., L_P]: [|y|, P p q], the adjoint applied to the basis of y."""
    ny = int(np.prod(shapes["y"]))
    # dense, unlike bmdsl's structured lowering: refuse before allocating what cannot fit
    # (the basis of y, and L about CVXPY_COPIES times over while CVXPY and the solver run)
    cols = (1 if masks is None else len(masks)) * int(np.prod(shapes["w1"] + shapes["w2"]))
    need = 8 * ny * (ny + CVXPY_COPIES * cols)
    if need > spec["memory_budget"]:
        raise DataError(f"the dense operator L [{ny}, {cols}] needs about {need / 2**30:.3g} GiB, "
                        f"over the budget of {spec['memory_budget'] / 2**30:.3g} GiB (--memory); "
                        "`bmdsl solve` builds L sparse")
    R = np.eye(ny).reshape((ny,) + shapes["y"])
    G = contract_terms(spec["adjoint"], dict(arrays, R=R, D=masks))
    return G.reshape(ny, -1)  # [ny, (P,) *w1, *w2] -> columns ordered (k, vec Z_k)


def layer_matrix(spec, arrays, shapes):
    """The arrangement matrix of A: [N_A, p], rows row-major over A's shape."""
    p = int(np.prod(shapes["w1"]))
    return pre_activation(spec, arrays, np.eye(p).reshape((p,) + shapes["w1"])).reshape(p, -1).T
