"""An input column as commit records it, and where request values sit for error messages.

``column_for`` reads a column from training values; ``Column.logical`` is its entry in the
table of logical types (``nbmci.snapshot.logical``), which decodes and encodes its values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nbmci.errors import InputMismatchError, listed

if TYPE_CHECKING:
    from nbmci.snapshot.logical import LogicalType


@dataclass(frozen=True)
class Column:
    """One input column: what training saw, and at serving what the model takes."""

    name: str
    type: str  # a key of TYPES
    dtype: str  # the training dtype as pandas names it: float64, Int64, str, category, ...
    nullable: bool = False  # had missing values in training
    categories: tuple[Any, ...] | None = None  # category: in training order
    ordered: bool = False
    missing: str = "nan"  # object string columns: the training marker, "nan" or "none"
    label: Any = None  # the DataFrame label when it is not the string ``name`` (e.g. 0)
    # filled in for serving from the model: missing values it copes with, and the only
    # values an encoder fit without handle_unknown="ignore" takes
    takes_missing: bool = False
    known: frozenset[Any] | None = field(default=None, compare=False)

    @property
    def logical(self) -> LogicalType:
        from nbmci.snapshot.logical import TYPES

        return TYPES[self.type]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "dtype": self.dtype,
                               "nullable": self.nullable}
        if self.categories is not None:
            out["categories"] = list(self.categories)
            out["ordered"] = self.ordered
        if self.missing != "nan":
            out["missing"] = self.missing
        if self.label is not None:
            out["label"] = self.label
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        kind = str(data.get("type", "object"))
        categories = data.get("categories")
        nullable = bool(data.get("nullable", False))
        from nbmci.snapshot.logical import TYPES

        return cls(str(data["name"]), kind if kind in TYPES else "object",
                   str(data.get("dtype", "object")), nullable,
                   tuple(categories) if isinstance(categories, list) else None,
                   bool(data.get("ordered", False)), str(data.get("missing", "nan")),
                   data.get("label"), takes_missing=nullable)

    @property
    def zone(self) -> str | None:
        """A datetime column's time zone (from ``datetime64[ns, Europe/Paris]``), else None."""
        inside = self.dtype.partition("[")[2].rstrip("]")
        return inside.partition(",")[2].strip() or None

    def describe(self) -> str:
        """One line for people: ``category (basic, pro; ordered), may be missing``."""
        text = self.type.replace("_", " ")
        if self.categories is not None:
            text += f" ({listed(self.categories, 8)}{'; ordered' if self.ordered else ''})"
        elif self.type == "datetime":
            zone = self.zone
            text += f" ({zone})" if zone else " (no time zone)"
        if self.dtype not in ("float64", "int64", "category", "bool") and \
                self.type not in ("datetime",):
            text += f" [{self.dtype}]"
        return text + (", may be missing" if self.nullable else "")

    def serving(self, *, takes_missing: bool, known: frozenset[Any] | None) -> Column:
        return replace(self, takes_missing=self.nullable or takes_missing, known=known)


def show(value: Any) -> str:
    """A value as the client wrote it: JSON for JSON values, quoted text for the rest."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_missing(value: Any) -> bool:
    return value is None or (type(value) is float and math.isnan(value))


@dataclass(frozen=True)
class Where:
    """Where decoded values sit in the request, for error messages."""

    field: str
    first_row: int = 0

    def refuse(self, column: Column, row: int, value: Any, problem: str,
               hint: str | None = None) -> InputMismatchError:
        row += self.first_row
        return InputMismatchError(
            f"'{self.field}' row {row}, column '{column.name}': {show(value)} {problem}.",
            field=self.field, column=column.name, row=row, value=value, hint=hint)

    def missing(self, column: Column, row: int, value: Any = None) -> InputMismatchError:
        return self.refuse(column, row, value, f"is missing; '{column.name}' had no missing "
                           "values in training and the model cannot take them",
                           hint="Send a value for every row of this column.")


def known_hint(known: Any, limit: int = 10) -> str:
    """``Known values: a, b, c (and 7 more).`` for an error's hint."""
    values = sorted(known, key=str) if isinstance(known, frozenset | set) else list(known or ())
    return f"Known values: {listed([show(v) for v in values], limit)}."


def column_for(name: str, values: Any, label: Any = None) -> Column:
    """The column a pandas Series or 1-D numpy array of training values makes."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    nullable = bool(series.hasnans)
    text = str(dtype)
    kind = getattr(dtype, "kind", "O")
    if isinstance(dtype, pd.CategoricalDtype):
        categories = tuple(_category_values(dtype.categories))
        return Column(name, "category", "category", nullable, categories,
                      bool(dtype.ordered), label=label, takes_missing=nullable)
    if isinstance(dtype, pd.DatetimeTZDtype) or kind == "M":
        return Column(name, "datetime", text, nullable, label=label, takes_missing=nullable)
    if kind == "m":
        return Column(name, "timedelta", text, nullable, label=label, takes_missing=nullable)
    if isinstance(dtype, pd.BooleanDtype) or kind == "b":
        return Column(name, "boolean", text, nullable, label=label, takes_missing=nullable)
    if kind in "iu":
        masked = isinstance(dtype, pd.api.extensions.ExtensionDtype)
        kind_name = "nullable_integer" if masked else "integer"
        return Column(name, kind_name, text, nullable, label=label, takes_missing=nullable)
    if kind == "f":
        return Column(name, "float", text, nullable, label=label, takes_missing=nullable)
    if isinstance(dtype, pd.StringDtype) or kind in "OSU":
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("string", "empty") or kind in "SU":
            marker = "nan"
            if kind == "O" and nullable:  # the first missing value says which marker it is
                marker = "none" if series[series.isna()].iloc[0] is None else "nan"
            return Column(name, "string", "object" if kind in "SU" else text, nullable,
                          missing=marker, label=label, takes_missing=nullable)
    return Column(name, "object", text, nullable, label=label, takes_missing=nullable)


def _category_values(categories: Any) -> list[Any]:
    from nbmci.snapshot.jsonable import to_jsonable

    return [to_jsonable(c) for c in categories.tolist()]
