"""MLflow's scoring format (``POST /invocations``), so existing MLflow clients work unchanged.

JSON bodies carry one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs``, and optionally ``params`` (``{"method": "predict_proba"}`` asks for another
output method); ``text/csv`` bodies have a header row of column names, and an empty cell is a
missing value. The answer is ``{"predictions": [...]}``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from nbmci.errors import InputMismatchError
from nbmci.serve.live import LiveModel
from nbmci.serve.protocols.features import (
    InvalidRequestError,
    Rows,
    check_matrix,
    from_column_map,
    from_records,
    from_rows,
    numeric_array,
)

KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
METHOD_PARAMS = ("method", "predict_method")  # MLflow's pyfunc calls it predict_method


def decode_json(live: LiveModel, body: Any) -> Rows:
    if not isinstance(body, dict):
        raise InvalidRequestError(f"The body must be a JSON object with one of {', '.join(KEYS)}.")
    found = [k for k in KEYS if k in body]
    if len(found) != 1:
        raise InvalidRequestError(
            f"The body must have exactly one of {', '.join(KEYS)}; it has "
            f"{', '.join(found) or 'none'}.")
    key = found[0]
    value = body[key]
    if key == "dataframe_split":
        return _split(live, value)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidRequestError("'dataframe_records' must be a list of objects.", field=key)
        return from_records(live, value, key)
    if isinstance(value, Mapping):  # {"column": [values...]}
        return from_column_map(live, value, key)
    if not isinstance(value, list):
        raise InvalidRequestError(f"'{key}' must be a list of rows or an object of columns.",
                                  field=key)
    if value and isinstance(value[0], Mapping):
        return from_records(live, value, key)
    return from_rows(live, value, key)


def method(live: LiveModel, body: Any) -> str:
    """The output method ``params`` asks for (default: the model's ``predict``)."""
    params = body.get("params") if isinstance(body, dict) else None
    if params is None:
        return live.default_method
    if not isinstance(params, dict):
        raise InvalidRequestError("'params' must be an object.", field="params")
    asked = next((params[k] for k in METHOD_PARAMS if k in params), live.default_method)
    if asked not in live.outputs and live.outputs:
        raise InputMismatchError(
            f"'params.method' is {str(asked)[:60]!r}; {live.ref} answers "
            f"{', '.join(live.outputs)}.", field="params")
    return str(asked)


def _split(live: LiveModel, value: Any) -> Rows:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise InvalidRequestError("'dataframe_split' must be an object with 'columns' and 'data'.",
                                  field="dataframe_split")
    columns = value.get("columns")
    if columns is not None and not isinstance(columns, list):
        raise InvalidRequestError("'dataframe_split.columns' must be a list of names.",
                                  field="dataframe_split.columns")
    return from_rows(live, value["data"], "dataframe_split.data", columns)


def decode_csv(live: LiveModel, body: bytes) -> Rows:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("The CSV body is not UTF-8.") from exc
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidRequestError("The CSV body is empty: send a header row of column "
                                  "names and at least one row.") from None
    except csv.Error as exc:
        raise InvalidRequestError(f"The CSV body cannot be parsed: {exc}.") from exc
    order = live.schema.check_names([h.strip() for h in header], "csv header")
    rows = []
    try:
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InvalidRequestError(f"CSV line {number} has {len(row)} values; the header "
                                          f"has {len(header)}.", field="csv")
            rows.append(row)
    except csv.Error as exc:
        raise InvalidRequestError(f"The CSV body cannot be parsed: {exc}.") from exc
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in header]
    if order is not None:
        columns = [columns[i] for i in order]
    if not live.numeric:
        return live.schema.decode_columns(columns, "csv", text=True)
    matrix = numeric_array([[_number(v, line) for v in row] for line, row in
                            enumerate(zip(*columns, strict=True), start=2)], "csv")
    return check_matrix(live, matrix.reshape(len(rows), len(header)), "csv")


def _number(text: str, line: int) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidRequestError(f"CSV line {line} has a non-numeric value {text[:40]!r}.",
                                  field="csv") from None


def encode(predicted: Any) -> dict[str, Any]:
    return {"predictions": predicted if predicted.dtype.kind in "biuf" else predicted.tolist()}
