"""Per-column summary statistics, computed per chunk and combined exactly.

Numbers keep count, nulls, min, max, mean and m2 (sum of squared deviations), combined with
Chan's parallel formula; strings and categories keep value counts while they stay small.
Unchanged chunks reuse their stored statistics, so re-commits and appends scan only new rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TOP_VALUES = 20
MAX_TRACKED = 64  # distinct values per chunk before a column counts as high-cardinality


def _number(value: Any) -> Any:
    """A JSON-safe number: non-finite floats become strings."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _as_float(value: Any) -> float:
    return float(value)  # also parses the "inf"/"-inf" strings _number writes


def chunk_stats(arr: pa.Array) -> dict[str, Any]:
    type_ = arr.type
    count = len(arr) - arr.null_count
    out: dict[str, Any] = {"count": count, "nulls": arr.null_count}
    if count == 0:
        return out
    values = _numpy_view(arr)
    if values is not None and (pa.types.is_integer(type_) or pa.types.is_floating(type_)):
        return {**out, **_numeric(values)}
    if values is not None and pa.types.is_timestamp(type_):
        return {**out, "min": int(values.min()), "max": int(values.max())}
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        bounds = pc.min_max(arr)
        mean = pc.mean(arr).as_py()
        variance = pc.variance(arr, ddof=0).as_py() if count > 1 else 0.0
        out.update(min=_number(bounds["min"].as_py()), max=_number(bounds["max"].as_py()),
                   mean=_number(mean), m2=_number(variance * count if variance is not None
                                                  and math.isfinite(mean or 0) else None))
    elif pa.types.is_boolean(type_):
        out["true"] = int(pc.sum(arr).as_py() or 0)
    elif pa.types.is_temporal(type_):
        bounds = pc.min_max(arr.cast(pa.int64()) if not pa.types.is_date(type_)
                            else arr.cast(pa.date32()).cast(pa.int32()))
        out.update(min=bounds["min"].as_py(), max=bounds["max"].as_py())
    elif pa.types.is_dictionary(type_) or pa.types.is_string(type_) or \
            pa.types.is_large_string(type_):
        counts = pc.value_counts(arr)
        if len(counts) <= MAX_TRACKED:
            out["values"] = {
                str(v): int(c) for v, c in zip(counts.field("values").to_pylist(),
                                               counts.field("counts").to_pylist(), strict=True)
                if v is not None
            }
        else:
            out["distinct_at_least"] = len(counts)
    return out


def _numpy_view(arr: pa.Array) -> np.ndarray | None:
    """The values of a null-free fixed-width array as numpy, without copying."""
    if arr.null_count or len(arr) == 0 or pa.types.is_dictionary(arr.type):
        return None
    try:
        dtype = np.dtype(arr.type.to_pandas_dtype()) if not pa.types.is_timestamp(arr.type) \
            else np.dtype(np.int64)
    except (NotImplementedError, TypeError):
        return None
    if dtype.kind not in "iuf" or dtype.itemsize * 8 != arr.type.bit_width:
        return None
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset *
                         dtype.itemsize)


def _numeric(values: np.ndarray) -> dict[str, Any]:
    """min, max, mean and m2 in a few vectorized passes (numpy's reductions are SIMD)."""
    as_float = values if values.dtype == np.float64 else values.astype(np.float64)
    with np.errstate(all="ignore"):
        mean = float(as_float.mean())
        centered = as_float - mean
        m2 = float(np.dot(centered, centered))
    low, high = values.min().item(), values.max().item()
    return {"min": _number(low), "max": _number(high), "mean": _number(mean),
            "m2": _number(m2) if math.isfinite(mean) else None}


def combine(type_name: str, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One column's summary from its chunks' statistics."""
    out: dict[str, Any] = {"type": type_name,
                           "count": sum(c.get("count", 0) for c in chunks),
                           "nulls": sum(c.get("nulls", 0) for c in chunks)}
    with_values = [c for c in chunks if c.get("count")]
    if not with_values:
        return out
    first = with_values[0]
    if "mean" in first:
        n, mean, m2 = 0, 0.0, 0.0
        finite = True
        for c in with_values:
            if isinstance(c.get("mean"), str) or c.get("m2") is None or isinstance(c["m2"], str):
                finite = False
                break
            nb, mb, m2b = c["count"], c["mean"], c["m2"]
            delta = mb - mean
            total = n + nb
            mean += delta * nb / total
            m2 += m2b + delta * delta * n * nb / total
            n = total
        lows = [_as_float(c["min"]) for c in with_values]
        highs = [_as_float(c["max"]) for c in with_values]
        out.update(min=_number(_maybe_int(min(lows))), max=_number(_maybe_int(max(highs))))
        if finite:
            out.update(mean=mean, std=math.sqrt(m2 / n) if n else 0.0)
    elif "min" in first:
        out.update(min=min(c["min"] for c in with_values), max=max(c["max"] for c in with_values))
    elif "true" in first:
        out["true"] = sum(c["true"] for c in with_values)
    elif "values" in first or "distinct_at_least" in first:
        if all("values" in c for c in with_values):
            merged: dict[str, int] = {}
            for c in with_values:
                for value, count in c["values"].items():
                    merged[value] = merged.get(value, 0) + count
            out["distinct"] = len(merged)
            top = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
            out["top"] = dict(top)
        else:
            out["distinct_at_least"] = max(c.get("distinct_at_least", 0) for c in with_values)
    return out


def _maybe_int(value: float) -> float | int:
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def ndarray_stats(value: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"type": str(value.dtype), "count": int(value.size), "nulls": 0}
    if value.size and (np.issubdtype(value.dtype, np.number) and
                       not np.issubdtype(value.dtype, np.complexfloating)):
        with np.errstate(all="ignore"):
            out.update(min=_number(value.min().item()), max=_number(value.max().item()),
                       mean=_number(float(np.mean(value, dtype=np.float64))),
                       std=_number(float(np.std(value, dtype=np.float64))))
    return out
