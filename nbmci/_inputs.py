"""Checking and naming what a user passes to ``commit``: model names, data, params, metrics.

A model's name defaults to the variable it was passed as: the caller's call expression is
read with ``executing`` (present wherever IPython is), else the caller's scope is searched.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import re
from collections.abc import Mapping
from typing import Any

from nbmci import refs
from nbmci.errors import InvalidInputError, UnsupportedDataError

DATA_KEY_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_frame() -> Any:
    """The innermost frame outside the nbmci package: the caller's code."""
    frame = inspect.currentframe()
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame = frame.f_back
    return frame


def variable_name(value: Any, argument: tuple[int, str] | None = None) -> str | None:
    """The name of the caller's variable holding ``value``, if it can be known exactly.

    With ``argument`` (position, keyword) the caller's call expression is read (via the
    ``executing`` package, present wherever IPython is) so ``commit(clf)`` gives ``"clf"``
    even when other variables hold the same object; otherwise the caller's scope is searched
    and the name is used only when exactly one variable holds ``value``.
    """
    frame = _user_frame()
    if frame is None:
        return None
    try:
        spoken = _spoken_argument(frame, argument) if argument else None
        if spoken is not None:
            return spoken
        names = {key for scope in (frame.f_locals, frame.f_globals)
                 for key, bound in list(scope.items())
                 if bound is value and not key.startswith("_") and key not in ("In", "Out")}
    finally:
        del frame
    return names.pop() if len(names) == 1 else None


def _spoken_argument(frame: Any, argument: tuple[int, str]) -> str | None:
    import ast

    try:
        import executing
    except ImportError:
        return None
    try:
        node = executing.Source.executing(frame).node
    except Exception:  # executing cannot always tell (e.g. code without source)
        return None
    if not isinstance(node, ast.Call):
        return None
    position, keyword = argument
    expression: ast.expr | None = None
    if len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args):
        expression = node.args[position]
    for item in node.keywords:
        if item.arg == keyword:
            expression = item.value
    return expression.id if isinstance(expression, ast.Name) else None


def model_name(model: Any, name: str | None) -> str:
    """``name`` validated, or the name of the variable ``model`` was passed as."""
    if name is not None:
        return refs.validate_name(name)
    guessed = variable_name(model, (0, "model"))
    if guessed is None:
        raise InvalidInputError("Cannot tell the model's name from here.",
                                hint="Pass name='my-model'.")
    try:
        return refs.name_for_variable(guessed)
    except InvalidInputError as exc:
        raise InvalidInputError(f"The variable name {guessed!r} is not a valid model name.",
                                hint="Pass name='my-model'.") from exc


def data_items(data: Any) -> dict[str, Any]:
    """``data`` as ``{name: value}``; a single value is named after its variable."""
    if data is None:
        return {}
    if isinstance(data, Mapping):
        items = dict(data)
    else:
        items = {variable_name(data, (1, "data")) or "data": data}
    for key, value in items.items():
        if not isinstance(key, str) or not re.fullmatch(DATA_KEY_PATTERN, key, re.ASCII):
            raise InvalidInputError(
                f"{key!r} is not a valid data name.",
                hint="Data names are 1-64 letters, digits, '_', '.' or '-', like X_train.")
        if not _is_data(value):
            raise UnsupportedDataError(
                f"Data {key!r} is a {type(value).__name__}; nbmci stores DataFrames, Series "
                "and numpy arrays.",
                hint="Convert it first, e.g. pandas.DataFrame(value).")
    return items


def _is_data(value: Any) -> bool:
    module = type(value).__module__
    return (module.startswith("pandas") and type(value).__name__ in ("DataFrame", "Series")) \
        or (module == "numpy" and type(value).__name__ == "ndarray")


def check_example(example: Any) -> None:
    """``example`` rows must be data, or a non-empty list of scalars (a text model's input)."""
    if example is None or _is_data(example):
        if example is not None and len(example) == 0:
            raise InvalidInputError("example has no rows.", hint="Pass a few input rows.")
        return
    if isinstance(example, list) and example and all(
            v is None or isinstance(v, str | int | float | bool) for v in example):
        return
    raise UnsupportedDataError(
        f"example is a {type(example).__name__}; pass a DataFrame, Series, numpy array or a "
        "list of strings or numbers.", hint="For instance example=X_train[:5].")


def mapping(what: str, value: Any) -> dict[str, Any]:
    """A dict with short string keys, its values made JSON-safe."""
    from nbmci.snapshot.jsonable import to_jsonable

    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a dict, not {type(value).__name__}.")
    for key in value:
        if not isinstance(key, str) or not key or len(key) > 128:
            raise InvalidInputError(f"{what} keys must be non-empty strings of at most 128 "
                                    f"characters; got {key!r:.80}.")
    result: dict[str, Any] = to_jsonable(dict(value))
    return result


def metrics(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metrics as JSON numbers: finite ints and floats only."""
    if values is None:
        return {}
    checked = mapping("metrics", values)
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidInputError(f"Metric {key!r} must be a number, not {value!r:.80}.")
        if not math.isfinite(float(value)):
            raise InvalidInputError(f"Metric {key!r} must be finite, not {value!r}.")
        checked[key] = float(value) if not isinstance(value, int) else int(value)
    return checked
