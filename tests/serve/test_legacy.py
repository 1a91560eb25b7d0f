"""Versions committed before input schemas and recorded outputs keep publishing and serving."""

from __future__ import annotations

from typing import Any

import skops.io as sio

from nbmci.api import Project
from nbmci.serve.app import create_app
from nbmci.serve.settings import ServeSettings
from tests.serve.conftest import FEATURES, ROW, fit, run_server, wait_for


def register_as_before(project: Project, model: Any, X: Any) -> str:
    """A version as nbmci wrote it before this change: a signature of float inputs, example
    rows as plain numbers, no schema, no recorded outputs, no servability check."""
    blob = sio.dumps(model)
    stored = project.store.put_bytes(blob)
    signature = {"inputs": [{"name": c, "dtype": "float64"} for c in X.columns],
                 "outputs": [{"name": "target", "dtype": "int64"}], "input_data": "X_train",
                 "output_data": "y_train", "classes": [0, 1, 2],
                 "example": {"columns": list(X.columns), "rows": X.head().to_numpy().tolist()}}
    row = {"message": "before schemas", "author": "someone", "model_digest": stored.digest,
           "model_format": "skops", "model_class": "sklearn.linear_model.LogisticRegression",
           "model_size": len(blob), "trusted": True,
           "trusted_types": sorted(sio.get_untrusted_types(data=blob)), "params": {},
           "metrics": {}, "signature": signature, "lineage": {}, "stored": {}}
    number = project.registry.add_version("old", row, [], [stored.digest], actor="someone")
    return f"old@{number}"


def test_a_version_from_before_schemas_publishes_and_serves(project: Project,
                                                            iris_frame: Any) -> None:
    X, y = iris_frame
    model = fit(X, y)
    ref = register_as_before(project, model, X)
    assert project.show(ref).servability.status == "unknown"
    project.publish(ref, force=True)
    with run_server(create_app(ServeSettings(poll_interval=0.05), project=project)) as running:
        wait_for(lambda: running.state.host.is_ready or running.state.host.state("old").failed)
        assert not running.state.host.state("old").failed
        with running.client() as client:
            answer = client.post("/invocations", json={"instances": [ROW]})
            assert answer.json()["predictions"] == model.predict(X.head(1)).tolist()
            assert X.head(1).to_numpy().tolist() == [ROW]
            meta = client.get("/v2/models/old").json()
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [(f, "FP64")
                                                                    for f in FEATURES]
    assert meta["outputs"][0]["datatype"] == "INT64"
