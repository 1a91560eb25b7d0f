"""Predict functions for serving that skip scikit-learn's per-call work where it dominates.

With its array-API and dataframe-library dispatch, scikit-learn spends about 0.15 ms per
LogisticRegression ``predict`` call on checks and look-ups around one small matrix product. A
100-tree random forest takes about 7 ms per call even on one row, and about 9 ms on 64: for
every tree scikit-learn checks the fitted state and the input again and goes through joblib,
while the tree walks themselves take microseconds. Serving has already checked each request
against the signature (width, numbers, finiteness), so for linear models it computes the same
matrix product directly, and for forests of decision trees it merges the trees into one and
predicts small batches with one compiled call (about 30x faster than the forest on one row),
large ones with a call per tree, summing in the forest's order either way.

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
            predict = _forest_regressor(model, example)
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
    """The trees of a fitted forest merged into one tree, so a batch takes one compiled call.

    Below a balanced set of splits on an extra column, the tree's index, hang the forest's
    trees, unchanged (missing values go where each split sends them). Each row is repeated once
    per tree with that index appended, and one ``predict`` of the merged tree gives every
    tree's leaf value for every row: 15 us for one row through 100 trees, against 100 calls of
    ``tree_.predict`` (5 us each). The repeated rows cost memory and time per row, so batches
    over ``MERGED_ROWS`` go back to one call per tree. Sums run in the forest's order (an
    accumulation over the trees, not numpy's pairwise sum), so they round exactly as the
    forest's own do.
    """

    MERGED_ROWS = 128

    def __init__(self, model: Any, width: int) -> None:
        self.trees = [estimator.tree_ for estimator in model.estimators_]
        self.width = width  # leaf values kept per tree: classes, or 1 for a regressor
        self.merged = _merge(self.trees)
        self.tree_ids = np.arange(len(self.trees), dtype=np.float32)

    def mean(self, X: np.ndarray) -> np.ndarray:
        """The average of the trees' leaf values for each row: (rows, width)."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        total = self._merged_sum(X32) if len(X32) <= self.MERGED_ROWS else self._tree_sum(X32)
        total /= len(self.trees)
        return total

    def agrees(self, example: np.ndarray) -> bool:
        """Whether both ways give the same sums on ``example``."""
        X32 = np.ascontiguousarray(example, dtype=np.float32)
        return np.array_equal(self._merged_sum(X32), self._tree_sum(X32))

    def _merged_sum(self, X32: np.ndarray) -> np.ndarray:
        # Tree-major: the copies of all rows for tree 0, then for tree 1, ...; consecutive
        # walks take the same path through the routing splits and the same tree's nodes, and
        # the sum over trees adds whole (rows, width) blocks.
        rows, columns = X32.shape
        trees = len(self.trees)
        repeated = np.empty((trees, rows, columns + 1), dtype=np.float32)
        repeated[:, :, :columns] = X32
        repeated[:, :, columns] = self.tree_ids[:, None]
        leaves = self.merged.predict(repeated.reshape(trees * rows, columns + 1))
        return np.add.accumulate(leaves[:, : self.width].reshape(trees, rows, self.width))[-1]

    def _tree_sum(self, X32: np.ndarray) -> np.ndarray:
        total = np.zeros((len(X32), self.width), dtype=np.float64)
        for tree in self.trees:
            total += tree.predict(X32)[:, : self.width]
        return total


def _merge(trees: list[Any]) -> Any:
    """One scikit-learn ``Tree`` holding ``trees`` under splits on a last, extra feature (the
    tree's index): the split between trees ``lo..mid-1`` and ``mid..hi-1`` asks
    ``index <= mid - 0.5``."""
    from sklearn.tree._tree import Tree

    states = [tree.__getstate__() for tree in trees]
    columns = trees[0].n_features
    routers = len(trees) - 1  # a balanced binary tree over the trees' indexes, first in order
    starts = routers + np.cumsum([0] + [state["node_count"] for state in states])
    nodes = np.zeros(starts[-1], dtype=states[0]["nodes"].dtype)
    for state, first in zip(states, starts[:-1], strict=True):
        part = state["nodes"].copy()
        inner = part["left_child"] >= 0
        part["left_child"][inner] += first
        part["right_child"][inner] += first
        nodes[first:first + len(part)] = part
    free = iter(range(routers))

    def route(lo: int, hi: int) -> int:  # the node that sends index lo..hi-1 to its tree
        if hi - lo == 1:
            return int(starts[lo])
        node, mid = next(free), (lo + hi) // 2
        nodes["feature"][node], nodes["threshold"][node] = columns, mid - 0.5
        nodes["left_child"][node], nodes["right_child"][node] = route(lo, mid), route(mid, hi)
        return node

    route(0, len(trees))
    values = np.concatenate([np.zeros((routers, *states[0]["values"].shape[1:])),
                             *(state["values"] for state in states)])
    merged = Tree(columns + 1, np.asarray(trees[0].n_classes, dtype=np.intp),
                  trees[0].n_outputs)
    depth = int(np.ceil(np.log2(len(trees)))) + max(tree.max_depth for tree in trees)
    merged.__setstate__({**states[0], "max_depth": depth, "node_count": len(nodes),
                         "nodes": nodes, "values": values})
    return merged


def _forest_classifier(model: Any, example: np.ndarray) -> Predict | None:
    forest, classes = _Forest(model, int(model.n_classes_)), model.classes_
    if not forest.agrees(example) or not np.allclose(
            forest.mean(example), model.predict_proba(example), rtol=1e-9, atol=1e-12):
        return None

    def predict(X: np.ndarray) -> np.ndarray:
        return classes.take(np.argmax(forest.mean(X), axis=1), axis=0)  # type: ignore[no-any-return]

    return predict


def _forest_regressor(model: Any, example: np.ndarray) -> Predict | None:
    forest = _Forest(model, 1)
    if not forest.agrees(example):
        return None

    def predict(X: np.ndarray) -> np.ndarray:
        return forest.mean(X)[:, 0]

    return predict
