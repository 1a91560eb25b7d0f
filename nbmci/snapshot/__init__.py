"""Turning Python objects into stored objects and back: data, models, signature, lineage.

Imported on first use (it loads pandas and pyarrow), never by ``import nbmci``.
"""

from __future__ import annotations

from typing import Any

from nbmci.snapshot import lineage
from nbmci.snapshot.jsonable import to_jsonable
from nbmci.snapshot.serializers import dump_model, load_model
from nbmci.snapshot.signature import infer_signature
from nbmci.snapshot.tables import WriteTally, read_dataset, write_dataset

__all__ = ["WriteTally", "data_nbytes", "dump_model", "infer_signature", "lineage",
           "load_model", "model_params", "read_dataset", "write_dataset"]


def data_nbytes(value: Any) -> int:
    """A cheap estimate of the bytes a data value will store, for progress bars."""
    usage = getattr(value, "memory_usage", None)
    if callable(usage):
        total = usage(index=True, deep=False)
        return int(total.sum() if hasattr(total, "sum") else total)
    return int(getattr(value, "nbytes", 0))


def model_params(model: Any) -> dict[str, Any]:
    """``get_params()`` as JSON, or ``{}`` for models without it. A pipeline's nested
    parameters are kept (``randomforestclassifier__n_estimators``); the nested estimators
    themselves (``steps``, ``transformers``, each step) are not, as their parameters are."""
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return {}
    try:
        params = get_params(deep=True)
    except Exception:  # a third-party model with a broken get_params must still commit
        return {}
    result: dict[str, Any] = to_jsonable({k: v for k, v in params.items()
                                          if not _holds_estimators(v)})
    return result


def _holds_estimators(value: Any) -> bool:
    if hasattr(value, "get_params") and not isinstance(value, type):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_estimators(item) for item in value)
    return False
