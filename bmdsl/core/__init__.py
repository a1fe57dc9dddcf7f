"""Layer 1: what every stage uses: errors, spans, limits, memory budget and footprints,
logging, the literal gate to emitted code, the output-file rule, einsum specs, the version."""
