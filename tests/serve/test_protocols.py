"""Both protocols, metadata, health, metrics and OpenAPI against a live server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.serve.conftest import FEATURES, ROW


def test_health_live_and_ready(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/1/ready").status_code == 200
    assert client.get("/ping").status_code == 200
    assert client.get("/v2").json()["name"] == "nbmci"


def test_v2_metadata_comes_from_the_signature(client: Any) -> None:
    meta = client.get("/v2/models/iris").json()
    assert meta["name"] == "iris" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert client.get("/v2/models/iris/versions/1").status_code == 200
    assert client.get("/v2/models/iris/versions/7").status_code == 404


def test_v2_infer_with_one_2d_tensor(client: Any) -> None:
    body = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                                    "data": [ROW, [6.7, 3.0, 5.2, 2.3]]}]}
    answer = client.post("/v2/models/iris/infer", json=body)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["model_name"] == "iris" and out["model_version"] == "1" and out["id"] == "r1"
    assert out["outputs"][0]["shape"] == [2] and out["outputs"][0]["data"] == [0, 2]
    assert out["outputs"][0]["datatype"] == "INT64"
    assert answer.headers["x-model-version"] == "1"


def test_v2_infer_with_one_tensor_per_input_flat_data(client: Any) -> None:
    inputs = [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
              for n, v in reversed(list(zip(FEATURES, ROW, strict=True)))]
    answer = client.post("/v2/models/iris/versions/1/infer", json={"inputs": inputs})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [0]
    flat = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [5, 3, 1, 0]}]}
    assert client.post("/v2/models/iris/infer", json=flat).status_code == 200


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": FEATURES, "data": [ROW]}},
    {"dataframe_split": {"columns": list(reversed(FEATURES)), "data": [ROW[::-1]]}},
    {"dataframe_records": [dict(zip(FEATURES, ROW, strict=True))]},
    {"instances": [ROW]},
    {"instances": [dict(zip(FEATURES, ROW, strict=True))]},
    {"inputs": [ROW]},
    {"inputs": {f: [v] for f, v in zip(FEATURES, ROW, strict=True)}},
])
def test_mlflow_invocations_formats(client: Any, body: dict[str, Any]) -> None:
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [0]}
    assert answer.headers["x-model-version"] == "1"


def test_mlflow_invocations_csv_and_model_query(client: Any) -> None:
    csv = ",".join(FEATURES) + "\n" + ",".join(map(str, ROW)) + "\n6.7,3.0,5.2,2.3\n"
    answer = client.post("/invocations?model=iris", content=csv,
                         headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [0, 2]}


def test_metrics_count_requests_versions_and_batches(client: Any) -> None:
    client.post("/invocations", json={"instances": [ROW]})
    text = client.get("/metrics").text
    assert 'nbmci_requests_total{model="iris",protocol="mlflow",status="200",version="1"}' in text
    assert 'nbmci_request_seconds_bucket{le="0.001",model="iris",status="200",version="1"}' \
        in text
    assert "nbmci_batch_rows_count" in text
    assert 'nbmci_live_version{model="iris"} 1.0' in text
    assert 'nbmci_swaps_total{model="iris"} 1.0' in text


def test_openapi_lists_the_routes(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/v2/models/{name}/infer", "/invocations", "/metrics"} <= set(spec["paths"])


def _request_series(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name in ("nbmci_requests", "nbmci_request_seconds"):
            for sample in family.samples:
                found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_request_counts_and_latency_histogram_add_up(client: Any) -> None:
    before = _request_series(client)
    for _ in range(3):
        assert client.post("/invocations", json={"instances": [ROW]}).status_code == 200
    good = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": ROW}]}
    for _ in range(2):
        assert client.post("/v2/models/iris/infer", json=good).status_code == 200
    assert client.post("/invocations", json={"instances": [ROW[:2]]}).status_code == 422
    after = _request_series(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"model": "iris", "version": "1", **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("nbmci_requests_total", protocol="mlflow", status="200") == 3
    assert grew("nbmci_requests_total", protocol="v2", status="200") == 2
    assert grew("nbmci_requests_total", protocol="mlflow", status="422") == 1
    assert grew("nbmci_request_seconds_count", status="200") == 5  # both protocols
    assert grew("nbmci_request_seconds_bucket", status="200", le="+Inf") == 5
    assert grew("nbmci_request_seconds_count", status="422") == 1
    assert grew("nbmci_request_seconds_sum", status="200") > 0
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in after.items()
                     if name == "nbmci_request_seconds_bucket"
                     and dict(labels)["status"] == "200")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
