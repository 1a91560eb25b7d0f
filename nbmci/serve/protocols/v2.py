"""Open Inference Protocol v2 (KServe, Triton, MLServer): metadata, infer request and response.

A request is either one 2-D tensor ``[rows, n_features]`` (any name) or one 1-D tensor per
input name. Tensors are JSON only: the binary tensor extension is refused with a clear 400.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nbmci.serve.host import LiveModel
from nbmci.serve.protocols.features import (
    InputMismatchError,
    InvalidRequestError,
    check_matrix,
    from_columns,
    numeric_array,
)

NUMERIC = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                     "INT64", "FP16", "FP32", "FP64"})
_DTYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


def datatype(dtype: str | np.dtype[Any]) -> str:
    """The v2 datatype of a numpy dtype or a signature dtype name."""
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        return "BYTES"
    return _DTYPES.get(kind, "BYTES")


def model_metadata(live: LiveModel) -> dict[str, Any]:
    return {
        "name": live.name,
        "versions": [str(live.version)],
        "platform": f"nbmci/{live.class_name}",
        "inputs": [{"name": n, "datatype": datatype(d), "shape": [-1]}
                   for n, d in zip(live.features, live.dtypes, strict=True)],
        "outputs": [{"name": live.output, "datatype": "BYTES", "shape": [-1]}],
        "parameters": {"n_features": len(live.features), "allow_nan": live.allow_nan},
    }


def _tensor(value: Any, index: int) -> tuple[str, np.ndarray]:
    field = f"inputs[{index}]"
    if not isinstance(value, dict):
        raise InvalidRequestError(f"'{field}' is not a tensor object.", field=field)
    name, shape, dtype = value.get("name"), value.get("shape"), value.get("datatype")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"'{field}.name' is missing.", field=field)
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InvalidRequestError(f"'{field}.shape' must be a list of non-negative integers.",
                                  field=field)
    if dtype not in NUMERIC:
        raise InputMismatchError(f"'{field}.datatype' is {dtype!r}; this model takes numbers "
                                 "(FP64, FP32, INT64, INT32, ...).", field=field)
    if "data" not in value:
        parameters = value.get("parameters") or {}
        if isinstance(parameters, dict) and "binary_data_size" in parameters:
            raise InvalidRequestError(
                "The binary tensor extension is not supported.",
                field=field, hint="Send JSON tensors (tritonclient: binary_data=False).")
        raise InvalidRequestError(f"'{field}.data' is missing.", field=field)
    array = numeric_array(value["data"], f"{field}.data")
    expected = math.prod(shape)  # exact: numpy's int64 product wraps (2**32 * 2**32 == 0)
    if array.size != expected:
        raise InputMismatchError(f"'{field}' has {array.size} values but shape {shape} needs "
                                 f"{expected}.", field=field)
    try:
        return name, array.reshape(shape)
    except ValueError as exc:  # an empty tensor with a dimension numpy cannot hold
        raise InputMismatchError(f"'{field}.shape' {shape} is too large.", field=field) from exc


def decode(live: LiveModel, body: Any) -> np.ndarray:
    """The checked feature matrix of a v2 infer request body."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object with 'inputs'.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequestError("'inputs' must be a non-empty list of tensors.",
                                  field="inputs")
    tensors = [_tensor(t, i) for i, t in enumerate(inputs)]
    if len(tensors) == 1 and tensors[0][1].ndim == 2:
        return check_matrix(live, tensors[0][1], "inputs[0]")
    names = [n for n, _ in tensors]
    order = from_columns(live, names, "inputs")
    lengths = {a.shape for _, a in tensors}
    if len(lengths) != 1 or next(iter(lengths)).__len__() != 1:
        raise InputMismatchError("Per-feature tensors must all be 1-D with the same length.",
                                 field="inputs")
    columns = [a for _, a in tensors] if order is None else [tensors[i][1] for i in order]
    return check_matrix(live, np.stack(columns, axis=1), "inputs")


def encode(live: LiveModel, predicted: np.ndarray, request_id: Any) -> dict[str, Any]:
    kind = datatype(predicted.dtype)
    data: Any = predicted if kind != "BYTES" else [str(v) for v in predicted.tolist()]
    out: dict[str, Any] = {
        "model_name": live.name,
        "model_version": str(live.version),
        "outputs": [{"name": live.output, "datatype": kind, "shape": list(predicted.shape),
                     "data": data.ravel() if kind != "BYTES" else data}],
    }
    if isinstance(request_id, str):
        out["id"] = request_id
    return out
