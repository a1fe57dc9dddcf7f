"""A batched Cholesky factorization with a growing ridge, for the interior point's Newton
systems (interior.py), whose blocks rounding can make indefinite near the end of a run.
"""
import torch

RIDGE_MAX = 1.0      # relative ridge at most: beyond it the solve is not Newton's


def ridged_cholesky(B):
    """Batched Cholesky; a growing ridge where rounding made a block indefinite. Bounded:
    the ridge grows from 1e-14 to at most RIDGE_MAX times the block's largest diagonal
    entry (at least the smallest normal number, so a zero block gets a ridge too); a block
    still indefinite there, or one that is not finite, is a FloatingPointError naming the
    cause, never an endless loop."""
    if not bool(torch.isfinite(B).all()):
        raise FloatingPointError("interior point: the Newton system is not finite (the data's "
                                 "scale overflows float64; rescale the inputs and the target)")
    L, info = torch.linalg.cholesky_ex(B)
    ridge = 1e-14
    eye = torch.eye(B.shape[-1], dtype=B.dtype, device=B.device)
    scale = torch.diagonal(B, dim1=-2, dim2=-1).abs().amax(-1)[..., None, None]
    scale = scale.clamp_min(torch.finfo(B.dtype).tiny)
    while int(info.max()) > 0:
        if ridge > RIDGE_MAX:
            raise FloatingPointError(
                f"interior point: the Newton system stays indefinite with a ridge of "
                f"{RIDGE_MAX:g} times its diagonal (the data's scale is out of float64's "
                "reach; rescale the inputs and the target)")
        L, info = torch.linalg.cholesky_ex(B + ridge * scale * eye)
        ridge *= 10
    return L
