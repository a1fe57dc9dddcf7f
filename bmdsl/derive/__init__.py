"""Layer 5, Model -> Derivation: the convex program, D-norms, ReLU cones, patterns,
theorems, and the derivation as text and LaTeX."""
