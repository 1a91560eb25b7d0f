"""The OpenAPI 3.0 description served at ``/openapi.json`` (written by hand: small and exact)."""

from __future__ import annotations

from functools import cache
from typing import Any

_ERROR = {"description": "A JSON error that says what is wrong.",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_NAME = {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
         "example": "clf"}
_VERSION = {"name": "version", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1}}
_ERRORS = {code: _ERROR for code in ("400", "404", "413", "415", "422", "429")}


def _json_body(ref: str) -> dict[str, Any]:
    return {"required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _ok(description: str, ref: str | None = None) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"} if ref else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(summary: str, params: list[Any], ref: str | None = None) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params,
                    "responses": {"200": _ok(summary, ref), "404": _ERROR, "503": _ERROR}}}


def _infer(params: list[Any]) -> dict[str, Any]:
    return {"post": {"summary": "Predict (Open Inference Protocol v2)", "parameters": params,
                     "requestBody": _json_body("InferRequest"),
                     "responses": {"200": _ok("Predictions", "InferResponse"), **_ERRORS}}}


_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "type": {"type": "string"},
        "hint": {"type": "string", "nullable": True},
        "field": {"type": "string", "nullable": True}}},
    "Tensor": {"type": "object", "required": ["name", "shape", "datatype", "data"],
               "properties": {
                   "name": {"type": "string"},
                   "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                   "datatype": {"type": "string", "enum": ["FP64", "FP32", "INT64", "INT32"]},
                   "data": {"type": "array", "items": {}},
                   "parameters": {"type": "object"}}},
    "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"},
        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        "outputs": {"type": "array", "items": {"type": "object"}},
        "parameters": {"type": "object"}}},
    "InferResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": {"type": "object"}}}},
    "MlflowRequest": {"type": "object", "properties": {
        "dataframe_split": {"type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}},
        "dataframe_records": {"type": "array", "items": {"type": "object"}},
        "instances": {"type": "array", "items": {}},
        "inputs": {}}},
}


@cache
def spec() -> dict[str, Any]:
    model = [_NAME]
    versioned = [_NAME, _VERSION]
    return {
        "openapi": "3.0.3",
        "info": {"title": "nbmci serve", "version": "1",
                 "description": "Predictions from the production version of each model."},
        "paths": {
            "/v2": _get("Server metadata", []),
            "/v2/health/live": _get("Liveness", []),
            "/v2/health/ready": _get("Readiness: a model passed its smoke test", []),
            "/v2/models/{name}": _get("Model metadata", model),
            "/v2/models/{name}/versions/{version}": _get("Model version metadata", versioned),
            "/v2/models/{name}/ready": _get("Model readiness", model),
            "/v2/models/{name}/versions/{version}/ready": _get("Version readiness", versioned),
            "/v2/models/{name}/infer": _infer(model),
            "/v2/models/{name}/versions/{version}/infer": _infer(versioned),
            "/invocations": {"post": {
                "summary": "Predict (MLflow scoring format)",
                "parameters": [{"name": "model", "in": "query", "required": False,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/"
                                                            "MlflowRequest"}},
                    "text/csv": {"schema": {"type": "string"}}}},
                "responses": {"200": _ok("{\"predictions\": [...]}"), **_ERRORS}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": _SCHEMAS},
    }
