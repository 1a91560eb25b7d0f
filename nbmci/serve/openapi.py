"""The OpenAPI 3.0 description served at ``/openapi.json`` (written by hand: small and exact).

Every route of ``app.ROUTES`` is here with every status it can answer and the shape of each
body, so a client generator or a fuzzer (the tests run schemathesis against it) can hold the
server to it. Statuses the ``Guard`` middleware answers on any route (400 for a Host header
that is not served, 403 for a foreign browser Origin, 413 for a body over the limit) are listed
on every operation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_SCHEMAS_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS_REF + name}


def _answer(description: str, schema: dict[str, Any],
            media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


_ERROR_TEXT = {
    "400": "The request cannot be read, or its Host header is not served here.",
    "401": "The admin token is missing or wrong.",
    "403": "Refused: a foreign browser Origin, or admin routes are off.",
    "404": "No such route, or the model (version) is not being served.",
    "409": "Another reload is running.",
    "413": "The body is larger than the server's limit.",
    "415": "The Content-Type is not accepted by this route.",
    "422": "Well-formed, but not what this model takes (shape, features, values).",
    "429": "Too many rows are waiting for this model; retry after a moment.",
    "500": "Stored model bytes are damaged, or a bug (reported without details).",
    "503": "The model is not ready, the server is draining, or the registry is down.",
    "504": "The prediction did not finish within the server's timeout.",
}
_GUARD = ("400", "403", "413")


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _answer(_ERROR_TEXT[code], _ref("Error")) for code in (*_GUARD, *codes)}


_NAME = {"name": "name", "in": "path", "required": True, "example": "clf",
         "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"}}
_VERSION = {"name": "version", "in": "path", "required": True, "example": 1,
            "schema": {"type": "integer", "minimum": 1}}
_PREDICT_ERRORS = ("404", "415", "422", "429", "500", "503", "504")


def _get(summary: str, params: list[Any], ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params,
                    "responses": {"200": _answer(summary, ok), **_errors(*codes)}}}


def _ready(summary: str, params: list[Any], schema: str, *codes: str) -> dict[str, Any]:
    operation = _get(summary, params, _ref(schema), *codes)
    operation["get"]["responses"]["503"] = _answer("Not ready (yet, or draining).", _ref(schema))
    return operation


def _infer(params: list[Any]) -> dict[str, Any]:
    return {"post": {
        "summary": "Predict (Open Inference Protocol v2)", "parameters": params,
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref("InferRequest")}}},
        "responses": {"200": _binary(_answer("Predictions", _ref("InferResponse"))),
                      **_errors("404", *_PREDICT_ERRORS)}}}


def _binary(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer``, or with binary output asked for: its JSON (``Inference-Header-Content-Length``
    bytes) and then the output tensor's bytes."""
    answer["content"]["application/octet-stream"] = {
        "schema": {"type": "string", "format": "binary"}}
    return answer


_MAX_DIM = 2**53  # JSON numbers past this are not exact integers any more
_TENSOR_VALUES = {"type": "array", "items": {},
                  "description": "Values (null for missing), flat or nested as the shape: "
                                 "numbers, booleans, or strings for BYTES (text, categories, "
                                 "ISO 8601 times and durations)."}
_METHOD = {"type": "string", "description": "The output method: predict (default), "
                                            "predict_proba or decision_function, as the "
                                            "model's metadata lists them."}
_CSV = {"type": "string", "pattern": "^[^\\r\\n]+\\n[^\\r]*$",
        "description": "A header row of column names, then rows of values (empty: missing)."}
