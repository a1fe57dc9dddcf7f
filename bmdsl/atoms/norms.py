"""The vector-norm registry (C and R of the regularizer): defined in the kernel
(bmdsl/kernel/norms.py) so that the emitted modules carry the same forms."""
from ..kernel.norms import NORMS, VectorNorm, get_norm

__all__ = ["VectorNorm", "NORMS", "get_norm"]
