"""Predict functions for serving that skip scikit-learn's per-call work where it dominates.

With its array-API and dataframe-library dispatch, scikit-learn spends about 0.15 ms per
LogisticRegression ``predict`` call on checks and look-ups around one small matrix product. A
100-tree random forest takes about 7 ms per call even on one row, and about 9 ms on 64: for
every tree scikit-learn checks the fitted state and the input again and goes through joblib,
while the tree walks themselves take microseconds. Serving has already checked each request
against the signature (width, numbers, finiteness), so for linear models it computes the same
matrix product directly, and for forests of decision trees it calls each tree's compiled
``tree_.predict`` and averages as the forest does (about 15x faster).

``shortcut(model, example)`` returns such a function only when it reproduces the model's own
outputs on the version's example rows (class probabilities, not just labels); anything else,
including estimators that override these methods and multi-output forests, keeps
``model.predict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def shortcut(model: Any, example: np.ndarray) -> Predict | None:
    """A faster ``predict`` for ``model`` that agrees with it on ``example``, or None."""
    try:
        from sklearn.ensemble import (
            ExtraTreesClassifier,
            ExtraTreesRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
        )
        from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
        from sklearn.linear_model._base import LinearClassifierMixin
    except ImportError:
        return None
    kind = type(model)
    if _inherits(kind, "predict", LinearClassifierMixin) and \
            _inherits(kind, "decision_function", LinearClassifierMixin):
        return _checked(model, _linear_classifier(model), example)
    if kind in (LinearRegression, Ridge, Lasso, ElasticNet):
        return _checked(model, _linear(model), example)
    if getattr(model, "n_outputs_", None) != 1 or not getattr(model, "estimators_", None):
        return None
    try:
        if kind in (RandomForestClassifier, ExtraTreesClassifier):
            proba = _forest_proba(model)
            if not np.allclose(proba(example), model.predict_proba(example), rtol=1e-9,
                               atol=1e-12):
                return None
            classes = model.classes_

            def predict(X: np.ndarray) -> np.ndarray:
                return classes.take(np.argmax(proba(X), axis=1), axis=0)  # type: ignore[no-any-return]

        elif kind in (RandomForestRegressor, ExtraTreesRegressor):
            predict = _forest_mean(model)
        else:
            return None
        expected = np.asarray(model.predict(example))
        found = predict(example)
        if expected.dtype.kind == "f":
            same = np.allclose(found, expected, rtol=1e-9, atol=1e-12)
        else:
            same = np.array_equal(found, expected)
        return predict if same else None
    except Exception:  # an estimator these shortcuts do not know: use its own predict
        return None


def _inherits(kind: type, method: str, base: type) -> bool:
    """Whether ``kind`` uses ``base``'s own ``method``, not an override."""
    return issubclass(kind, base) and getattr(kind, method, None) is getattr(base, method)


def _checked(model: Any, candidate: Predict | None, example: np.ndarray) -> Predict | None:
    """``candidate`` if it gives exactly ``model.predict``'s answers on ``example``."""
    if candidate is None:
        return None
    try:
        same = np.array_equal(candidate(example), np.asarray(model.predict(example)))
    except Exception:
        return None
    return candidate if same else None


def _linear_classifier(model: Any) -> Predict | None:
    """``LinearClassifierMixin.predict`` without its per-call checks: the sign of the one
    score, or the arg-max of several."""
    coef, intercept, classes = getattr(model, "coef_", None), model.intercept_, model.classes_
    if not isinstance(coef, np.ndarray) or coef.ndim != 2:
        return None
    coef_t = coef.T

    def predict(X: np.ndarray) -> np.ndarray:
        scores = X @ coef_t + intercept
        if scores.shape[1] == 1:
            return classes.take((scores[:, 0] > 0).astype(np.intp), axis=0)  # type: ignore[no-any-return]
        return classes.take(np.argmax(scores, axis=1), axis=0)  # type: ignore[no-any-return]

    return predict


def _linear(model: Any) -> Predict | None:
    """``LinearModel.predict``: ``X @ coef_.T + intercept_``."""
    coef, intercept = getattr(model, "coef_", None), model.intercept_
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2):
        return None
    weights = coef if coef.ndim == 1 else coef.T

    def predict(X: np.ndarray) -> np.ndarray:
        return X @ weights + intercept  # type: ignore[no-any-return]

    return predict


def _forest_proba(model: Any) -> Predict:
    trees = [estimator.tree_ for estimator in model.estimators_]
    n_classes = int(model.n_classes_)

    def proba(X: np.ndarray) -> np.ndarray:
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        total = np.zeros((len(X32), n_classes), dtype=np.float64)
        for tree in trees:  # in the forest's order, so sums round as its own do
            total += tree.predict(X32)[:, :n_classes]
        total /= len(trees)
        return total

    return proba


def _forest_mean(model: Any) -> Predict:
    trees = [estimator.tree_ for estimator in model.estimators_]

    def predict(X: np.ndarray) -> np.ndarray:
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        total = np.zeros(len(X32), dtype=np.float64)
        for tree in trees:
            total += tree.predict(X32)[:, 0]
        total /= len(trees)
        return total

    return predict