_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "type"], "properties": {
        "error": {"type": "string"}, "type": {"type": "string"},
        "hint": {"type": "string", "nullable": True},
        "field": {"type": "string", "nullable": True},
        "column": {"type": "string", "description": "The input column at fault."},
        "row": {"type": "integer", "description": "Its row in the request."},
        "value": {"description": "The value refused, as the request sent it."}}},
    "Live": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
    "Ready": {"type": "object", "required": ["ready"],
              "properties": {"ready": {"type": "boolean"}}},
    "ModelReady": {"type": "object", "required": ["name", "ready"], "properties": {
        "name": {"type": "string"}, "ready": {"type": "boolean"}}},
    "ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"],
                       "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                      "extensions": {"type": "array",
                                                     "items": {"type": "string"}}}},
    "TensorMetadata": {"type": "object", "required": ["name", "datatype", "shape"],
                       "properties": {"name": {"type": "string"},
                                      "datatype": {"type": "string"},
                                      "shape": {"type": "array", "items": {"type": "integer"}}}},
    "ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs",
                                                     "outputs"], "properties": {
        "name": {"type": "string"}, "platform": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "inputs": {"type": "array", "items": _ref("TensorMetadata")},
        "outputs": {"type": "array", "items": _ref("TensorMetadata")},
        "parameters": {"type": "object"}}},
    "Tensor": {"type": "object", "required": ["name", "shape", "datatype", "data"],
               "properties": {
                   "name": {"type": "string", "minLength": 1},
                   "shape": {"type": "array", "items": {"type": "integer", "minimum": 0,
                                                        "maximum": _MAX_DIM}},
                   "datatype": {"type": "string", "enum": [
                       "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                       "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
                   "data": _TENSOR_VALUES,
                   "parameters": {"type": "object"}}},
    "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"},
        "inputs": {"type": "array", "minItems": 1, "items": _ref("Tensor")},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "parameters": {"type": "object", "properties": {
                    "binary_data": {"type": "boolean",
                                    "description": "Answer this output as binary data."}}}}}},
        "parameters": {"type": "object", "properties": {
            "binary_data_output": {"type": "boolean",
                                   "description": "Answer every output as binary data."},
            "method": _METHOD}}}},
    "OutputTensor": {"type": "object", "required": ["name", "shape", "datatype", "data"],
                     "properties": {
                         "name": {"type": "string"}, "datatype": {"type": "string"},
                         "shape": {"type": "array", "items": {"type": "integer"}},
                         "data": {"type": "array"}}},
    "InferResponse": {"type": "object", "required": ["model_name", "model_version", "outputs"],
                      "properties": {
                          "model_name": {"type": "string"}, "model_version": {"type": "string"},
                          "id": {"type": "string"},
                          "outputs": {"type": "array", "items": _ref("OutputTensor")}}},
    "MlflowRequest": {
        "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs.",
        "oneOf": [
            {"type": "object", "required": ["dataframe_split"], "properties": {
                "dataframe_split": {"type": "object", "required": ["data"], "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array", "items": {
                        "nullable": True}}}}},
                "params": _ref("MlflowParams")}},
            {"type": "object", "required": ["dataframe_records"], "properties": {
                "dataframe_records": {"type": "array", "items": {"type": "object"}},
                "params": _ref("MlflowParams")}},
            {"type": "object", "required": ["instances"], "properties": {
                "instances": {"type": "array"}, "params": _ref("MlflowParams")}},
            {"type": "object", "required": ["inputs"], "properties": {
                "inputs": {"oneOf": [{"type": "array"}, {"type": "object"}]},
                "params": _ref("MlflowParams")}},
        ]},
    "MlflowParams": {"type": "object", "properties": {"method": _METHOD}},
    "MlflowResponse": {"type": "object", "required": ["predictions"],
                       "properties": {"predictions": {"type": "array"}}},
    "RepositoryIndex": {"type": "array", "items": {
        "type": "object", "required": ["name", "version", "state"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "state": {"type": "string", "enum": ["READY"]}}}},
    "Reloaded": {"type": "object", "required": ["live"], "properties": {"live": {
        "type": "object", "additionalProperties": {"type": "integer", "nullable": True}}}},
}


def _paths() -> dict[str, Any]:
    model, versioned = [_NAME], [_NAME, _VERSION]
    live = _get("Liveness", [], _ref("Live"))
    ready = _ready("Readiness: a model passed its smoke test", [], "Ready")
    return {
        "/v2": _get("Server metadata", [], _ref("ServerMetadata")),
        "/v2/health/live": live,
        "/v2/health/ready": ready,
        "/ping": live,
        "/health": ready,
        "/v2/repository/index": {"post": {
            "summary": "The served models (all ready; a request body is ignored)",
            "responses": {"200": _answer("Served models", _ref("RepositoryIndex")),
                          **_errors()}}},
        "/v2/models/{name}": _get("Model metadata", model, _ref("ModelMetadata"), "404"),
        "/v2/models/{name}/versions/{version}": _get("Model version metadata", versioned,
                                                     _ref("ModelMetadata"), "404"),
        "/v2/models/{name}/ready": _ready("Model readiness", model, "ModelReady", "404"),
        "/v2/models/{name}/versions/{version}/ready": _ready("Version readiness", versioned,
                                                              "ModelReady", "404"),
        "/v2/models/{name}/infer": _infer(model),
        "/v2/models/{name}/versions/{version}/infer": _infer(versioned),
        "/invocations": {"post": {
            "summary": "Predict (MLflow scoring format)",
            "parameters": [{"name": "model", "in": "query", "required": False,
                            "description": "The model; needed when several are served.",
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("MlflowRequest")},
                "text/csv": {"schema": _CSV}}},
            "responses": {"200": _answer("Predictions", _ref("MlflowResponse")),
                          **_errors(*_PREDICT_ERRORS)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": _answer("Prometheus text format", {"type": "string"}, "text/plain"),
            **_errors()}}},
        "/openapi.json": _get("This description", [], {"type": "object"}),
        "/admin/reload": {"post": {
            "summary": "Load the production versions now (also retries failed ones)",
            "security": [{"token": []}],
            "parameters": [{"name": "model", "in": "query", "required": False,
                            "schema": {"type": "array", "items": {"type": "string"}},
                            "style": "form", "explode": True}],
            "responses": {"200": _answer("The version now live per model", _ref("Reloaded")),
                          **_errors("401", "409")}}},
    }


@cache
def spec() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "nbmci serve", "version": "1",
                 "description": "Predictions from the production version of each model."},
        "paths": _paths(),
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer",
                      "description": "The token `nbmci serve --token` was started with."}}},
    }
