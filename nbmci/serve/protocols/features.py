"""Turning a request's decoded values into checked rows for the model, whatever the protocol.

For an all-numeric schema the rows are a float matrix in the model's column order (the fast
path: one ``np.asarray`` and a finiteness check); otherwise each column is decoded by its
logical type (``nbmci.snapshot.logical``) into a ``ColumnBatch``. Every check raises
``InvalidRequestError`` (400: the body is not what the route takes) or ``InputMismatchError``
(422: well-formed, but not what this model takes) before the model is called, naming the
field and, where it helps, the row, the column and the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nbmci.errors import InputMismatchError, InvalidInputError, listed
from nbmci.serve.live import LiveModel
from nbmci.snapshot.logical import show
from nbmci.snapshot.schema import ColumnBatch

__all__ = ["InputMismatchError", "InvalidRequestError", "Rows", "check_matrix",
           "from_column_map", "from_records", "from_rows", "numeric_array"]
_NUMERIC_KINDS = "biuf"
Rows = np.ndarray | ColumnBatch


class InvalidRequestError(InvalidInputError):
    """The body cannot be read as the route's format (HTTP 400)."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
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
                    f"'{field}' has a non-numeric value {show(item)} at flat position "
                    f"{index}; every input of this model is a number.", field=field,
                    value=item)
        return np.asarray([np.nan if v is None else v for v in flat],
                          dtype=np.float64).reshape(array.shape)
    first = array.ravel()[0] if array.size else None
    raise InputMismatchError(f"'{field}' has non-numeric values, e.g. {show(first)}; "
                             "every input of this model is a number.", field=field)


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
            f"features: {listed(live.features)}.", field=field)
    finite = np.isfinite(matrix)
    if np.count_nonzero(finite) == finite.size:  # half the cost of ``finite.all()``
        return matrix
    refused = np.isinf(matrix) | (np.isnan(matrix) & ~live.missing_ok)
    if refused.any():
        row, col = (int(i) for i in np.argwhere(refused)[0])
        what = "infinite" if np.isinf(matrix[row, col]) else "missing (NaN/null)"
        name = live.features[col]
        raise InputMismatchError(
            f"'{field}' row {row}, column '{name}' is {what}; {live.ref} cannot take "
            f"{what} values there.", field=field, column=name, row=row)
    return matrix


def _order(live: LiveModel, columns: Sequence[Any], field: str) -> list[int] | None:
    return live.schema.check_names(columns, field)


def from_rows(live: LiveModel, rows: Any, field: str,
              names: Sequence[Any] | None = None) -> Rows:
    """Rows of values (lists), in ``names`` order or the model's."""
    if not isinstance(rows, list):
        raise InvalidRequestError(f"'{field}' must be a list of rows.", field=field)
    if not live.numeric:
        return live.schema.decode_rows(rows, field, names)
    matrix = numeric_array(rows, field)
    order = _order(live, names, f"{field} columns") if names is not None else None
    if order is not None and matrix.ndim == 2 and matrix.shape[1] == len(order):
        matrix = matrix[:, order]
    return check_matrix(live, matrix, field)


def from_records(live: LiveModel, records: Sequence[Any], field: str) -> Rows:
    """Rows from ``[{column: value}, ...]``."""
    if not live.numeric:
        return live.schema.decode_records(records, field)
    rows = []
    wanted = set(live.features)
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InputMismatchError(f"'{field}[{index}]' is not an object of column values.",
                                     field=field, row=index)
        if record.keys() != wanted:
            _order(live, list(record), f"{field}[{index}]")
        rows.append([record[f] for f in live.features])
    return check_matrix(live, numeric_array(rows, field), field)


def from_column_map(live: LiveModel, mapping: Mapping[str, Any], field: str) -> Rows:
    """Rows from ``{column: [values...]}``."""
    if not live.numeric:
        return live.schema.decode_mapping(mapping, field)
    _order(live, list(mapping), field)
    lengths = {len(v) if isinstance(v, list) else -1 for v in mapping.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InputMismatchError(f"'{field}' columns must be lists of the same length.",
                                 field=field)
    return check_matrix(live, numeric_array([mapping[f] for f in live.features], field).T,
                        field)
