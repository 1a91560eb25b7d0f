"""A model's input schema: its columns as training saw them, and rebuilding that input.

Recorded at commit from the training input (or the example rows): the input's kind and, per
column, a logical type (``nbmci.snapshot.logical``), the training dtype, whether it had
missing values and, for categories, the categories and their order. A request's values are
decoded column by column into a ``ColumnBatch``; ``InputSchema.model_input`` turns a batch into
what the model was fit on: a DataFrame with the training dtypes in the training column order,
a Series, a 1-D array or list, or a matrix.

=======  ==================================  =========================================
kind     training input                      model input rebuilt
=======  ==================================  =========================================
frame    DataFrame                           DataFrame, training dtypes and labels
matrix   2-D numpy array                     float matrix (numeric) or object matrix
series   Series (text, say)                  Series with the training name and dtype
vector   1-D numpy array                     1-D array
list     list of scalars                     list
=======  ==================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from nbmci.errors import InputMismatchError, InvalidInputError, listed
from nbmci.snapshot.logical import NUMERIC, TYPES, Column, Where, column_for

FORMAT = "nbmci.schema/1"
KINDS = ("frame", "matrix", "series", "vector", "list")
ONE_D = frozenset({"series", "vector", "list"})


@dataclass(frozen=True)
class ColumnBatch:
    """Decoded rows of a request: one storage array per schema column, in schema order."""

    arrays: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.arrays[0]) if self.arrays else 0

    @staticmethod
    def concat(batches: Sequence[ColumnBatch]) -> ColumnBatch:
        if len(batches) == 1:
            return batches[0]
        return ColumnBatch(tuple(np.concatenate(parts) for parts in
                                 zip(*(b.arrays for b in batches), strict=True)))

    def take(self, rows: np.ndarray) -> ColumnBatch:
        return ColumnBatch(tuple(a[rows] for a in self.arrays))


@dataclass(frozen=True)
class InputSchema:
    kind: str
    columns: tuple[Column, ...]
    series_name: Any = None  # kind "series": the training Series' name

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def is_numeric(self) -> bool:
        """A float matrix carries every column exactly (the serving fast path)."""
        return self.kind in ("frame", "matrix") and all(c.type in NUMERIC
                                                        for c in self.columns)

    @property
    def one_d(self) -> bool:
        return self.kind in ONE_D

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT, "kind": self.kind,
                               "columns": [c.to_dict() for c in self.columns]}
        if self.kind == "series":
            out["series_name"] = self.series_name
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSchema:
        kind = data.get("kind")
        if kind not in KINDS or not isinstance(data.get("columns"), list):
            raise InvalidInputError(f"Unknown input schema kind {kind!r}.")
        return cls(str(kind), tuple(Column.from_dict(c) for c in data["columns"]),
                   data.get("series_name"))

    def describe(self) -> dict[str, str]:
        """``{column: its type in words}``, for faces and diffs."""
        return {c.name: c.describe() for c in self.columns}

    def with_columns(self, columns: Sequence[Column]) -> InputSchema:
        return replace(self, columns=tuple(columns))

    # -- requests ---------------------------------------------------------------------------

    def check_names(self, given: Sequence[Any], field: str) -> list[int] | None:
        """Where each schema column sits among ``given`` names (``None``: in order already).
        Missing, unknown and repeated names are all named, or counted when there are many."""
        if tuple(given) == self.names:
            return None
        names = [str(g) for g in given]
        position = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.names if n not in position]
        known = set(self.names)
        extra = [n for n in names if n not in known]
        repeated = len(position) != len(names)
        if not (missing or extra or repeated):
            return [position[n] for n in self.names]
        parts = []
        if missing:
            parts.append(f"missing {listed(missing)}")
        if extra:
            parts.append(f"unknown {listed(extra)}")
        if repeated:
            parts.append("repeated names")
        raise InputMismatchError(
            f"'{field}' columns do not match the model's inputs: {'; '.join(parts)}.",
            field=field, hint=f"The model takes {len(self.names)} columns: "
                              f"{listed(list(self.names))}.")

    def decode_columns(self, values: Sequence[Sequence[Any]], field: str, *,
                       text: bool = False) -> ColumnBatch:
        """A batch from one sequence of JSON values (or CSV texts) per schema column."""
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            raise InputMismatchError(f"'{field}' columns have different lengths "
                                     f"({', '.join(map(str, sorted(lengths)))}).", field=field)
        if not values or not lengths or 0 in lengths:
            raise InputMismatchError(f"'{field}' is an empty batch: send at least one row.",
                                     field=field)
        where = Where(field)
        how = "text" if text else "json"
        return ColumnBatch(tuple(decode_column(c, list(v), where, how)
                                 for c, v in zip(self.columns, values, strict=True)))

    def decode_rows(self, rows: Sequence[Any], field: str, names: Sequence[Any] | None = None,
                    *, text: bool = False) -> ColumnBatch:
        """A batch from rows of values, in ``names`` order (default: the schema's)."""
        width = len(names) if names is not None else len(self.columns)
        order = self.check_names(names, f"{field} columns") if names is not None else None
        if self.one_d:  # one value a row may come bare: ["a text", "another"]
            rows = [[v] if not isinstance(v, list | tuple) else v for v in rows]
        for index, row in enumerate(rows):
            if not isinstance(row, list | tuple) or len(row) != width:
                size = len(row) if isinstance(row, list | tuple) else "not a list of"
                raise InputMismatchError(
                    f"'{field}' row {index} has {size} values; the model takes {width}: "
                    f"{listed(list(names or self.names))}.", field=field, row=index)
        columns = list(zip(*rows, strict=True)) if rows else []
        if order is not None:
            columns = [columns[i] for i in order]
        return self.decode_columns(columns, field, text=text)

    def decode_records(self, records: Sequence[Any], field: str) -> ColumnBatch:
        """A batch from ``[{column: value}, ...]``."""
        wanted = set(self.names)
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputMismatchError(f"'{field}[{index}]' is not an object of column "
                                         "values.", field=field, row=index)
            if record.keys() != wanted:
                self.check_names(list(record), f"{field}[{index}]")
        return self.decode_columns([[r[n] for r in records] for n in self.names], field)

    def decode_mapping(self, mapping: Mapping[str, Any], field: str) -> ColumnBatch:
        """A batch from ``{column: [values...]}``."""
        self.check_names(list(mapping), field)
        for name in self.names:
            if not isinstance(mapping[name], list):
                raise InputMismatchError(f"'{field}.{name}' must be a list of values.",
                                         field=field, column=name)
        return self.decode_columns([mapping[n] for n in self.names], field)

    # -- the model's input ------------------------------------------------------------------

    def model_input(self, batch: ColumnBatch) -> Any:
        """What the model was fit on, rebuilt from ``batch``."""
        values = [c.logical.to_pandas(c, a) for c, a in zip(self.columns, batch.arrays,
                                                             strict=True)]
        if self.kind == "frame":
            import pandas as pd

            labels = [c.label if c.label is not None else c.name for c in self.columns]
            return pd.DataFrame(dict(zip(labels, values, strict=True)), copy=False)
        if self.kind == "series":
            import pandas as pd

            return pd.Series(values[0], name=self.series_name, copy=False)
        if self.kind == "vector":
            return np.asarray(values[0])
        if self.kind == "list":
            return np.asarray(values[0], dtype=object).tolist()
        if self.is_numeric:
            return np.column_stack([np.asarray(v, dtype=np.float64) for v in values])
        return np.column_stack([np.asarray(v, dtype=object) for v in values])

    def encode_rows(self, value: Any) -> dict[str, Any]:
        """Rows of a training-like ``value`` as JSON: ``{"columns": [...], "rows": [...]}``."""
        columns = _column_values(self, value)
        encoded = [c.logical.to_json(c, v) for c, v in zip(self.columns, columns, strict=True)]
        return {"columns": list(self.names),
                "rows": [list(row) for row in zip(*encoded, strict=True)]}


def decode_column(column: Column, values: Any, where: Where, how: str) -> np.ndarray:
    """One column's storage array from JSON values, CSV texts (``how="text"``) or a v2
    tensor's values (``how="tensor"``), checked against what the column takes."""
    logical = column.logical
    if how == "json":
        decoded = logical.from_json(column, values, where)
    elif how == "text":
        decoded = logical.from_text(column, values, where)
    else:
        decoded = logical.from_tensor(column, values, where)
    if column.known is not None and column.type != "category":
        _check_known(column, decoded, values, where)
    return decoded


def _check_known(column: Column, decoded: np.ndarray, values: Any, where: Where) -> None:
    """Refuse values outside ``column.known`` (an encoder's categories), missing ones aside."""
    from nbmci.snapshot.columns import is_missing, known_hint

    known = column.known
    assert known is not None
    for row, value in enumerate(decoded.tolist()):
        if not is_missing(value) and (isinstance(value, list | dict) or value not in known):
            raise where.refuse(column, row, _item(values, row),
                               f"is a value the model's encoder never saw for '{column.name}'",
                               hint=known_hint(known))


def _item(values: Any, row: int) -> Any:
    value = values[row]
    return value.item() if isinstance(value, np.generic) else value


def _column_values(schema: InputSchema, value: Any) -> list[Any]:
    """One sequence of values per schema column from a training-like input."""
    if schema.kind == "frame":
        return [value[c.label if c.label is not None else c.name] for c in schema.columns]
    if schema.one_d:
        return [value if not isinstance(value, np.ndarray) else value.tolist()]
    matrix = np.asarray(value)
    return [matrix[:, i] for i in range(matrix.shape[1])]


def infer_schema(value: Any, name: str = "input",
                 feature_names: Sequence[str] | None = None) -> InputSchema | None:
    """The schema of a training input: a DataFrame, Series, numpy array or list of scalars.

    ``name`` names the one column of a 1-D input without a name of its own; ``feature_names``
    (the model's ``feature_names_in_``) names a matrix's columns."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        columns = []
        for label, series in value.items():
            text = str(label)
            columns.append(column_for(text, series, None if label == text else _label(label)))
        return InputSchema("frame", tuple(columns))
    if isinstance(value, pd.Series):
        label = value.name if value.name is not None else name
        return InputSchema("series", (column_for(str(label), value),), _label(value.name))
    if isinstance(value, np.ndarray):
        if value.ndim == 1:
            return InputSchema("vector", (column_for(name, value),))
        if value.ndim == 2:
            width = value.shape[1]
            names = list(feature_names) if feature_names is not None and \
                len(feature_names) == width else [f"f{i}" for i in range(width)]
            return InputSchema("matrix", tuple(column_for(n, value[:, i])
                                               for i, n in enumerate(names)))
        return None
    if isinstance(value, list) and value and all(
            v is None or isinstance(v, str | int | float | bool) for v in value):
        return InputSchema("list", (column_for(name, pd.Series(value, dtype=object)
                                               if any(isinstance(v, str) for v in value)
                                               else pd.Series(value)),))
    return None


def _label(label: Any) -> Any:
    from nbmci.snapshot.jsonable import to_jsonable

    return to_jsonable(label)


def legacy_schema(signature: Mapping[str, Any], width: int = 0) -> InputSchema:
    """The float-matrix schema of a version committed before input schemas were recorded."""
    inputs = signature.get("inputs") or []
    names = [str(i["name"]) for i in inputs] or [f"f{i}" for i in range(width)]
    return InputSchema("matrix", tuple(Column(n, "float", "float64") for n in names))


def rows_of(value: Any, count: int) -> Any:
    """The first ``count`` rows of a training-like input, preferring to include one row
    with a missing value (so the example rows exercise missing values too)."""
    import pandas as pd

    if isinstance(value, pd.DataFrame | pd.Series):
        head = value.iloc[:count]
        if len(value) > count and not bool(head.isna().to_numpy().any()):
            flags = value.isna()
            flags = flags.any(axis=1) if isinstance(value, pd.DataFrame) else flags
            hits = np.flatnonzero(flags.to_numpy())
            if len(hits):
                head = pd.concat([value.iloc[:count - 1], value.iloc[hits[:1]]])
        return head
    return value[:count]


__all__ = ["KINDS", "TYPES", "ColumnBatch", "InputSchema", "decode_column", "infer_schema",
           "legacy_schema", "rows_of"]
