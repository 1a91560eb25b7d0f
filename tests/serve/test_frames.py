"""Models fit on DataFrames: fed bare arrays when that predicts the same, else kept on frames."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nbmci.serve.host import ModelHost
from tests.serve.conftest import commit, wait_for


def test_frame_models_are_fed_arrays_only_when_that_predicts_the_same(
        project: Any, iris_frame: tuple[Any, Any]) -> None:
    X, y = iris_frame
    plain = LogisticRegression(max_iter=500).fit(X, y)
    by_name = make_pipeline(  # selects its columns by name: needs the DataFrame
        ColumnTransformer([("petals", StandardScaler(), ["petal length (cm)",
                                                         "petal width (cm)"])]),
        LogisticRegression(max_iter=500)).fit(X, y)
    for name, model in (("plain", plain), ("by_name", by_name)):
        commit(project, model, X, y, name=name)
        project.publish(f"{name}@1", force=True)
    host = ModelHost(project, ("plain", "by_name"), poll_interval=0.05)
    host.start()
    try:
        wait_for(lambda: set(host.live) == {"plain", "by_name"}
                 or host.state("by_name").failed or host.state("plain").failed)
        assert not host.state("by_name").failed and not host.state("plain").failed
        matrix = X.to_numpy(dtype=np.float64)
        arrays, frames = host.get("plain"), host.get("by_name")
        assert arrays.frame_columns is None
        assert frames.frame_columns == tuple(X.columns)
        assert np.array_equal(arrays.predict(matrix), plain.predict(X))
        assert np.array_equal(frames.predict(matrix), by_name.predict(X))
    finally:
        host.stop()
