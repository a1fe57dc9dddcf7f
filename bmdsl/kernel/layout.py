"""Fixed linear maps of the declared layout in numpy: image patches (im2col, Sahiner et al.
2024, eq. (5), (22)) and the pooling matrices P [a, K] (eq. (22)-(24))."""
import numpy as np


def conv_out(size, kernel, stride, padding):
    """Number of kernel positions along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def extract_patches(images, kernel, stride, padding):
    """[n, ch, H, W] -> [n, K, ch*kernel*kernel]; K row-major over the output grid, each
    patch flattened as (channel, row, column)."""
    n, ch, H, W = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = conv_out(H, kernel, stride, padding), conv_out(W, kernel, stride, padding)
    out = np.empty((n, oh * ow, ch * kernel * kernel), dtype=images.dtype)
    for r in range(oh):  # loops over the small output grid only; data axes stay vectorized
        for c in range(ow):
            block = padded[:, :, r * stride:r * stride + kernel, c * stride:c * stride + kernel]
            out[:, r * ow + c, :] = block.reshape(n, -1)
    return out


def unfold_patches(images, kernel, stride, padding):
    """extract_patches for a torch tensor on any device (differentiable): torch's unfold."""
    import torch.nn.functional as tf
    return tf.unfold(images, kernel_size=kernel, stride=stride, padding=padding).transpose(1, 2)


def average_pool(grid, args):
    """Non-overlapping window averages over a row-major grid; partial windows dropped."""
    (rows, cols), (wr, wc) = grid, args["window"]
    orows, ocols = rows // wr, cols // wc
    P = np.zeros((orows * ocols, rows * cols))
    for a_r in range(orows):
        for a_c in range(ocols):
            for r in range(a_r * wr, (a_r + 1) * wr):
                for c in range(a_c * wc, (a_c + 1) * wc):
                    P[a_r * ocols + a_c, r * cols + c] = 1.0 / (wr * wc)
    return P


def global_pool(grid, args):
    """The mean over the whole grid (a = 1)."""
    return np.full((1, grid[0] * grid[1]), 1.0 / (grid[0] * grid[1]))


def adaptive_pool(grid, args):
    """Averages over a fixed grid of R x C cells whatever the input grid (torch's
    adaptive_avg_pool2d): cell i spans rows floor(i rows / R) .. ceil((i + 1) rows / R) - 1,
    so a = R C on every stage of a layerwise network (the 2 x 2 head of Belilovsky et al.
    2019, used by Sahiner et al. 2024, appendix C.2)."""
    (rows, cols), (R, C) = grid, args["cells"]
    span = lambda i, n, m: range((i * n) // m, -((-(i + 1) * n) // m))  # noqa: E731
    P = np.zeros((R * C, rows * cols))
    for a_r in range(R):
        for a_c in range(C):
            cells = [r * cols + c for r in span(a_r, rows, R) for c in span(a_c, cols, C)]
            P[a_r * C + a_c, cells] = 1.0 / len(cells)
    return P


# pooling name -> matrix(grid (rows, cols), args) -> P [a, rows * cols]
POOL_MATRICES = {"average": average_pool, "global": global_pool, "adaptive": adaptive_pool}


def other_pools(used) -> set:
    """The names of the pooling functions a model with builders `used` never calls (an
    emitted module drops them from its table)."""
    used = set(used)
    return {f.__name__ for name, f in POOL_MATRICES.items() if name not in used}
