"""Layer 4, AST -> checked Model: declarations, equations, architecture splicing, the
semantic pass, the lifted tensor networks (Sahiner et al. 2024, Lemma 3.1), loading."""
