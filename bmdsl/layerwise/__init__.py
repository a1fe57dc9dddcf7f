"""Deep networks from convex stages: greedy layerwise training of two-layer convex CNNs,
each stage fed with the previous stage's BM latent representation (Sahiner et al. 2024,
section 4.2). See docs/layerwise.md."""
from .data import digits, read_images, split
from .network import LayerwiseNetwork
from .stages import LayerwiseResult, StageOptions, train_layerwise

__all__ = ["LayerwiseNetwork", "LayerwiseResult", "StageOptions", "digits", "read_images",
           "split", "train_layerwise"]
