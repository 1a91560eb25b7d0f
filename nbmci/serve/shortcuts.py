"""Predict functions for serving that skip scikit-learn's per-call work where it dominates.

With its array-API and dataframe-library dispatch, scikit-learn spends about 0.15 ms per
LogisticRegression ``predict`` call on checks and look-ups around one small matrix product. A
100-tree random forest takes about 7 ms per call even on one row, and about 9 ms on 64: for
every tree scikit-learn checks the fitted state and the input again and goes through joblib,
while the tree walks themselves take microseconds. Serving has already checked each request
against the signature (width, numbers, finiteness), so for linear models it computes the same
matrix product directly, and for forests of decision trees it walks all trees at once with
numpy for small batches (about 8x faster on one row than the forest) and calls each tree's
compiled ``tree_.predict`` for large ones, averaging in the forest's order either way.

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
            predict = _forest_classifier(model, example)
        elif kind in (RandomForestRegressor, ExtraTreesRegressor):
            predict = _forest_regressor(model)
        else:
            return None
        if predict is None:
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


class _Forest:
    """The trees of a fitted forest as flat arrays, walked together.

    One row through 100 trees costs about 100 calls of ``tree_.predict`` (5 us each); walking
    every tree at once, one level per step of numpy, costs ``max_depth`` steps (about 60 us for
    one row, 160 us for 16). Large batches go back to the trees' own compiled loops, which cost
    little per row, and so do rows with missing values, which the trees route by their own
    rules. Sums run in the forest's order (a cumulative sum over the trees), so they round
    exactly as the forest's own do.
    """

    def __init__(self, model: Any, width: int) -> None:
        self.trees = [estimator.tree_ for estimator in model.estimators_]
        self.width = width  # leaf values kept per tree: classes, or 1 for a regressor
        starts = np.cumsum([0] + [tree.node_count for tree in self.trees])
        self.depth = max(tree.max_depth for tree in self.trees)
        # Node k of the flattened forest sits at 2k and 2k + 1 of these arrays, so a walk step
        # is ``children[k2 + went_right]`` with k2 = 2k; a leaf points to itself either way.
        left, right = [], []
        for tree, first in zip(self.trees, starts[:-1], strict=True):
            own = np.arange(tree.node_count)
            left.append(np.where(tree.children_left < 0, own, tree.children_left) + first)
            right.append(np.where(tree.children_right < 0, own, tree.children_right) + first)
        self.children = 2 * np.stack([np.concatenate(left), np.concatenate(right)], 1).ravel()
        feature = np.concatenate([tree.feature for tree in self.trees]).astype(np.intp)
        self.feature = np.repeat(np.where(feature < 0, 0, feature), 2)
        self.threshold = np.repeat(np.concatenate([tree.threshold for tree in self.trees]), 2)
        self.roots = 2 * starts[:-1]
        self.value = np.concatenate([tree.value[:, 0, :width] for tree in self.trees])

    def mean(self, X: np.ndarray) -> np.ndarray:
        """The average of the trees' leaf values for each row: (rows, width)."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        if len(X32) * self.depth > _WALK_LIMIT or np.isnan(X32).any():
            total = np.zeros((len(X32), self.width), dtype=np.float64)
            for tree in self.trees:
                total += tree.predict(X32)[:, : self.width]
        else:
            total = self._walk(X32)
        total /= len(self.trees)
        return total

    def _walk(self, X32: np.ndarray) -> np.ndarray:
        rows, columns = X32.shape
        values = X32.astype(np.float64).ravel()  # compared in double, as the trees compare
        node = np.repeat(self.roots, rows)  # tree-major: tree t, row r at t * rows + r
        row_start = np.tile(np.arange(rows) * columns, len(self.trees))
        for _ in range(self.depth):
            at = self.feature.take(node)
            if rows > 1:
                at += row_start
            node = self.children.take(node + (values.take(at) > self.threshold.take(node)))
        leaves = self.value.take(node >> 1, axis=0).reshape(len(self.trees), rows, self.width)
        return np.cumsum(leaves, axis=0)[-1]


_WALK_LIMIT = 640  # rows x depth beyond which the trees' own loops are faster (either way
# the cost grows with the number of trees)


def _forest_classifier(model: Any, example: np.ndarray) -> Predict | None:
    forest, classes = _Forest(model, int(model.n_classes_)), model.classes_
    if not np.allclose(forest.mean(example), model.predict_proba(example), rtol=1e-9,
                       atol=1e-12):
        return None

    def predict(X: np.ndarray) -> np.ndarray:
        return classes.take(np.argmax(forest.mean(X), axis=1), axis=0)  # type: ignore[no-any-return]

    return predict


def _forest_regressor(model: Any) -> Predict:
    forest = _Forest(model, 1)

    def predict(X: np.ndarray) -> np.ndarray:
        return forest.mean(X)[:, 0]

    return predict
