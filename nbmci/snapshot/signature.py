"""A model's signature: its input schema, example rows and the outputs recorded on them.

Taken at commit from the training data (the input is the 2-D value the model was fit on, or
for a text model the 1-D one) or from ``example`` rows passed to ``commit``. Besides the
input schema (``nbmci.snapshot.schema``) it keeps the flat ``inputs`` list (name, dtype) that
faces show and versions before input schemas have, the target's name and dtype, the classes
and, per output method, what the model answered on the example rows
(``nbmci.snapshot.servable``).
"""

from __future__ import annotations

from typing import Any

from nbmci.errors import listed
from nbmci.snapshot.jsonable import to_jsonable
from nbmci.snapshot.schema import InputSchema, infer_schema, rows_of

_INPUT_KEYS = ("x", "x_train", "features", "inputs", "train", "text", "texts", "docs",
               "documents", "sentences", "corpus")
_OUTPUT_KEYS = ("y", "y_train", "target", "labels", "label")
EXAMPLE_ROWS = 5
NO_EXAMPLE = ("it was committed without example rows, so no process can check that it "
              "loads and predicts")
NO_EXAMPLE_HINT = ("Commit it with its training data (data={'X_train': X, 'y_train': y}) or "
                   "a few input rows (example=X[:5]).")


def _columns(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    return int(shape[1])


def _is_one_d(value: Any) -> bool:
    return isinstance(value, list) or len(getattr(value, "shape", ())) == 1


def _pick_inputs(data: dict[str, Any], n_features: int | None) -> str | None:
    two_d = [k for k, v in data.items() if _columns(v) is not None]
    if n_features is not None:
        two_d = [k for k in two_d if _columns(data[k]) == n_features] or two_d
    for key in two_d:
        if key.lower() in _INPUT_KEYS:
            return key
    return two_d[0] if two_d else None


def _pick_one_d_input(model: Any, data: dict[str, Any]) -> str | None:
    """The 1-D value a model that takes 1-D input (a text pipeline) was fit on."""
    if getattr(model, "n_features_in_", None) is not None:
        return None  # fit on a matrix
    one_d = [k for k, v in data.items() if _is_one_d(v)]
    for key in one_d:
        if key.lower() in _INPUT_KEYS:
            return key
    if len(one_d) == 1:
        return one_d[0]
    inputs = [k for k in one_d if k.lower() not in _OUTPUT_KEYS]
    return inputs[0] if inputs else None


def _pick_outputs(data: dict[str, Any], inputs: str | None) -> str | None:
    rows = len(data[inputs]) if inputs else None
    one_d = [k for k, v in data.items()
             if k != inputs and len(getattr(v, "shape", ())) == 1
             and (rows is None or len(v) == rows)]
    for key in one_d:
        if key.lower() in _OUTPUT_KEYS:
            return key
    return one_d[0] if one_d else None


def _fitted_columns(schema: InputSchema, names: list[str] | None) -> InputSchema:
    """A frame schema cut to the columns the model was fit on, in their order."""
    if schema.kind != "frame" or not names or list(schema.names) == names \
            or not set(names) <= set(schema.names):
        return schema
    by_name = {c.name: c for c in schema.columns}
    return schema.with_columns([by_name[n] for n in names])


def infer_signature(model: Any, data: dict[str, Any],
                    example: Any = None) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The signature of ``model`` from its training ``data`` and/or ``example`` rows, and
    ``(reason, hint)`` when the version will not be servable."""
    from nbmci.snapshot.servable import record_outputs

    fitted = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in fitted] if fitted is not None else None
    n_features = getattr(model, "n_features_in_", None)
    key = _pick_inputs(data, int(n_features) if n_features is not None else None) \
        or _pick_one_d_input(model, data)
    value = data[key] if key is not None else None
    schema = infer_schema(value if value is not None else example, name=key or "input",
                          feature_names=names)
    signature: dict[str, Any] = {"inputs": [], "outputs": [], "input_data": key,
                                 "output_data": None, "example": None}
    problem: tuple[str, str] | None = None
    if schema is not None:
        schema = _fitted_columns(schema, names)
        head = rows_of(example if example is not None else value, EXAMPLE_ROWS)
        try:
            signature["example"] = schema.encode_rows(head)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise _example_mismatch(schema, exc) from exc
        signature["schema"] = schema.to_dict()
        signature["inputs"] = [{"name": c.name, "dtype": c.dtype} for c in schema.columns]
        recorded, reason = record_outputs(model, schema, signature["example"], head)
        signature["outputs_recorded"] = recorded
        if reason is not None:
            problem = (reason, "Check that the example rows are rows the model takes.")
    else:
        if names:
            signature["inputs"] = [{"name": n, "dtype": "unknown"} for n in names]
        problem = (NO_EXAMPLE, NO_EXAMPLE_HINT)
    out_key = _pick_outputs(data, key)
    if out_key is not None:
        target = data[out_key]
        signature["output_data"] = out_key
        signature["outputs"] = [{"name": str(getattr(target, "name", None) or out_key),
                                 "dtype": str(target.dtype)}]
    classes = getattr(model, "classes_", None)
    if classes is not None:
        signature["classes"] = to_jsonable(classes)
    return signature, problem


def _example_mismatch(schema: InputSchema, exc: Exception) -> Exception:
    from nbmci.errors import InvalidInputError

    return InvalidInputError(
        f"The example rows do not have the model's inputs ({listed(schema.names)}): "
        f"{exc}.", hint="Pass rows shaped like the training input, e.g. example=X_train[:5].")
