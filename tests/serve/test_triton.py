"""NVIDIA's own v2 client, ``tritonclient.http``, against the live server."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from tests.serve.conftest import FEATURES

tritonhttp = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def setup(serving: Any, iris_frame: Any) -> Any:
    project, running = serving
    client = tritonhttp.InferenceServerClient(url=running.url.removeprefix("http://"))
    X, _ = iris_frame
    rows = X.to_numpy(dtype=np.float64)[::7]  # 22 rows of all three classes
    expected = project.load("iris@1").predict(X.iloc[::7])
    yield client, rows, expected
    client.close()


def test_health_and_readiness(setup: Any) -> None:
    client, _, _ = setup
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "7")
    assert not client.is_model_ready("nope")
    assert client.get_server_metadata()["name"] == "nbmci"
    assert client.get_model_repository_index() == [
        {"name": "iris", "version": "1", "state": "READY"}]


def test_model_metadata(setup: Any) -> None:
    client, _, _ = setup
    meta = client.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert client.get_model_metadata("iris", "1") == meta
    with pytest.raises(InferenceServerException, match="not being served"):
        client.get_model_metadata("nope")


def _output(result: Any, meta: dict[str, Any]) -> np.ndarray:
    [output] = result.get_response()["outputs"]
    assert output["name"] == meta["outputs"][0]["name"]
    predicted = result.as_numpy(output["name"])
    assert predicted is not None
    return np.asarray(predicted)


@pytest.mark.parametrize("version", ["", "1"])
@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_infer_with_one_2d_tensor(setup: Any, version: str, datatype: str) -> None:
    client, rows, expected = setup
    tensor = tritonhttp.InferInput("input__0", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows.astype(np.float64 if datatype == "FP64" else np.float32),
                               binary_data=False)
    result = client.infer("iris", [tensor], model_version=version, request_id="req-1")
    assert result.get_response()["id"] == "req-1"
    assert result.get_response()["model_version"] == "1"
    predicted = _output(result, client.get_model_metadata("iris"))
    assert predicted.shape == (len(rows),)
    np.testing.assert_array_equal(predicted, expected)


def test_infer_with_one_1d_tensor_per_feature(setup: Any) -> None:
    client, rows, expected = setup
    tensors = []
    for index in reversed(range(len(FEATURES))):  # any order: matched by name
        tensor = tritonhttp.InferInput(FEATURES[index], [len(rows)], "FP64")
        tensor.set_data_from_numpy(np.ascontiguousarray(rows[:, index]), binary_data=False)
        tensors.append(tensor)
    meta = client.get_model_metadata("iris")
    output = tritonhttp.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=False)
    result = client.infer("iris", tensors, outputs=[output])
    np.testing.assert_array_equal(_output(result, meta), expected)


def test_infer_with_binary_tensors_tritonclients_default(setup: Any) -> None:
    client, rows, expected = setup
    meta = client.get_model_metadata("iris")
    whole = tritonhttp.InferInput("input__0", list(rows.shape), "FP64")
    whole.set_data_from_numpy(rows)  # binary_data=True
    result = client.infer("iris", [whole])  # no outputs named: binary_data_output
    np.testing.assert_array_equal(_output(result, meta), expected)
    [output] = result.get_response()["outputs"]
    assert "data" not in output
    assert output["parameters"]["binary_data_size"] == 8 * len(rows)  # INT64 labels
    columns = []
    for index, feature in enumerate(FEATURES):
        column = tritonhttp.InferInput(feature, [len(rows)], "FP32")
        column.set_data_from_numpy(rows[:, index].astype(np.float32))
        columns.append(column)
    np.testing.assert_array_equal(_output(client.infer("iris", columns), meta), expected)


_HEAD = orjson.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                    "parameters": {"binary_data_size": 32}}]})


@pytest.mark.parametrize(("length", "values", "words"), [
    ("999", 4, "not a byte count"),  # past the end of the body
    ("x", 4, "not a byte count"),
    (str(len(_HEAD)), 3, "binary_data_size"),  # 24 bytes where 32 are claimed
    (str(len(_HEAD)), 5, "bytes no input claims"),
])
def test_broken_binary_requests_are_clear_400s(serving: Any, length: str, values: int,
                                               words: str) -> None:
    import httpx

    _, running = serving
    answer = httpx.post(f"{running.url}/v2/models/iris/infer",
                        content=_HEAD + np.ones(values).tobytes(),
                        headers={"inference-header-content-length": length})
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]


@pytest.mark.parametrize("binary", [True, False])
def test_a_named_output_comes_as_asked(setup: Any, binary: bool) -> None:
    client, rows, expected = setup
    meta = client.get_model_metadata("iris")
    whole = tritonhttp.InferInput("input__0", list(rows.shape), "FP64")
    whole.set_data_from_numpy(rows, binary_data=False)
    asked = tritonhttp.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=binary)
    result = client.infer("iris", [whole], outputs=[asked])
    np.testing.assert_array_equal(_output(result, meta), expected)
    [output] = result.get_response()["outputs"]
    assert ("data" in output) is not binary


def test_an_output_the_model_lacks_is_refused(setup: Any) -> None:
    client, rows, _ = setup
    whole = tritonhttp.InferInput("input__0", list(rows.shape), "FP64")
    whole.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException, match="has 3 outputs"):
        client.infer("iris", [whole], outputs=[tritonhttp.InferRequestedOutput("probs")])


def test_the_server_names_the_binary_extension(setup: Any) -> None:
    client, _, _ = setup
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


def test_string_labels_as_binary_bytes_tensor() -> None:
    from tritonclient.utils import deserialize_bytes_tensor

    from nbmci.serve.protocols import v2
    from tests.serve.conftest import numeric_live

    live = numeric_live(None, ("a",), version=3)
    labels = np.array(["setosa", "", "vírginica"], dtype=object)
    result, tail = v2.encode(live, [(None, "predict", True, labels)], "r1")
    [output] = result["outputs"]
    assert output == {"name": "predict", "datatype": "BYTES", "shape": [3],
                      "parameters": {"binary_data_size": len(tail)}}
    assert result["id"] == "r1" and result["model_version"] == "3"
    assert [b.decode() for b in deserialize_bytes_tensor(tail)] == list(labels)


def test_a_wrong_width_is_a_clear_error(setup: Any) -> None:
    client, rows, _ = setup
    tensor = tritonhttp.InferInput("input__0", [len(rows), 3], "FP64")
    tensor.set_data_from_numpy(np.ascontiguousarray(rows[:, :3]), binary_data=False)
    with pytest.raises(InferenceServerException, match="takes 4 features"):
        client.infer("iris", [tensor])
