"""Open Inference Protocol v2 (KServe, Triton, MLServer): metadata, infer request and response.

A request sends one 1-D tensor per input column, named as the column, with the column's
datatype (FP64, FP32, INT64, INT32, BOOL, or BYTES for strings, categories and times); an
all-numeric model also takes one 2-D tensor ``[rows, columns]`` of any name, and a model with
one input takes its one tensor under any name. Tensor values come as JSON ``data`` or, with
the binary tensor extension (the default of NVIDIA's ``tritonclient``), as raw little-endian
bytes after a JSON header of ``Inference-Header-Content-Length`` bytes (BYTES elements each a
4-byte length, then UTF-8). Outputs are named in ``outputs`` (``predict``'s output is named
after the training target, the others after their method: ``predict_proba``, ...) or picked
with ``parameters: {"method": ...}``. The answer is JSON, or JSON followed by the outputs'
bytes when the request asks for binary output (``binary_data`` or ``binary_data_output``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nbmci.serve.live import LiveModel, Output
from nbmci.serve.protocols.features import (
    InputMismatchError,
    InvalidRequestError,
    Rows,
    check_matrix,
    numeric_array,
)
from nbmci.snapshot.logical import Where, v2_datatype
from nbmci.snapshot.schema import ColumnBatch, decode_column

NUMERIC = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                     "INT64", "FP16", "FP32", "FP64"})
DATATYPES = NUMERIC | {"BYTES"}
_DTYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


def datatype(dtype: str | np.dtype[Any]) -> str:
    """The v2 datatype of a numpy dtype or a signature dtype name."""
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        return "BYTES"
    return _DTYPES.get(kind, "BYTES")


def model_metadata(live: LiveModel) -> dict[str, Any]:
    inputs = []
    for column in live.schema.columns:
        parameters: dict[str, Any] = {"type": column.type, "dtype": column.dtype,
                                      "nullable": column.takes_missing}
        if column.categories is not None:
            parameters["categories"] = list(column.categories)
        if column.known is not None:
            parameters["known_values"] = sorted(column.known, key=str)
        inputs.append({"name": column.name, "datatype": v2_datatype(column), "shape": [-1],
                       "parameters": parameters})
    outputs = [o.to_metadata() for o in live.outputs.values()] or [
        {"name": live.output, "datatype": "BYTES", "shape": [-1]}]
    parameters: dict[str, Any] = {"n_features": len(live.features),
                                  "methods": list(live.outputs),
                                  "allow_nan": bool(live.missing_ok.all())}
    if live.classes is not None:
        parameters["classes"] = list(live.classes)
    return {"name": live.name, "versions": [str(live.version)],
            "platform": f"nbmci/{live.class_name}", "inputs": inputs, "outputs": outputs,
            "parameters": parameters}


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

    def take(self, size: Any, dtype: str, field: str) -> np.ndarray | list[str]:
        if not self.data:
            raise InvalidRequestError(
                f"'{field}' has binary_data_size but the request has no binary tensor data.",
                field=field, hint="Send the Inference-Header-Content-Length header with it.")
        itemsize = 1 if dtype == "BYTES" else np.dtype(_RAW[dtype]).itemsize
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 \
                or size % itemsize or self.offset + size > len(self.data):
            raise InvalidRequestError(
                f"'{field}.parameters.binary_data_size' is {size!r}; the binary part has "
                f"{len(self.data) - self.offset} bytes left and {dtype} values take "
                f"{itemsize} each.", field=field)
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        if dtype == "BYTES":
            return _strings(chunk, field)
        return np.frombuffer(chunk, dtype=_RAW[dtype])

    def check_used(self) -> None:
        if self.offset != len(self.data):
            raise InvalidRequestError(
                f"The binary part has {len(self.data) - self.offset} bytes no input claims.",
                field="inputs", hint="Give each binary input its binary_data_size.")


def _strings(chunk: memoryview, field: str) -> list[str]:
    """BYTES elements from binary: each a 4-byte little-endian length, then UTF-8 bytes."""
    out, offset, size = [], 0, len(chunk)
    while offset < size:
        if offset + 4 > size:
            raise InvalidRequestError(f"'{field}' binary BYTES data ends inside an element's "
                                      "length prefix.", field=field)
        length = int.from_bytes(chunk[offset:offset + 4], "little")
        offset += 4
        if offset + length > size:
            raise InvalidRequestError(f"'{field}' binary BYTES element {len(out)} claims "
                                      f"{length} bytes; {size - offset} are left.", field=field)
        try:
            out.append(bytes(chunk[offset:offset + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise InputMismatchError(f"'{field}' element {len(out)} is not UTF-8 text.",
                                     field=field, row=len(out)) from None
        offset += length
    return out


@dataclass(frozen=True)
class _Tensor:
    name: str
    datatype: str
    shape: list[int]
    values: Any  # a float64 array (numeric binary), a list of str (BYTES) or JSON data
    field: str
    is_json: bool


def _tensor(value: Any, index: int, binary: _Binary) -> _Tensor:
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
    if dtype not in DATATYPES:
        raise InvalidRequestError(f"'{field}.datatype' is {str(dtype)[:40]!r}, not a v2 "
                                  "datatype (FP64, FP32, INT64, INT32, BOOL, BYTES, ...).",
                                  field=field)
    parameters = value.get("parameters")
    if "data" in value:
        data, is_json = value["data"], True
    elif isinstance(parameters, dict) and "binary_data_size" in parameters:
        data, is_json = binary.take(parameters["binary_data_size"], dtype, field), False
    else:
        raise InvalidRequestError(f"'{field}.data' is missing.", field=field)
    return _Tensor(name, dtype, shape, data, field, is_json)


def _sized(tensor: _Tensor, count: int) -> None:
    expected = math.prod(tensor.shape)  # exact: numpy's int64 product wraps
    if count != expected:
        raise InputMismatchError(f"'{tensor.field}' has {count} values but shape "
                                 f"{tensor.shape} needs {expected}.", field=tensor.field)


def _numeric(tensor: _Tensor) -> np.ndarray:
    if tensor.datatype not in NUMERIC:
        raise InputMismatchError(f"'{tensor.field}.datatype' is {tensor.datatype}; this model "
                                 "takes numbers (FP64, FP32, INT64, INT32, ...).",
                                 field=tensor.field)
    array = numeric_array(tensor.values, f"{tensor.field}.data") if tensor.is_json \
        else tensor.values.astype(np.float64)
    _sized(tensor, array.size)
    try:
        return array.reshape(tensor.shape)
    except ValueError as exc:  # an empty tensor with a dimension numpy cannot hold
        raise InputMismatchError(f"'{tensor.field}.shape' {tensor.shape} is too large.",
                                 field=tensor.field) from exc


def decode(live: LiveModel, body: Any, binary: bytes = b"") -> Rows:
    """The checked rows of a v2 infer request: its JSON ``body`` and the ``binary`` tensor
    bytes after it (see ``split_binary``)."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object with 'inputs'.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequestError("'inputs' must be a non-empty list of tensors.",
                                  field="inputs")
    tail = _Binary(binary)
    tensors = [_tensor(t, i, tail) for i, t in enumerate(inputs)]
    tail.check_used()
    if live.numeric:
        return _numeric_rows(live, tensors)
    if len(tensors) == 1 and len(live.features) == 1:  # one input: any name
        tensors = [_Tensor(live.features[0], *[getattr(tensors[0], f) for f in
                                               ("datatype", "shape", "values", "field",
                                                "is_json")])]
    order = live.schema.check_names([t.name for t in tensors], "inputs")
    ordered = tensors if order is None else [tensors[i] for i in order]
    arrays = []
    rows = None
    for column, tensor in zip(live.schema.columns, ordered, strict=True):
        values = _column_values(column, tensor)
        if rows is not None and len(values) != rows:
            raise InputMismatchError("Per-column tensors must all have the same length.",
                                     field="inputs")
        rows = len(values)
        arrays.append(_decode_column(column, tensor, values))
    if not rows:
        raise InputMismatchError("'inputs' is an empty batch: send at least one row.",
                                 field="inputs")
    return ColumnBatch(tuple(arrays))


