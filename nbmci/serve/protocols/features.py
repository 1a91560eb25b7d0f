"""Turning decoded request values into a checked float matrix in the model's feature order.

Every check raises ``InvalidRequestError`` (400: the body is not what the route takes) or
``InputMismatchError`` (422: well-formed, but not what this model takes) before the model is
called, naming the field and, where it helps, the row and column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nbmci.errors import InvalidInputError
from nbmci.serve.host import LiveModel

_NUMERIC_KINDS = "biuf"


class InvalidRequestError(InvalidInputError):
    """The body cannot be read as the route's format (HTTP 400)."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.field = field


class InputMismatchError(InvalidInputError):
    """The request is well-formed but does not fit the model's signature (HTTP 422)."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint or "See the model's inputs at GET /v2/models/NAME.")
        self.field = field


def numeric_array(values: Any, field: str) -> np.ndarray:
    """``values`` (nested lists of numbers, ``None`` as missing) as a float64 array."""
    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged nesting
        raise InputMismatchError(f"'{field}' is ragged: every row needs the same number of "
                                 "values.", field=field) from exc
    if array.dtype.kind in _NUMERIC_KINDS:
        return array.astype(np.float64, copy=False)
    if array.dtype.kind == "O":
        flat = array.ravel()
        for index, item in enumerate(flat):
            if item is None:
                continue
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise InputMismatchError(
                    f"'{field}' has a non-numeric value {_show(item)} at flat position {index}.",
                    field=field)
        return np.asarray([np.nan if v is None else v for v in flat],
                          dtype=np.float64).reshape(array.shape)
    first = array.ravel()[0] if array.size else None
    raise InputMismatchError(f"'{field}' has non-numeric values, e.g. {_show(first)}; "
                             "every feature is a number.", field=field)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_matrix(live: LiveModel, matrix: np.ndarray, field: str) -> np.ndarray:
    """The matrix if it has rows, one column per feature and only values the model takes."""
    if matrix.size == 0:
        raise InputMismatchError(f"'{field}' is an empty batch: send at least one row.",
                                 field=field)
    if matrix.ndim == 1 and len(live.features) == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2:
        raise InputMismatchError(
            f"'{field}' has {matrix.ndim} dimensions; expected rows of "
            f"{len(live.features)} features.", field=field)
    width = matrix.shape[1]
    if width != len(live.features):
        raise InputMismatchError(
            f"'{field}' rows have {width} values; {live.ref} takes {len(live.features)} "
            f"features: {', '.join(live.features)}.", field=field)
    finite = np.isfinite(matrix)
    if np.count_nonzero(finite) == finite.size:  # half the cost of ``finite.all()``
        return matrix
    refused = np.isinf(matrix) if live.allow_nan else ~finite
    if refused.any():
        row, col = (int(i) for i in np.argwhere(refused)[0])
        what = "infinite" if np.isinf(matrix[row, col]) else "missing (NaN/null)"
        raise InputMismatchError(
            f"'{field}' row {row}, feature '{live.features[col]}' is {what}; "
            f"{live.ref} cannot take {what} values.", field=field)
    return matrix


def from_columns(live: LiveModel, columns: Sequence[Any], field: str) -> list[int] | None:
    """Where each of the model's features sits among ``columns`` (``None``: in order already);
    names must match exactly."""
    if tuple(columns) == live.features:  # the usual case: clients send the signature's order
        return None
    names = [str(c) for c in columns]
    missing = [f for f in live.features if f not in names]
    extra = [c for c in names if c not in live.features]
    if missing or extra or len(names) != len(set(names)):
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:10])}")
        if extra:
            parts.append(f"unknown {', '.join(extra[:10])}")
        if len(names) != len(set(names)):
            parts.append("duplicate names")
        raise InputMismatchError(f"'{field}' columns do not match {live.ref}'s features: "
                                 f"{'; '.join(parts)}.", field=field)
    return [names.index(f) for f in live.features]


def from_records(live: LiveModel, records: Sequence[Any], field: str) -> np.ndarray:
    """Rows from ``[{feature: value}, ...]``, in the model's feature order."""
    rows = []
    wanted = set(live.features)
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InputMismatchError(f"'{field}[{index}]' is not an object of feature values.",
                                     field=field)
        if record.keys() != wanted:
            from_columns(live, list(record), f"{field}[{index}]")
        rows.append([record[f] for f in live.features])
    return numeric_array(rows, field)


def from_column_map(live: LiveModel, mapping: Mapping[str, Any], field: str) -> np.ndarray:
    """Rows from ``{feature: [values...]}``, in the model's feature order."""
    from_columns(live, list(mapping), field)
    lengths = {len(v) if isinstance(v, list) else -1 for v in mapping.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InputMismatchError(f"'{field}' columns must be lists of the same length.",
                                 field=field)
    return numeric_array([mapping[f] for f in live.features], field).T
