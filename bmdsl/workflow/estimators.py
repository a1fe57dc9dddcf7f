"""scikit-learn estimators: a bmdsl model trained through its BM factorization.

    from bmdsl.workflow.estimators import ConvexNetworkClassifier
    clf = ConvexNetworkClassifier("mlp", beta=1e-3).fit(X, y)     # integer or string labels
    clf.predict(X_new); clf.predict_proba(X_new); clf.score(X_new, y_new)
    clf.certificate_.gap_bound                                    # Theorem 3.4 / Fenchel bound

The model is a shipped model's name, a `.bm` path or a checked `bmdsl.Model` with one data
input X [n, d] and a target [n, c] (one-hot classes, or c outputs) or [n] (one output).
Hyper-parameters left at None keep the model file's values; `beta`, `loss`, `activation`,
`patterns`, `units` override them, so `GridSearchCV` can search over beta; `bias=True`
adds a first-layer bias (penalized) and a free output bias, `bias=False` removes them.
Fitting derives the convex program, binds it to (X, y), trains the BM factorization
(Sahiner et al. 2024, eq. (14)/(18)) with bmdsl's default method and warm start, certifies
it, and keeps the exported network for prediction on new data.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.errors import BmdslError


class _ConvexNetwork(BaseEstimator):
    def __init__(self, model="mlp", *, beta=None, loss=None, activation=None, patterns=None,
                 units=None, bias=None, method="auto", max_steps=None, time_limit=None,
                 random_state=0, device=None):
        self.model, self.beta, self.loss, self.activation = model, beta, loss, activation
        self.bias = bias
        self.patterns, self.units, self.method = patterns, units, method
        self.max_steps, self.time_limit = max_steps, time_limit
        self.random_state, self.device = random_state, device

    # -- the model with this estimator's overrides ---------------------------------------------
    def _model(self):
        from ..check.loading import load
        model = self.model if hasattr(self.model, "derive") else load(self.model)
        seed = None if self.random_state is None else int(self.random_state)
        if self.activation is not None or self.patterns is not None or seed is not None:
            model = model.with_activation(self.activation or model.activation.name,
                                          self.patterns, seed)
        if self.units is not None:
            model = model.with_units(self.units)
        if self.beta is not None:
            model = model.with_beta(self.beta)
        if self.loss is not None:
            model = model.with_loss(self.loss)
        if self.bias is not None:     # True: a hidden and an output bias (bias.py)
            model = model.with_bias(hidden=bool(self.bias), output=bool(self.bias))
        data = [t for t in model.inputs if t.name != model.activation.gates]
        if len(data) != 1 or len(data[0].dims) != 2 or len(model.target.dims) not in (1, 2):
            raise ValueError(
                f"model {model.name!r} does not take a matrix X [n, d] and a target [n] or "
                f"[n, c]: scikit-learn estimators need one data input of rank 2 "
                f"(e.g. the shipped 'mlp' or 'relu' models)")
        return model, data[0].name

    def _fit_target(self, X, Y):
        from ..trainer import Trainer
        model, x_name = self._model()
        if model.target.dims and len(model.target.dims) == 1 and Y.ndim == 2:
            if Y.shape[1] != 1:
                raise ValueError(f"model {model.name!r} has one output, y has {Y.shape[1]}")
            Y = Y[:, 0]
        elif len(model.target.dims) == 2 and Y.ndim == 1:
            Y = Y[:, None]
        try:
            bound = model.derive().bind({x_name: X, model.target.name: Y})
            trainer = Trainer(bound, device=self.device, method=self.method,
                              seed=0 if self.random_state is None else int(self.random_state),
                              progress=False)
            result = trainer.fit(self.max_steps, time_limit=self.time_limit)
        except BmdslError as exc:                # scikit-learn expects a ValueError
            raise ValueError(exc.render()) from None
        self.network_, self.result_ = trainer.network(), result
        self.certificate_, self.objective_ = result.certificate, result.objective
        self.model_, self.input_name_ = model, x_name
        return self

    def _scores(self, X) -> np.ndarray:
        import torch
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with torch.no_grad():
            out = self.network_(**{self.input_name_: X})
        return out.detach().cpu().double().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class ConvexNetworkRegressor(RegressorMixin, _ConvexNetwork):
    """Regression with a convex two-layer network (default model: 'mlp', squared loss)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True     # y [n, c] trains all c outputs at once
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        return self._fit_target(X, y)

    def predict(self, X):
        s = self._scores(X)
        return s.reshape(len(s), -1)[:, 0] if self._y_1d else s.reshape(len(s), -1)


class ConvexNetworkClassifier(ClassifierMixin, _ConvexNetwork):
    """Classification with a convex two-layer network.

    A target [n, c] gets one-hot rows (c = number of classes; squared or cross_entropy); a
    scalar target [n] takes two classes as -1/+1 (squared or logistic). `predict_proba`
    applies the loss's link (softmax for cross_entropy, sigmoid for logistic)."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the target has {len(self.classes_)} class; need at least 2")
        model, _ = self._model()
        if len(model.target.dims) == 1:
            if len(self.classes_) != 2:
                raise ValueError(f"model {model.name!r} has one output: it separates two classes, "
                                 f"not {len(self.classes_)}; use a model with a target [n, c]")
            Y = np.where(codes == 1, 1.0, -1.0)
        else:
            Y = np.eye(len(self.classes_))[codes]
        return self._fit_target(X, Y)

    def decision_function(self, X):
        """Scores: [n, classes], or for two classes [n] (positive favours classes_[1])."""
        s = self._scores(X)
        if s.ndim == 2 and s.shape[1] == 2:
            return s[:, 1] - s[:, 0]
        return s

    def predict(self, X):
        s = self._scores(X)
        if s.ndim == 1:
            return self.classes_[(s >= 0).astype(int)]
        return self.classes_[np.argmax(s, axis=1)]

    def predict_proba(self, X):
        """The loss's link of the scores; without one (squared loss), softmax of the scores:
        it orders classes as `predict` does but is not a calibrated probability."""
        from ..kernel.losskernel import loss_logsumexp as _logsumexp, loss_sigmoid as _sigmoid
        s = self._scores(X)
        link = getattr(self.model_loss_, "link", None)
        if s.ndim == 1:
            p1 = (link or _sigmoid)(s)
            return np.stack([1 - p1, p1], axis=1)
        return link(s) if link is not None else np.exp(s - _logsumexp(s)[:, None])

    @property
    def model_loss_(self):
        from ..atoms.losses import get_loss
        check_is_fitted(self, "network_")
        return get_loss(self.model_.loss.name, **dict(self.model_.loss.params))