def _numeric_rows(live: LiveModel, tensors: list[_Tensor]) -> np.ndarray:
    arrays = [(t.name, _numeric(t)) for t in tensors]
    if len(arrays) == 1 and arrays[0][1].ndim == 2:
        return check_matrix(live, arrays[0][1], "inputs[0]")
    if len(arrays) == 1 and len(live.features) == 1:
        arrays = [(live.features[0], arrays[0][1])]
    order = live.schema.check_names([n for n, _ in arrays], "inputs")
    shapes = {a.shape for _, a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise InputMismatchError("Per-feature tensors must all be 1-D with the same length.",
                                 field="inputs")
    columns = [a for _, a in arrays] if order is None else [arrays[i][1] for i in order]
    return check_matrix(live, np.stack(columns, axis=1), "inputs")


def _column_values(column: Any, tensor: _Tensor) -> Any:
    """A tensor's values for one column, flat, after checking datatype and shape."""
    accepted = column.logical.tensor_kinds
    if tensor.datatype not in accepted:
        raise InputMismatchError(
            f"'{tensor.field}' ({column.name}) is {tensor.datatype}; '{column.name}' takes "
            f"{v2_datatype(column)}.", field=tensor.field, column=column.name)
    if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
        raise InputMismatchError(f"'{tensor.field}' has shape {tensor.shape}; a column's "
                                 "tensor is 1-D ([rows]) or [rows, 1].", field=tensor.field)
    values = _flat(tensor.values, tensor.field) if tensor.is_json else tensor.values
    _sized(tensor, len(values))
    return values


def _flat(data: Any, field: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidRequestError(f"'{field}.data' must be a list.", field=field)
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for item in data:
        if isinstance(item, list):
            out.extend(_flat(item, field))
        else:
            out.append(item)
    return out


def _decode_column(column: Any, tensor: _Tensor, values: Any) -> np.ndarray:
    return decode_column(column, values, Where(tensor.field),
                         "json" if tensor.is_json else "tensor")


def requested(live: LiveModel, body: dict[str, Any]) -> list[tuple[Output | None, str, bool]]:
    """``(output, method, binary)`` for each output the request asks for: those named in
    ``outputs``, else the one of ``parameters.method``, else ``predict``'s. Binary output is
    asked with ``binary_data`` on an output, else the request's ``binary_data_output``
    (``tritonclient`` sends that when no outputs are named). An output or method the model
    does not have is refused, naming the ones it has."""
    parameters = body.get("parameters")
    binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    by_name = {o.name: o for o in live.outputs.values()}
    outputs = body.get("outputs")
    if outputs is None:
        method = parameters.get("method") if isinstance(parameters, dict) else None
        method = method if method is not None else live.default_method
        if live.outputs and method not in live.outputs:
            raise InputMismatchError(
                f"'parameters.method' is {str(method)[:60]!r}; {live.ref} answers "
                f"{', '.join(live.outputs)}.", field="parameters")
        return [(live.outputs.get(str(method)), str(method), binary)]
    if not isinstance(outputs, list) or not outputs:
        raise InvalidRequestError("'outputs' must be a non-empty list of requested outputs.",
                                  field="outputs")
    asked = []
    for index, output in enumerate(outputs):
        name = output.get("name") if isinstance(output, dict) else None
        found = by_name.get(name) if isinstance(name, str) else None
        if found is None and name == live.output:  # a version without recorded outputs
            found = Output("predict", live.output, "BYTES", ())
        if found is None:
            names = list(by_name) or [live.output]
            raise InputMismatchError(
                f"'outputs[{index}]' asks for {str(name)[:60]!r}; {live.ref} has "
                f"{len(names)} output{'s' if len(names) > 1 else ''}: "
                f"{', '.join(repr(n) for n in names)}.", field="outputs")
        wants = output.get("parameters")
        one = wants["binary_data"] is True if isinstance(wants, dict) and \
            "binary_data" in wants else binary
        asked.append((found, found.method, one))
    return asked


def encode(live: LiveModel, answers: list[tuple[Output | None, str, bool, np.ndarray]],
           request_id: Any) -> tuple[dict[str, Any], bytes]:
    """The response object and the binary tensor bytes that follow it (empty if none)."""
    outputs, tails = [], []
    for output, method, binary, predicted in answers:
        kind = datatype(predicted.dtype)
        name = output.name if output is not None else (live.output if method == "predict"
                                                       else method)
        item: dict[str, Any] = {"name": name, "datatype": kind,
                                "shape": list(predicted.shape)}
        if binary:
            tail = _bytes_tensor(predicted) if kind == "BYTES" else \
                np.ascontiguousarray(predicted, dtype=_RAW[kind]).tobytes()
            item["parameters"] = {"binary_data_size": len(tail)}
            tails.append(tail)
        else:
            item["data"] = predicted.ravel() if kind != "BYTES" else \
                [str(v) for v in predicted.ravel().tolist()]
        outputs.append(item)
    out: dict[str, Any] = {"model_name": live.name, "model_version": str(live.version),
                           "outputs": outputs}
    if isinstance(request_id, str):
        out["id"] = request_id
    return out, b"".join(tails)


def _bytes_tensor(values: np.ndarray) -> bytes:
    """BYTES elements in binary: each a 4-byte little-endian length, then its UTF-8 bytes."""
    parts = []
    for value in values.ravel().tolist():
        text = value if isinstance(value, bytes) else str(value).encode()
        parts += (len(text).to_bytes(4, "little"), text)
    return b"".join(parts)
