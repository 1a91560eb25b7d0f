"""``nbmci.record(name, value)``: values an evaluation notebook reports to CI.

A record is published as a display output under nbmci's own MIME type, so it lives in the
executed notebook itself and is read back with nbformat; nothing else is needed at run time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from nbmci.errors import InvalidInputError
from nbmci.snapshot.lineage import running_shell

MIME = "application/vnd.nbmci.record+json"
MAX_TABLE_ROWS = 1000
MAX_TABLE_COLUMNS = 100
MAX_STRING = 10_000
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def record(name: str, value: Any) -> None:
    """Record a number, a string or a small table for CI (gates read numbers).

    Args:
        name: what the value is, e.g. ``"accuracy"``; gates refer to it by this name.
        value: an int or float (finite), a string, or a DataFrame (up to 1000 rows).

    Returns nothing, so a cell ending in ``record(...)`` shows only the recorded line.

    Raises:
        InvalidInputError: a bad name, a non-finite number, a huge table or another type.

    Example: ``nbmci.record("accuracy", accuracy_score(y_test, clf.predict(X_test)))``
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(f"{name!r:.80} is not a valid record name.",
                                hint="Use letters, digits, '_', '.' or '-', like 'accuracy'.")
    payload = {"name": name, **_encode(name, value)}
    shell = running_shell()
    if shell is not None:
        text = f"{name} = {value!r}" if payload["kind"] != "table" else f"{name}: table"
        shell.display_pub.publish(data={MIME: payload, "text/plain": text}, metadata={})


def _encode(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"kind": "number", "value": int(value)}
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidInputError(f"Record {name!r} must be a finite number, not {value!r}.")
        return {"kind": "number", "value": value}
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InvalidInputError(f"Record {name!r} is longer than {MAX_STRING} characters.")
        return {"kind": "string", "value": value}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and hasattr(value, "columns"):
        return {"kind": "table", "value": _table(name, value)}
    raise InvalidInputError(
        f"Record {name!r} is a {type(value).__name__}; record numbers, strings or DataFrames.")


def _table(name: str, frame: Any) -> dict[str, Any]:
    from nbmci.snapshot.jsonable import to_jsonable

    rows, columns = frame.shape
    if rows > MAX_TABLE_ROWS or columns > MAX_TABLE_COLUMNS:
        raise InvalidInputError(
            f"Record {name!r} has {rows}x{columns} cells; tables are limited to "
            f"{MAX_TABLE_ROWS} rows and {MAX_TABLE_COLUMNS} columns.",
            hint="Record a summary, or commit the full table as data.")
    return {"columns": [str(c) for c in frame.columns],
            "index": to_jsonable(list(frame.index)),
            "rows": to_jsonable(frame.to_numpy().tolist())}


def read_records(cells: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every record in an executed notebook's outputs, by name (the last one wins)."""
    found: dict[str, dict[str, Any]] = {}
    for cell in cells:
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(MIME)
            if isinstance(payload, Mapping) and isinstance(payload.get("name"), str):
                found[payload["name"]] = {"kind": payload.get("kind"),
                                          "value": payload.get("value")}
    return found


def numbers(records: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The numeric records: what gates and metrics see."""
    return {name: r["value"] for name, r in records.items()
            if r.get("kind") == "number" and isinstance(r.get("value"), (int, float))
            and not isinstance(r.get("value"), bool)}
