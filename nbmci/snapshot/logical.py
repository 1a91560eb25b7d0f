"""Logical column types: the one table of how each kind of value is recorded, read and written.

Every input column of a model has a logical type, recorded at commit from the training data
(see ``nbmci.snapshot.schema``). The type says which values a request may send for the column
and how each one is decoded from JSON (MLflow bodies, v2 ``data``), from CSV text and from v2
tensors, into a *storage* numpy array (so batches concatenate with ``np.concatenate``), and how
that storage becomes the pandas array the model was trained on. ``to_json`` encodes values
back (example rows, outputs). Protocols never check types themselves.

=================  ==========  =====================================  ====================
type               v2          JSON / CSV value                       storage
=================  ==========  =====================================  ====================
float              FP64/FP32   number, null                           float64 (NaN)
integer            INT64/...   whole number                           int64 (float64 if null)
nullable_integer   INT64       whole number, null                     object (int | None)
boolean            BOOL        true/false; CSV true/false/1/0         bool (object if null)
string             BYTES       string, null                           object (str | None)
category           BYTES/INT   one of the training categories, null   int64 codes (-1)
datetime           BYTES       ISO 8601, with the zone if it has one  int64 ns (NaT)
timedelta          BYTES       ISO 8601 duration or "1 days 02:00"    int64 ns (NaT)
object             BYTES       any scalar                             object
=================  ==========  =====================================  ====================

A decoder refuses a value with ``InputMismatchError`` naming the column, the row and the value
as the client wrote it; a missing value is refused unless ``Column.takes_missing``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

from nbmci.snapshot.columns import Column, Where, column_for, is_missing, known_hint, show

_NAT = np.iinfo(np.int64).min  # numpy's NaT as int64
_TRUE = frozenset({"true", "True", "TRUE", "1"})
_FALSE = frozenset({"false", "False", "FALSE", "0"})
_NUMBERS = frozenset({int, float})


class LogicalType:
    """How one logical type is decoded and encoded; subclasses override what differs."""

    name = "object"
    v2 = "BYTES"
    tensor_kinds = frozenset({"BYTES"})  # v2 datatypes a request may send for it

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        for row, value in enumerate(values):
            if is_missing(value):
                if not column.takes_missing:
                    raise where.missing(column, row, value)
                value = None
            elif isinstance(value, list | dict):
                raise where.refuse(column, row, value, "is not a single value")
            out[row] = value
        return out

    def from_text(self, column: Column, values: list[str], where: Where) -> np.ndarray:
        return self.from_json(column, [v if v != "" else None for v in values], where)

    def from_tensor(self, column: Column, values: Any, where: Where) -> np.ndarray:
        """``values``: a numeric numpy array for numeric datatypes, else a list of ``str``."""
        return self.from_json(column, list(values), where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        return storage

    def to_json(self, column: Column, values: Any) -> list[Any]:
        from nbmci.snapshot.jsonable import to_jsonable

        return [None if is_missing(v) else to_jsonable(v) for v in _values(values)]


def _check_each(column: Column, values: list[Any], where: Where, fits: Any, problem: str,
                hint: str | None = None) -> None:
    """Refuse the first value that is missing where the column takes none, or does not fit."""
    for row, value in enumerate(values):
        if is_missing(value):
            if not column.takes_missing:
                raise where.missing(column, row, value)
        elif not fits(value):
            raise where.refuse(column, row, value, problem, hint=hint)


def _values(values: Any) -> list[Any]:
    """Python values of an array, Series or list, with pandas' missing markers as ``None``."""
    import pandas as pd

    if isinstance(values, list):
        return values
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return series.astype(object).where(series.notna(), None).tolist()


