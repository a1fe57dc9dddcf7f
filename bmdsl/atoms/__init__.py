"""Layer 3, the registries: activations, losses, vector norms, norm pairs, biases, builders
(im2col, pooling), the conic solver. Each entry declares its capabilities; code asks the
entry, never the name."""
