"""Layer 9, the researcher's workflow: predictions and metrics from trained weights,
regularization paths, scikit-learn estimators, figures."""
