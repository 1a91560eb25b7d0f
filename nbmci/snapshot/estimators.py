"""What a fitted model tells about its inputs and outputs, read from scikit-learn's structure.

- ``methods``: the output methods a model has (``predict``, ``predict_proba``, ...).
- ``serving_schema``: the input schema refined with what the model itself takes: which
  columns may be missing (scikit-learn's ``allow_nan`` tag, seen through pipelines, column
  transformers and their imputers) and, for encoders fit with ``handle_unknown="error"``,
  the only values each column may hold.

Anything this cannot read (a model of another library, an unusual composite) keeps the
recorded schema as it is: the request checks are then only as strict as training data.
"""

from __future__ import annotations

from typing import Any

from nbmci.snapshot.schema import InputSchema

METHODS = ("predict", "predict_proba", "decision_function")


def methods(model: Any) -> list[str]:
    """The output methods ``model`` has, ``predict`` first (``transform`` for a model that
    only transforms)."""
    found = [m for m in METHODS if callable(getattr(model, m, None))]
    if not found and callable(getattr(model, "transform", None)):
        found = ["transform"]
    return found


def serving_schema(schema: InputSchema, model: Any) -> InputSchema:
    """``schema`` with each column's ``takes_missing`` and ``known`` set from ``model``."""
    names = list(schema.names)
    try:
        missing_ok = _missing_ok(model, names)
        known, strict = _known(model, names)
    except Exception:  # an estimator that does not look as scikit-learn documents
        missing_ok, known, strict = set(), {}, set()
    return schema.with_columns([
        c.serving(takes_missing=c.name in missing_ok and c.name not in strict,
                  known=known.get(c.name))
        for c in schema.columns])


def _steps(model: Any) -> list[Any]:
    return [s for _, s in getattr(model, "steps", []) if s is not None and s != "passthrough"]


def _is(model: Any, *names: str) -> bool:
    return type(model).__name__ in names and type(model).__module__.startswith("sklearn.")


def _parts(model: Any, names: list[str]) -> list[tuple[Any, list[str]]]:
    """A fitted ColumnTransformer's (transformer, the input columns it takes) pairs."""
    indices = getattr(model, "_transformer_to_input_indices", None)
    parts = []
    for name, transformer, _ in getattr(model, "transformers_", []):
        taken = indices.get(name, []) if indices is not None else []
        parts.append((transformer, [names[int(i)] for i in taken if int(i) < len(names)]))
    return parts


_FILLS = ("SimpleImputer", "IterativeImputer", "KNNImputer", "OneHotEncoder",
          "OrdinalEncoder", "TargetEncoder")  # take missing values and put none out


def _handling(model: Any) -> str:
    """What a single estimator does with missing values: ``fills`` them (imputers, encoders,
    estimators such as gradient boosting that take them), ``passes`` them on (scalers and
    other transformers that keep NaN where it was) or ``refuses`` them."""
    try:
        allowed = bool(model.__sklearn_tags__().input_tags.allow_nan)
    except Exception:
        return "refuses"
    if not allowed:
        return "refuses"
    if _is(model, *_FILLS) or callable(getattr(model, "predict", None)):
        return "fills"
    return "passes"


def _after_ok(steps: list[Any], then_ok: bool) -> bool:
    """Whether missing values reaching ``steps`` (then whatever takes ``then_ok``) are taken."""
    for step in steps:
        if hasattr(step, "steps") or hasattr(step, "transformers_") or \
                hasattr(step, "transformer_list"):
            return False  # a nested composite in the middle: be strict
        handling = _handling(step)
        if handling != "passes":
            return handling == "fills"
    return then_ok


def _missing_ok(model: Any, names: list[str], then_ok: bool = True) -> set[str]:
    """Input columns whose missing values ``model`` copes with, given whether what follows
    it (``then_ok``) copes with missing values it passes on."""
    if hasattr(model, "steps"):
        steps = _steps(model)
        if not steps:
            return set(names) if then_ok else set()
        return _missing_ok(steps[0], names, _after_ok(steps[1:], then_ok))
    if hasattr(model, "transformers_"):
        ok: set[str] = set()
        for transformer, taken in _parts(model, names):
            if transformer == "drop":
                ok.update(taken)  # never read
            elif transformer == "passthrough":
                ok.update(taken if then_ok else ())
            else:
                ok.update(_missing_ok(transformer, taken, then_ok))
        return ok
    if hasattr(model, "transformer_list"):  # FeatureUnion: every branch must cope
        branches = [_missing_ok(t, names, then_ok) for _, t in model.transformer_list
                    if t not in (None, "drop")]
        return set.intersection(*branches) if branches else set(names)
    handling = _handling(model)
    return set(names) if handling == "fills" or (handling == "passes" and then_ok) else set()


def _known(model: Any, names: list[str]) -> tuple[dict[str, frozenset[Any]], set[str]]:
    """``({column: the values an encoder takes}, {columns such an encoder refuses missing in})``
    for encoders fit with ``handle_unknown="error"`` that read input columns as they are."""
    if hasattr(model, "steps"):
        imputed = False
        for step in _steps(model):
            if _is(step, "SimpleImputer"):  # keeps every value that is not missing
                imputed = True
                continue
            known, strict = _known(step, names)
            return known, set() if imputed else strict  # an imputer filled the missing ones
        return {}, set()
    if hasattr(model, "transformers_"):
        known: dict[str, frozenset[Any]] = {}
        strict: set[str] = set()
        for transformer, taken in _parts(model, names):
            if transformer in ("drop", "passthrough"):
                continue
            part, refuses = _known(transformer, taken)
            known.update(part)
            strict.update(refuses)
        return known, strict
    if _is(model, "OneHotEncoder", "OrdinalEncoder") and \
            getattr(model, "handle_unknown", None) == "error":
        categories = getattr(model, "categories_", None)
        if categories is None or len(categories) != len(names):
            return {}, set()
        known, strict = {}, set()
        for name, values in zip(names, categories, strict=True):
            listed = [v for v in values.tolist() if not _missing(v)]
            known[name] = frozenset(listed)
            if len(listed) == len(values):
                strict.add(name)
        return known, strict
    return {}, set()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
