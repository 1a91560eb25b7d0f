"""Serving shortcuts for forests: same outputs as the model's own predict, or no shortcut."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from nbmci.serve.shortcuts import shortcut


def _classification(labels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(600, 8, n_informative=5, n_classes=3, random_state=0)
    return X, (np.asarray(labels)[y] if labels is not None else y)


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_forest_classifiers_predict_exactly_as_the_model(kind: Any) -> None:
    X, y = _classification(["setosa", "versicolor", "virginica"])
    model = kind(n_estimators=30, random_state=0).fit(X[:400], y[:400])
    fast = shortcut(model, X[:5])
    assert fast is not None
    held_out = X[400:]
    for rows in (1, 7, 64, 200):  # merged into one tree up to 128 rows, tree by tree beyond
        for start in range(0, len(held_out), rows):
            batch = held_out[start:start + rows]
            assert np.array_equal(fast(batch), model.predict(batch))
    assert fast(held_out[:1]).dtype == model.predict(held_out[:1]).dtype


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_forest_regressors_predict_as_the_model(kind: Any) -> None:
    X, y = make_regression(500, 6, random_state=0)
    model = kind(n_estimators=25, random_state=0).fit(X[:300], y[:300])
    fast = shortcut(model, X[:5])
    assert fast is not None
    for rows in (1, 9, 200):  # the trees' leaves summed in the forest's order: exactly equal
        for start in range(300, len(X), rows):
            batch = X[start:start + rows]
            np.testing.assert_array_equal(fast(batch), model.predict(batch))


def test_missing_values_follow_the_trees() -> None:
    X, y = _classification()
    X[::7, 2] = np.nan  # scikit-learn's forests route NaN at each split
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    fast = shortcut(model, X[:10])
    assert fast is not None
    for rows in (1, 100, 600):  # merged into one tree up to 128 rows, tree by tree beyond
        for start in range(0, 600, rows):
            batch = X[start:start + rows]
            assert np.array_equal(fast(batch), model.predict(batch))


@pytest.mark.parametrize("trees", [1, 2, 3])
def test_forests_of_a_few_trees(trees: int) -> None:
    X, y = _classification()
    model = RandomForestClassifier(n_estimators=trees, random_state=0).fit(X[:400], y[:400])
    fast = shortcut(model, X[:5])
    assert fast is not None
    assert np.array_equal(fast(X[400:500]), model.predict(X[400:500]))


@pytest.mark.parametrize("labels", [None, ["no", "yes"], ["a", "b", "c"]])
@pytest.mark.parametrize("kind", [LogisticRegression, SGDClassifier, LinearSVC])
def test_linear_classifiers_predict_exactly_as_the_model(kind: Any, labels: Any) -> None:
    X, y = _classification()
    if labels is not None and len(labels) == 2:
        y = (y > 0).astype(int)
    if labels is not None:
        y = np.asarray(labels)[y]
    model = kind(random_state=0).fit(X[:400], y[:400])
    fast = shortcut(model, X[:5])
    assert fast is not None
    assert np.array_equal(fast(X[400:]), model.predict(X[400:]))
    assert np.array_equal(fast(X[400:401]), model.predict(X[400:401]))


@pytest.mark.parametrize("kind", [LinearRegression, Ridge, Lasso, ElasticNet])
@pytest.mark.parametrize("outputs", [1, 2])
def test_linear_regressors_predict_as_the_model(kind: Any, outputs: int) -> None:
    X, y = make_regression(300, 6, n_targets=outputs, random_state=0)
    model = kind().fit(X[:200], y[:200])
    fast = shortcut(model, X[:5])
    assert fast is not None
    np.testing.assert_array_equal(fast(X[200:]), model.predict(X[200:]))


def test_other_models_keep_their_own_predict() -> None:
    X, y = _classification()

    class Tweaked(RandomForestClassifier):
        pass

    class Shifted(LogisticRegression):
        def predict(self, X: Any) -> Any:
            return super().predict(X)

    Y = np.stack([y, y], axis=1)
    assert shortcut(KNeighborsClassifier().fit(X, y), X[:5]) is None
    assert shortcut(Shifted(max_iter=500).fit(X, y), X[:5]) is None
    assert shortcut(Tweaked(n_estimators=5).fit(X, y), X[:5]) is None
    assert shortcut(RandomForestClassifier(n_estimators=5).fit(X, Y), X[:5]) is None  # 2 outputs
    assert shortcut(RandomForestClassifier(n_estimators=5), X[:5]) is None  # not fitted


def test_a_shortcut_that_disagrees_on_the_example_rows_is_not_used() -> None:
    X, y = _classification()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    model.predict_proba = lambda rows: np.full((len(rows), 3), 1 / 3)  # not what the trees say
    assert shortcut(model, X[:5]) is None
    linear = LogisticRegression(max_iter=500).fit(X, y)
    linear.predict = lambda rows: np.zeros(len(rows), dtype=int)  # not what the weights say
    assert shortcut(linear, X[:50]) is None