class _Float(LogicalType):
    name, v2 = "float", "FP64"
    tensor_kinds = frozenset({"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8",
                              "UINT64", "UINT32", "UINT16", "UINT8"})

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        if set(map(type, values)) <= _NUMBERS:
            return self._checked(column, np.asarray(values, dtype=np.float64), values, where)
        _check_each(column, values, where, lambda v: type(v) in _NUMBERS,
                    f"is not a number; '{column.name}' takes numbers")
        array = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
        return self._checked(column, array, values, where)

    def _checked(self, column: Column, array: np.ndarray, values: Any,
                 where: Where) -> np.ndarray:
        finite = np.isfinite(array)
        if np.count_nonzero(finite) == len(array):
            return array
        bad = np.isinf(array) | (np.isnan(array) & (not column.takes_missing))
        if bad.any():
            row = int(np.argmax(bad))
            if np.isnan(array[row]):
                raise where.missing(column, row, values[row])
            raise where.refuse(column, row, values[row], "is infinite; send finite numbers")
        return array

    def from_text(self, column: Column, values: list[str], where: Where) -> np.ndarray:
        parsed: list[Any] = []
        for row, text in enumerate(values):
            text = text.strip()
            if text == "" or text.lower() == "nan":
                parsed.append(None)
                continue
            try:
                parsed.append(float(text))
            except ValueError:
                raise where.refuse(column, row, text, f"is not a number; '{column.name}' "
                                   "takes numbers") from None
        return self.from_json(column, parsed, where)

    def from_tensor(self, column: Column, values: Any, where: Where) -> np.ndarray:
        if isinstance(values, np.ndarray):
            return self._checked(column, values.astype(np.float64, copy=False), values, where)
        return self.from_json(column, list(values), where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        return storage if column.dtype == "float64" else storage.astype(column.dtype)

    def to_json(self, column: Column, values: Any) -> list[Any]:
        array = np.asarray(values, dtype=np.float64)
        return [None if math.isnan(v) else v for v in array.tolist()]


class _Integer(_Float):
    name, v2 = "integer", "INT64"

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        if set(map(type, values)) == {int}:
            try:
                return np.asarray(values, dtype=np.int64)
            except OverflowError:
                pass
        floats = super().from_json(column, values, where)  # checks types and missing values
        whole = np.isnan(floats) | (floats == np.round(floats))
        in_range = np.isnan(floats) | (np.abs(floats) < 2.0 ** 63)
        if not (whole & in_range).all():
            row = int(np.argmin(whole & in_range))
            raise where.refuse(column, row, values[row], f"is not a whole number within "
                               f"int64; '{column.name}' takes integers")
        return floats if np.isnan(floats).any() else floats.astype(np.int64)

    def from_tensor(self, column: Column, values: Any, where: Where) -> np.ndarray:
        if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            return values.astype(np.int64)
        listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
        return self.from_json(column, listed, where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        if storage.dtype.kind == "f":  # missing values the model takes: floats, as pandas does
            return storage
        return storage if column.dtype == "int64" else storage.astype(column.dtype)

    def to_json(self, column: Column, values: Any) -> list[Any]:
        return [None if is_missing(v) else int(v) for v in _values(values)]


class _NullableInteger(_Integer):
    name = "nullable_integer"

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        decoded = super().from_json(column, values, where)
        out = np.empty(len(values), dtype=object)
        if decoded.dtype.kind == "f":
            out[:] = [None if math.isnan(v) else int(v) for v in decoded.tolist()]
        else:
            out[:] = decoded.tolist()
        return out

    def from_tensor(self, column: Column, values: Any, where: Where) -> np.ndarray:
        listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
        return self.from_json(column, listed, where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        import pandas as pd

        return pd.array(storage, dtype=column.dtype)


class _Boolean(LogicalType):
    name, v2 = "boolean", "BOOL"
    tensor_kinds = frozenset({"BOOL"})

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        if set(map(type, values)) == {bool}:
            return np.asarray(values, dtype=bool)
        _check_each(column, values, where, lambda v: type(v) is bool,
                    f"is not true or false; '{column.name}' takes booleans")
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    def from_text(self, column: Column, values: list[str], where: Where) -> np.ndarray:
        parsed: list[Any] = []
        for row, text in enumerate(values):
            text = text.strip()
            if text in _TRUE or text in _FALSE:
                parsed.append(text in _TRUE)
            elif text == "":
                parsed.append(None)
            else:
                raise where.refuse(column, row, text, f"is not true or false; "
                                   f"'{column.name}' takes booleans")
        return self.from_json(column, parsed, where)

    def from_tensor(self, column: Column, values: Any, where: Where) -> np.ndarray:
        if isinstance(values, np.ndarray):
            return values.astype(bool)
        return self.from_json(column, list(values), where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        if column.dtype == "bool" and storage.dtype == bool:
            return storage
        import pandas as pd

        return pd.array(storage, dtype="boolean")

    def to_json(self, column: Column, values: Any) -> list[Any]:
        return [None if is_missing(v) else bool(v) for v in _values(values)]


class _String(LogicalType):
    name = "string"

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        if set(map(type, values)) == {str}:
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out
        _check_each(column, values, where, lambda v: type(v) is str,
                    f"is not a string; '{column.name}' takes strings", hint="Quote the value.")
        out = np.empty(len(values), dtype=object)
        out[:] = [None if is_missing(v) else v for v in values]
        return out

    def from_text(self, column: Column, values: list[str], where: Where) -> np.ndarray:
        return self.from_json(column, [v if v != "" else None for v in values], where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        if column.dtype in ("object", "O") or column.dtype.startswith("<U"):
            if column.missing == "none":
                return storage
            return np.where(_none_mask(storage), np.nan, storage) if None in storage \
                else storage
        import pandas as pd

        return pd.array(storage, dtype=column.dtype)


def _none_mask(storage: np.ndarray) -> np.ndarray:
    return np.frompyfunc(lambda v: v is None, 1, 1)(storage).astype(bool)


class _Category(LogicalType):
    name = "category"
    tensor_kinds = frozenset({"BYTES", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32",
                              "UINT16", "UINT8", "FP64", "FP32", "BOOL"})

    def v2_of(self, column: Column) -> str:
        kinds = {type(c) for c in column.categories or ()}
        if kinds and kinds <= {int}:
            return "INT64"
        if kinds and kinds <= {int, float}:
            return "FP64"
        return "BYTES"

    def _codes(self, column: Column) -> dict[Any, int]:
        return {c: i for i, c in enumerate(column.categories or ())}

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        codes = self._codes(column)
        bools = any(type(c) is bool for c in codes)  # else true would match a category 1
        out = np.empty(len(values), dtype=np.int64)
        for row, value in enumerate(values):
            if is_missing(value):
                if not column.takes_missing:
                    raise where.missing(column, row, value)
                out[row] = -1
                continue
            if isinstance(value, list | dict):
                raise where.refuse(column, row, value, "is not a single value")
            code = codes.get(value) if bools or type(value) is not bool else None
            if code is None:
                raise where.refuse(column, row, value, f"is not a category of "
                                   f"'{column.name}'", hint=known_hint(column.categories))
            out[row] = code
        return out

    def from_text(self, column: Column, values: list[str], where: Where) -> np.ndarray:
        by_text = {str(c): c for c in column.categories or ()}
        return self.from_json(column, [None if v == "" else by_text.get(v, v) for v in values],
                              where)

    def from_tensor(self, column: Column, values: Any, where: Where) -> np.ndarray:
        listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
        return self.from_json(column, listed, where)

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        import pandas as pd

        return pd.Categorical.from_codes(storage, dtype=_category_dtype(column))

    def to_json(self, column: Column, values: Any) -> list[Any]:
        from nbmci.snapshot.jsonable import to_jsonable

        return [None if is_missing(v) else to_jsonable(v) for v in _values(values)]


def _category_dtype(column: Column) -> Any:
    import pandas as pd

    return pd.CategoricalDtype(list(column.categories or ()), ordered=column.ordered)


class _Datetime(LogicalType):
    name = "datetime"

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        import pandas as pd

        zone = column.zone
        out = np.empty(len(values), dtype=np.int64)
        naive: list[int] = []  # rows without an offset, for a column with a zone
        for row, value in enumerate(values):
            if is_missing(value):
                if not column.takes_missing:
                    raise where.missing(column, row, value)
                out[row] = _NAT
                continue
            stamp = _timestamp(value)
            if stamp is None:
                raise where.refuse(column, row, value, f"is not an ISO 8601 date or time; "
                                   f"'{column.name}' takes times like "
                                   f"\"2024-03-01T09:30:00{'+01:00' if zone else ''}\"")
            if stamp.tzinfo is not None and zone is None:
                raise where.refuse(column, row, value, f"has a time zone; '{column.name}' "
                                   "holds local times without one",
                                   hint="Send the time without its offset.")
            if stamp.tzinfo is None and zone is not None:
                naive.append(row)
            out[row] = stamp.value if stamp.tzinfo is None else stamp.tz_convert("UTC").value
        if naive and zone is not None:  # wall times in the column's zone
            wall = pd.DatetimeIndex(out[naive].view("M8[ns]"))
            try:
                out[naive] = wall.tz_localize(zone).tz_convert("UTC").asi8
            except (ValueError, TypeError) as exc:  # DST gaps and repeats
                raise where.refuse(column, naive[0], values[naive[0]],
                                   f"is ambiguous or does not exist in {zone} ({exc})",
                                   hint="Send the time with its UTC offset.") from None
        return out

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        import pandas as pd

        index = pd.DatetimeIndex(storage.view("M8[ns]"))
        zone = column.zone
        if zone is not None:
            index = index.tz_localize("UTC").tz_convert(zone)
        try:
            return index.astype(column.dtype).array
        except (TypeError, ValueError):
            return index.array

    def to_json(self, column: Column, values: Any) -> list[Any]:
        import pandas as pd

        stamps = pd.Series(values).tolist()
        return [None if pd.isna(s) else pd.Timestamp(s).isoformat() for s in stamps]


def _timestamp(value: Any) -> Any:
    import pandas as pd

    if type(value) is not str:
        return None
    try:
        return pd.Timestamp(dt.datetime.fromisoformat(value))
    except ValueError:
        pass
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if pd.isna(stamp) else stamp


class _Timedelta(LogicalType):
    name = "timedelta"

    def from_json(self, column: Column, values: list[Any], where: Where) -> np.ndarray:
        import pandas as pd

        out = np.empty(len(values), dtype=np.int64)
        for row, value in enumerate(values):
            if is_missing(value):
                if not column.takes_missing:
                    raise where.missing(column, row, value)
                out[row] = _NAT
                continue
            try:
                delta = pd.Timedelta(value) if type(value) is str else None
            except (ValueError, TypeError, OverflowError):
                delta = None
            if delta is None or pd.isna(delta):
                raise where.refuse(column, row, value, f"is not a duration; '{column.name}' "
                                   "takes ISO 8601 durations like \"P1DT2H\" or "
                                   "\"1 days 02:00:00\"")
            out[row] = delta.value
        return out

    def to_pandas(self, column: Column, storage: np.ndarray) -> Any:
        import pandas as pd

        index = pd.TimedeltaIndex(storage.view("m8[ns]"))
        try:
            return index.astype(column.dtype).array
        except (TypeError, ValueError):
            return index.array

    def to_json(self, column: Column, values: Any) -> list[Any]:
        import pandas as pd

        return [None if pd.isna(d) else pd.Timedelta(d).isoformat()
                for d in pd.Series(values).tolist()]


TYPES: dict[str, LogicalType] = {t.name: t for t in (
    _Float(), _Integer(), _NullableInteger(), _Boolean(), _String(), _Category(), _Datetime(),
    _Timedelta(), LogicalType())}
NUMERIC = frozenset({"float", "integer"})  # columns a float matrix carries exactly enough


def v2_datatype(column: Column) -> str:
    """The v2 datatype a request sends for ``column`` (and metadata advertises)."""
    logical = column.logical
    if isinstance(logical, _Category):
        return logical.v2_of(column)
    if column.type == "float" and column.dtype == "float32":
        return "FP32"
    if column.type in ("integer", "nullable_integer") and column.dtype.lower() == "int32":
        return "INT32"
    return logical.v2


__all__ = ["NUMERIC", "TYPES", "Column", "LogicalType", "Where", "column_for", "known_hint",
           "show", "v2_datatype"]
