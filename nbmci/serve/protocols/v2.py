"""Open Inference Protocol v2 (KServe, Triton, MLServer): metadata, infer request and response.

A request is either one 2-D tensor ``[rows, n_features]`` (any name) or one 1-D tensor per
input name. Tensor values come as JSON ``data`` or, with the binary tensor extension (the
default of NVIDIA's ``tritonclient``), as raw little-endian bytes after a JSON header of
``Inference-Header-Content-Length`` bytes. The answer is JSON, or JSON followed by the output's
bytes when the request asks for binary output (``binary_data`` or ``binary_data_output``).
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


_RAW = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
        "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
        "FP32": "<f4", "FP64": "<f8"}


def split_binary(raw: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """``(JSON header, binary tensor bytes)`` of a body; all JSON without the header."""
    if not header_length:
        return raw, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 <= length <= len(raw):
        raise InvalidRequestError(
            f"Inference-Header-Content-Length {header_length[:20]!r} is not a byte count "
            f"within the {len(raw)}-byte body.", field="Inference-Header-Content-Length")
    return raw[:length], raw[length:]


class _Binary:
    """The binary tensor bytes of a request, handed out in input order."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, size: Any, dtype: str, field: str) -> np.ndarray:
        if not self.data:
            raise InvalidRequestError(
                f"'{field}' has binary_data_size but the request has no binary tensor data.",
                field=field, hint="Send the Inference-Header-Content-Length header with it.")
        item = np.dtype(_RAW[dtype])
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 \
                or size % item.itemsize or self.offset + size > len(self.data):
            raise InvalidRequestError(
                f"'{field}.parameters.binary_data_size' is {size!r}; the binary part has "
                f"{len(self.data) - self.offset} bytes left and {dtype} values take "
                f"{item.itemsize} each.", field=field)
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return np.frombuffer(chunk, dtype=item).astype(np.float64)

    def check_used(self) -> None:
        if self.offset != len(self.data):
            raise InvalidRequestError(
                f"The binary part has {len(self.data) - self.offset} bytes no input claims.",
                field="inputs", hint="Give each binary input its binary_data_size.")


def _tensor(value: Any, index: int, binary: _Binary) -> tuple[str, np.ndarray]:
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
    parameters = value.get("parameters")
    if "data" in value:
        array = numeric_array(value["data"], f"{field}.data")
    elif isinstance(parameters, dict) and "binary_data_size" in parameters:
        array = binary.take(parameters["binary_data_size"], dtype, field)
    else:
        raise InvalidRequestError(f"'{field}.data' is missing.", field=field)
    expected = math.prod(shape)  # exact: numpy's int64 product wraps (2**32 * 2**32 == 0)
    if array.size != expected:
        raise InputMismatchError(f"'{field}' has {array.size} values but shape {shape} needs "
                                 f"{expected}.", field=field)
    try:
        return name, array.reshape(shape)
    except ValueError as exc:  # an empty tensor with a dimension numpy cannot hold
        raise InputMismatchError(f"'{field}.shape' {shape} is too large.", field=field) from exc


def decode(live: LiveModel, body: Any, binary: bytes = b"") -> np.ndarray:
    """The checked feature matrix of a v2 infer request: its JSON ``body`` and the
    ``binary`` tensor bytes after it (see ``split_binary``)."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object with 'inputs'.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequestError("'inputs' must be a non-empty list of tensors.",
                                  field="inputs")
    tail = _Binary(binary)
    tensors = [_tensor(t, i, tail) for i, t in enumerate(inputs)]
    tail.check_used()
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


def wants_binary(live: LiveModel, body: dict[str, Any]) -> bool:
    """Whether the request asks for its output as binary tensor data: ``binary_data`` on the
    requested output, else the request's ``binary_data_output`` (``tritonclient`` sends that
    when no outputs are named). A requested output the model does not have is refused."""
    parameters = body.get("parameters")
    binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    outputs = body.get("outputs")
    if outputs is None:
        return binary
    if not isinstance(outputs, list):
        raise InvalidRequestError("'outputs' must be a list of requested outputs.",
                                  field="outputs")
    for index, output in enumerate(outputs):
        name = output.get("name") if isinstance(output, dict) else None
        if name != live.output:
            raise InputMismatchError(
                f"'outputs[{index}]' asks for {str(name)[:60]!r}; {live.ref} has one output, "
                f"'{live.output}'.", field="outputs")
        asked = output.get("parameters")
        if isinstance(asked, dict) and "binary_data" in asked:
            binary = asked["binary_data"] is True
    return binary


def encode(live: LiveModel, predicted: np.ndarray, request_id: Any,
           binary: bool = False) -> tuple[dict[str, Any], bytes]:
    """The response object and, for a ``binary`` answer, the tensor bytes that follow it."""
    kind = datatype(predicted.dtype)
    output: dict[str, Any] = {"name": live.output, "datatype": kind,
                              "shape": list(predicted.shape)}
    tail = b""
    if binary:
        tail = _bytes_tensor(predicted) if kind == "BYTES" else \
            np.ascontiguousarray(predicted, dtype=_RAW[kind]).tobytes()
        output["parameters"] = {"binary_data_size": len(tail)}
    else:
        output["data"] = predicted.ravel() if kind != "BYTES" else \
            [str(v) for v in predicted.ravel().tolist()]
    out: dict[str, Any] = {"model_name": live.name, "model_version": str(live.version),
                           "outputs": [output]}
    if isinstance(request_id, str):
        out["id"] = request_id
    return out, tail


def _bytes_tensor(values: np.ndarray) -> bytes:
    """BYTES elements in binary: each a 4-byte little-endian length, then its UTF-8 bytes."""
    parts = []
    for value in values.ravel().tolist():
        text = value if isinstance(value, bytes) else str(value).encode()
        parts += (len(text).to_bytes(4, "little"), text)
    return b"".join(parts)
