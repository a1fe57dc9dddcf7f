"""scikit-learn's estimator contract for bmdsl's estimators (bmdsl/workflow/estimators.py).

Every check of `sklearn.utils.estimator_checks` runs; none is expected to fail (the two
pandas/array-API checks skip themselves when those libraries are absent). Then the
estimators inside Pipeline, cross_val_score and GridSearchCV over beta, and their
certificate and one-hot/binary encodings."""
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_blobs
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from bmdsl.workflow.estimators import ConvexNetworkClassifier, ConvexNetworkRegressor

FAST = dict(patterns=6, max_steps=40)


@parametrize_with_checks([ConvexNetworkClassifier("mlp", **FAST),
                          ConvexNetworkRegressor("mlp", **FAST)])
def test_sklearn_contract(estimator, check, one_torch_thread):
    check(estimator)


def test_classifier_learns_and_certifies(one_torch_thread):
    X, y = make_blobs(150, centers=3, random_state=1)
    labels = np.array(["a", "b", "c"])[y]                   # string labels
    clf = ConvexNetworkClassifier("mlp", **FAST).fit(X, labels)
    assert set(clf.classes_) == {"a", "b", "c"}
    assert clf.score(X, labels) > 0.9
    proba = clf.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    assert clf.certificate_.gap_bound < 1e-3                # certified near-optimal


def test_scalar_output_model_is_binary(one_torch_thread):
    X, y = make_blobs(80, centers=2, random_state=2)
    clf = ConvexNetworkClassifier("relu", patterns=6, max_steps=40).fit(X, y)
    assert clf.decision_function(X).shape == (80,)
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="two classes"):
        clf.fit(*make_blobs(60, centers=3, random_state=0))


def test_pipeline_cross_validation_and_grid_search_over_beta(one_torch_thread):
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:120, :4], (y[:120] - y[:120].mean()) / y[:120].std()
    pipe = make_pipeline(StandardScaler(), ConvexNetworkRegressor("mlp", **FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    grid = GridSearchCV(pipe, {"convexnetworkregressor__beta": [1e-3, 1e-1, 10.0]}, cv=3)
    grid.fit(X, y)
    best = grid.best_params_["convexnetworkregressor__beta"]
    assert grid.best_estimator_[-1].model_.regularizer.beta == best   # refit at the best beta
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_beta_override_changes_the_program(one_torch_thread):
    X, y = make_blobs(60, centers=2, random_state=3)
    a = ConvexNetworkRegressor("mlp", beta=1e-3, **FAST).fit(X, y.astype(float))
    b = ConvexNetworkRegressor("mlp", beta=1e1, **FAST).fit(X, y.astype(float))
    assert a.model_.regularizer.beta == 1e-3 and b.model_.regularizer.beta == 10.0
    assert b.objective_ > a.objective_


def test_rejects_models_without_a_matrix_input():
    with pytest.raises(ValueError, match="one data input of rank 2"):
        ConvexNetworkRegressor("models/cnn.bm").fit(np.ones((4, 2)), np.ones(4))
