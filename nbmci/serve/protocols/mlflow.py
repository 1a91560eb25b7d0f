"""MLflow's scoring format (``POST /invocations``), so existing MLflow clients work unchanged.

JSON bodies carry one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs``; ``text/csv`` bodies have a header row of feature names. The answer is
``{"predictions": [...]}``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from nbmci.serve.host import LiveModel
from nbmci.serve.protocols.features import (
    InvalidRequestError,
    check_matrix,
    from_column_map,
    from_columns,
    from_records,
    numeric_array,
)

KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_json(live: LiveModel, body: Any) -> np.ndarray:
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
        return check_matrix(live, _split(live, value), key)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidRequestError("'dataframe_records' must be a list of objects.", field=key)
        return check_matrix(live, from_records(live, value, key), key)
    if isinstance(value, Mapping):  # {"feature": [values...]}
        return check_matrix(live, from_column_map(live, value, key), key)
    if not isinstance(value, list):
        raise InvalidRequestError(f"'{key}' must be a list of rows or an object of columns.",
                                  field=key)
    if value and isinstance(value[0], Mapping):
        return check_matrix(live, from_records(live, value, key), key)
    return check_matrix(live, numeric_array(value, key), key)


def _split(live: LiveModel, value: Any) -> np.ndarray:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise InvalidRequestError("'dataframe_split' must be an object with 'columns' and 'data'.",
                                  field="dataframe_split")
    matrix = numeric_array(value["data"], "dataframe_split.data")
    columns = value.get("columns")
    if columns is None:
        return matrix
    if not isinstance(columns, list):
        raise InvalidRequestError("'dataframe_split.columns' must be a list of names.",
                                  field="dataframe_split.columns")
    order = from_columns(live, columns, "dataframe_split.columns")
    if order is None or matrix.ndim != 2 or matrix.shape[1] != len(columns):
        return matrix  # in order already, or check_matrix names the shape problem
    return matrix[:, order]


def decode_csv(live: LiveModel, body: bytes) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("The CSV body is not UTF-8.") from exc
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidRequestError("The CSV body is empty: send a header row of feature "
                                  "names and at least one row.") from None
    except csv.Error as exc:
        raise InvalidRequestError(f"The CSV body cannot be parsed: {exc}.") from exc
    order = from_columns(live, [h.strip() for h in header], "csv header")
    rows = []
    try:
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InvalidRequestError(f"CSV line {number} has {len(row)} values; the header "
                                          f"has {len(header)}.", field="csv")
            rows.append([_number(v, number) for v in row])
    except csv.Error as exc:
        raise InvalidRequestError(f"The CSV body cannot be parsed: {exc}.") from exc
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(header))
    return check_matrix(live, matrix if order is None else matrix[:, order], "csv")


def _number(text: str, line: int) -> float:
    text = text.strip()
    if text == "":
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise InvalidRequestError(f"CSV line {line} has a non-numeric value {text[:40]!r}.",
                                  field="csv") from None


def encode(predicted: np.ndarray) -> dict[str, Any]:
    return {"predictions": predicted if predicted.dtype.kind in "biuf" else predicted.tolist()}
