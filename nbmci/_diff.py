"""Comparing two versions: model, params, metrics, signature and data statistics."""

from __future__ import annotations

import math
from typing import Any

from nbmci.results import Change, DataDiff, Diff, Version

_MISSING = object()
# statistics shown in a data diff, in order
_STATS = ("count", "nulls", "min", "max", "mean", "std", "true", "distinct", "top")


def _compare(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    changes = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if va is _MISSING:
            changes.append(Change(str(key), "added", None, vb))
        elif vb is _MISSING:
            changes.append(Change(str(key), "removed", va, None))
        else:
            changes.append(Change(str(key), "same" if _equal(va, vb) else "changed", va, vb))
    return changes


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)
    return bool(a == b)


def _signature_view(signature: dict[str, Any]) -> dict[str, Any]:
    from nbmci.snapshot.schema import InputSchema

    recorded = signature.get("schema")
    if isinstance(recorded, dict):  # logical types, missing values, categories
        view = {f"input {k}": v for k, v in InputSchema.from_dict(recorded).describe().items()}
    else:
        view = {f"input {i['name']}": i["dtype"] for i in signature.get("inputs", [])}
    view.update({f"output {o['name']}": o["dtype"] for o in signature.get("outputs", [])})
    return view


def _data_diff(key: str, a: Version, b: Version) -> DataDiff:
    da, db = a.data.get(key), b.data.get(key)
    if da is None or db is None:
        status = "added" if da is None else "removed"
        present = db or da
        assert present is not None
        return DataDiff(key, status, (da.rows if da else None, db.rows if db else None),
                        [], {})
    columns = _compare({c["name"]: c["dtype"] for c in da.columns},
                       {c["name"]: c["dtype"] for c in db.columns})
    stats = {}
    for column in dict.fromkeys([*db.stats, *da.stats]):  # the data's own column order
        sa = {k: v for k, v in da.stats.get(column, {}).items() if k in _STATS}
        sb = {k: v for k, v in db.stats.get(column, {}).items() if k in _STATS}
        stats[column] = _compare(sa, sb)
    same = da.digest == db.digest
    return DataDiff(key, "same" if same else "changed", (da.rows, db.rows), columns, stats)


def diff_versions(a: Version, b: Version) -> Diff:
    model = _compare(
        {"class": a.model.class_name, "format": a.model.format, "digest": a.model.digest},
        {"class": b.model.class_name, "format": b.model.format, "digest": b.model.digest},
    )
    data = [_data_diff(key, a, b) for key in sorted(set(a.data) | set(b.data))]
    return Diff(a, b, model, _compare(a.params, b.params), _compare(a.metrics, b.metrics),
                _compare(_signature_view(a.signature), _signature_view(b.signature)), data)
