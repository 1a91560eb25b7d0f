"""Turn parameters, metrics and sample values into plain JSON values."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 6


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe rendering: numbers, strings, lists, dicts; anything else as ``repr``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= _MAX_DEPTH:
        return _short_repr(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # numpy scalar
        try:
            return to_jsonable(item(), depth + 1)
        except (TypeError, ValueError):
            return _short_repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, depth + 1) for k, v in list(value.items())[:1000]}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v, depth + 1) for v in list(items)[:1000]]
    tolist = getattr(value, "tolist", None)
    size = getattr(value, "size", None)
    if callable(tolist) and isinstance(size, int) and size <= 1000:
        return to_jsonable(tolist(), depth + 1)
    return _short_repr(value)


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
