"""The BM latent representation a stage passes on (Sahiner et al. 2024, section 4.2).

A trained stage is the BM factorization (24) of the convex CNN (23): P m units, unit j of
pattern k with first-layer filter u_kj. Its latent representation of image i is the map of
unit activations over the patch grid,

    H_i[(k, j), r] = (D_k X_i u_kj)[r]       (gated ReLU: D_k = diag 1[X_i h_k >= 0])

m P channels on the grid of patch positions r (oh x ow), instead of the P a c channels of
the convex program's latent {D_k X_i Z_k} (section 4.2). The next stage reads it as an
image [n, m P, oh, ow], optionally down-sampled (downsample.py: w x w average pooling, or
the invertible space-to-depth) and divided by a fixed scale (the root mean square of the
training representation, so each stage's beta sees inputs of the same size).
"""
from __future__ import annotations

import torch

from ..core.errors import SemanticError
from ..kernel.einsum import run_terms
from ..trainer.runtime.network import UNIT, unit_outputs
from . import downsample as ds

CHUNK = 256     # samples per pass: the patches of a chunk, not of the data, are held


def check_stage_spec(spec) -> None:
    """A stage model must be a CNN whose layer A[n, k] runs over one patch grid."""
    patches = spec["patches"]
    if len(spec["inputs"]) != 1 or len(patches) != 1:
        raise SemanticError(
            f"model {spec['model']}: a layerwise stage needs one image input with one "
            f"`patches` declaration (it has {len(spec['inputs'])} input(s), "
            f"{len(patches)} patches)", hint="use a CNN stage such as `architecture cnn`")
    n, k = spec["target_dims"][0], patches[0]["dims"][1]
    if tuple(spec["dims"]["a"]) != (n, k):
        raise SemanticError(
            f"model {spec['model']}: the layer is A[{', '.join(spec['dims']['a'])}], but a "
            f"layerwise stage passes on activations over the patch grid: A[{n}, {k}]",
            hint="declare `layer A[n, k] = X[n, k, i] * W1[i]` as in the cnn architecture")


def grid(spec, height: int, width: int) -> tuple[int, int]:
    """Patch positions along each axis (K = oh * ow, row-major, builders.conv_out)."""
    p = spec["patches"][0]
    out = lambda s: (s + 2 * p["padding"] - p["kernel"]) // p["stride"] + 1  # noqa: E731
    return out(height), out(width)


def unit_activations(net, images) -> torch.Tensor:
    """[N, n, K]: each unit's activation D_k X_i u (eq. (24)) on the patch grid, through
    the network's own input checks, patches and gates (runtime/network.py)."""
    arrays = net._arrays((images,), {})    # its checked inputs, with patches built
    A = run_terms(net.spec["layer"], dict(arrays, W1=net.W1), {"W1": UNIT}, UNIT)
    return unit_outputs(net, A, arrays)


def representation(net, images, downsample="average:1", scale: float = 1.0) -> torch.Tensor:
    """The latent image of `images` [n, ch, h, w]: [n, N, oh, ow] down-sampled (module doc;
    `downsample` as downsample.parse reads it, e.g. 2 or "invertible")."""
    images = torch.as_tensor(images)
    oh, ow = grid(net.spec, *images.shape[2:])
    parts = []
    with torch.no_grad():
        for start in range(0, images.shape[0], CHUNK):
            H = unit_activations(net, images[start:start + CHUNK])      # [N, b, K]
            H = H.permute(1, 0, 2).reshape(H.shape[1], H.shape[0], oh, ow)
            parts.append(ds.apply(downsample, H) / scale)
    return torch.cat(parts).cpu()      # the next stage's data (bind reads numpy)
