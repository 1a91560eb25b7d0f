"""A model's signature: input names and dtypes, taken from the committed training data."""

from __future__ import annotations

from typing import Any

from nbmci.snapshot.jsonable import to_jsonable

_INPUT_KEYS = ("x", "x_train", "features", "inputs", "train")
_OUTPUT_KEYS = ("y", "y_train", "target", "labels", "label")
EXAMPLE_ROWS = 5


def _columns(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    return int(shape[1])


def _pick_inputs(data: dict[str, Any], n_features: int | None) -> str | None:
    two_d = [k for k, v in data.items() if _columns(v) is not None]
    if n_features is not None:
        two_d = [k for k in two_d if _columns(data[k]) == n_features] or two_d
    for key in two_d:
        if key.lower() in _INPUT_KEYS:
            return key
    return two_d[0] if two_d else None


def _pick_outputs(data: dict[str, Any], inputs: str | None) -> str | None:
    rows = len(data[inputs]) if inputs else None
    one_d = [k for k, v in data.items()
             if k != inputs and len(getattr(v, "shape", ())) == 1
             and (rows is None or len(v) == rows)]
    for key in one_d:
        if key.lower() in _OUTPUT_KEYS:
            return key
    return one_d[0] if one_d else None


def infer_signature(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Inputs (name, dtype), outputs and a few example rows, from the model and its data."""
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    n_features = getattr(model, "n_features_in_", None)
    key = _pick_inputs(data, int(n_features) if n_features is not None else None)
    inputs: list[dict[str, str]] = []
    example: dict[str, Any] | None = None
    if key is not None:
        value = data[key]
        if hasattr(value, "dtypes"):  # DataFrame
            columns = names if names and set(names) <= set(map(str, value.columns)) else None
            frame = value[[c for c in value.columns if str(c) in columns]] if columns else value
            inputs = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]
            head = frame.head(EXAMPLE_ROWS)
            example = {"columns": [str(c) for c in head.columns],
                       "rows": to_jsonable(head.to_numpy().tolist())}
        else:
            width = _columns(value) or 0
            labels = names if names and len(names) == width else [f"f{i}" for i in range(width)]
            inputs = [{"name": n, "dtype": str(value.dtype)} for n in labels]
            example = {"columns": labels, "rows": to_jsonable(value[:EXAMPLE_ROWS].tolist())}
    elif names:
        inputs = [{"name": n, "dtype": "unknown"} for n in names]
    outputs: list[dict[str, str]] = []
    out_key = _pick_outputs(data, key)
    if out_key is not None:
        target = data[out_key]
        outputs = [{"name": str(getattr(target, "name", None) or out_key),
                    "dtype": str(target.dtype)}]
    signature: dict[str, Any] = {"inputs": inputs, "outputs": outputs, "input_data": key,
                                 "output_data": out_key, "example": example}
    classes = getattr(model, "classes_", None)
    if classes is not None:
        signature["classes"] = to_jsonable(classes)
    return signature
