"""A loaded version as the server calls it (``LiveModel``), and the smoke test that stands
between loading a version and serving it.

``describe`` reads what serving needs from the version's signature and the model: the input
schema as the model takes it (``snapshot.estimators``), the outputs recorded at commit and the
classes. ``smoke_test`` replays the recorded outputs through the path the server will serve
with, after choosing that path: bare matrices for a numeric model fit on a DataFrame when that
predicts the same, a shortcut (``serve.shortcuts``) or a compiled pipeline
(``serve.pipelines``) where one reproduces the model, on the event loop when it is fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from nbmci.errors import FailedError, NbmciError
from nbmci.results import Version
from nbmci.serve.pipelines import compile_pipeline
from nbmci.serve.shortcuts import Predict, shortcut
from nbmci.snapshot.schema import ColumnBatch, InputSchema, legacy_schema
from nbmci.snapshot.servable import ReplayError, example_batch, replay

INLINE_SECONDS = 0.002  # a 64-row predict faster than this runs on the event loop


class SmokeTestFailedError(FailedError):
    """A loaded version failed to predict on its own example rows; it never went live."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"{ref} failed its smoke test: {reason}; the live version keeps serving.",
                         hint=f"Check the model with `nbmci.load('{ref}')` in a notebook.")
        self.ref = ref
        self.reason = reason


_DATATYPES = {"float": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES",
              "object": "BYTES"}


@dataclass(frozen=True)
class Output:
    """One output a served model answers: its method, name, v2 datatype and shape."""

    method: str
    name: str
    datatype: str
    shape: tuple[int, ...]  # past the rows: () for one value a row, (3,) for 3 classes

    def to_metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": [-1, *self.shape],
                "parameters": {"method": self.method}}


@dataclass(frozen=True, eq=False)
class LiveModel:
    """One loaded, smoke-tested version and what serving needs to call it.

    Requests reach ``predict`` as a float matrix in the schema's column order when the schema
    is all-numeric (the fast path), else as a ``ColumnBatch`` that the schema turns into what
    the model was trained on."""

    name: str
    version: int
    model: Any
    schema: InputSchema  # as served: what each column takes (see snapshot.estimators)
    output: str  # name of predict's output (the training target's name)
    class_name: str
    frame_columns: tuple[str, ...] | None = None  # numeric model fit on a DataFrame
    outputs: dict[str, Output] = field(default_factory=dict)  # method -> output
    classes: tuple[Any, ...] | None = None
    inline: bool = False  # predict is fast enough to run on the event loop (see smoke_test)
    shortcut: Predict | None = None  # a faster predict, checked equal (see serve.shortcuts)
    compiled: dict[str, Callable[[ColumnBatch], np.ndarray]] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @cached_property
    def features(self) -> tuple[str, ...]:
        return self.schema.names

    @cached_property
    def numeric(self) -> bool:
        return self.schema.is_numeric

    @cached_property
    def missing_ok(self) -> np.ndarray:
        """Per column, whether a missing value (NaN) may be sent."""
        return np.array([c.takes_missing for c in self.schema.columns], dtype=bool)

    @cached_property
    def version_label(self) -> str:
        return str(self.version)

    @cached_property
    def version_header(self) -> bytes:
        return str(self.version).encode()

    @cached_property
    def default_method(self) -> str:
        return "predict" if "predict" in self.outputs or not self.outputs \
            else next(iter(self.outputs))

    def predict(self, rows: np.ndarray | ColumnBatch, method: str = "predict") -> np.ndarray:
        """``method``'s answers for checked request rows (see the class docstring)."""
        if isinstance(rows, ColumnBatch):
            fast = self.compiled.get(method)  # see serve.pipelines
            if fast is not None:
                return fast(rows)
            X: Any = self.schema.model_input(rows)
        elif self.shortcut is not None and method == "predict":
            return self.shortcut(rows)
        elif self.frame_columns is not None:
            import pandas as pd

            X = pd.DataFrame(rows, columns=list(self.frame_columns), copy=False)
        else:
            X = rows
        return np.asarray(getattr(self.model, method)(X))


def describe(version: Version, model: Any) -> LiveModel:
    """The serving view of a loaded model, from its signature."""
    from nbmci.snapshot.estimators import serving_schema

    signature = version.signature
    recorded = version.schema
    width = int(getattr(model, "n_features_in_", 0) or 0)
    schema = serving_schema(recorded or legacy_schema(signature, width), model)
    fitted = getattr(model, "feature_names_in_", None)
    frame_columns = None
    if fitted is not None and schema.is_numeric:
        frame_columns = tuple(str(c) for c in fitted)
        if set(frame_columns) != set(schema.names):  # a legacy signature of other data
            schema = legacy_schema({"inputs": [{"name": n} for n in frame_columns]})
            schema = serving_schema(schema, model)
    target = (signature.get("outputs") or [{}])[0].get("name") or "predict"
    classes = signature.get("classes")
    outputs = {method: Output(method, target if method == "predict" else method,
                              _DATATYPES.get(out.get("type"), "BYTES"),
                              tuple(out.get("shape") or ()))
               for method, out in (signature.get("outputs_recorded") or {}).items()}
    return LiveModel(version.name, version.version, model, schema, str(target),
                     version.model.class_name, frame_columns, outputs,
                     tuple(classes) if isinstance(classes, list) else None)


def smoke_test(version: Version, live: LiveModel) -> LiveModel:
    """Replay the outputs recorded at commit through the serving path (or, for a version
    committed before outputs were recorded, predict on its example rows); any error or
    difference fails.

    Returns the ``LiveModel`` to serve: for a numeric model fit on a DataFrame, one that
    takes bare matrices when that gives the same predictions (see ``_on_arrays``), and a
    shortcut where one reproduces the model (see ``serve.shortcuts``)."""
    if not version.signature.get("outputs_recorded"):
        return _smoke_test_legacy(version, live)
    try:
        batch = example_batch(live.schema, version.signature)
    except (ReplayError, NbmciError) as exc:
        raise SmokeTestFailedError(version.ref, str(exc)) from exc
    rows: np.ndarray | ColumnBatch = _as_matrix(batch) if live.numeric else batch
    try:
        if live.numeric and live.frame_columns is not None:
            live = _on_arrays(live, rows, live.predict(rows))
        if live.numeric and live.frame_columns is None:
            live = replace(live, shortcut=shortcut(live.model, rows))
        if not live.numeric:
            live = replace(live, compiled=compile_pipeline(live.model, live.schema, batch,
                                                           list(live.outputs)))
        served = live
        replay(version.signature, live.schema,
               lambda b, method: served.predict(_as_matrix(b) if served.numeric else b, method))
    except ReplayError as exc:
        raise SmokeTestFailedError(version.ref, str(exc)) from exc
    except Exception as exc:
        raise SmokeTestFailedError(version.ref, f"{type(exc).__name__}: {exc}") from exc
    # only models in the safe format (scikit-learn's own code): a pickled model may be fast on
    # its example rows and hang on others, and on the event loop no timeout could stop it
    return replace(live, inline=version.model.trusted and _is_fast(live, rows))


def _as_matrix(batch: ColumnBatch) -> np.ndarray:
    return np.column_stack([np.asarray(a, dtype=np.float64) for a in batch.arrays])


def _smoke_test_legacy(version: Version, live: LiveModel) -> LiveModel:
    try:
        matrix = example_matrix(version, live)
        predicted = live.predict(matrix)
    except SmokeTestFailedError:
        raise
    except Exception as exc:
        raise SmokeTestFailedError(version.ref, f"{type(exc).__name__}: {exc}") from exc
    if predicted.shape[:1] != (matrix.shape[0],):
        raise SmokeTestFailedError(
            version.ref, f"{matrix.shape[0]} rows gave predictions of shape {predicted.shape}")
    if predicted.dtype.kind == "f" and not np.isfinite(predicted).all():
        raise SmokeTestFailedError(version.ref, "it predicted NaN or infinity on example rows")
    kind = predicted.dtype.kind
    datatype = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}.get(kind, "BYTES")
    live = replace(live, outputs={"predict": Output("predict", live.output, datatype,
                                                    tuple(predicted.shape[1:]))})
    if live.frame_columns is not None:
        live = _on_arrays(live, matrix, predicted)
    if live.frame_columns is None:
        live = replace(live, shortcut=shortcut(live.model, matrix))
    return replace(live, inline=version.model.trusted and _is_fast(live, matrix))


def example_matrix(version: Version, live: LiveModel) -> np.ndarray:
    """The example rows stored with a version committed before input schemas, in the
    model's feature order."""
    example = version.signature.get("example") or {}
    columns, rows = example.get("columns") or [], example.get("rows") or []
    if not rows:
        if not live.features:
            raise SmokeTestFailedError(version.ref, "it has no signature and no example rows")
        return np.zeros((1, len(live.features)))
    order = [list(map(str, columns)).index(f) for f in live.features] if columns else None
    matrix = np.asarray(rows, dtype=np.float64)
    return matrix[:, order] if order is not None else matrix


def _is_fast(live: LiveModel, example: np.ndarray | ColumnBatch) -> bool:
    """Whether a full batch (64 rows) predicts within a couple of milliseconds: then the thread
    hop and the GIL hand-over would cost more than ``predict`` itself."""
    rows = np.resize(np.arange(len(example)), 64)
    batch = example.take(rows) if isinstance(example, ColumnBatch) else example[rows]
    try:
        fastest = min(_timed(live.predict, batch) for _ in range(5))
    except Exception:
        return False
    return fastest < INLINE_SECONDS


def _timed(function: Callable[[Any], Any], matrix: Any) -> float:
    started = time.perf_counter()
    function(matrix)
    return time.perf_counter() - started


def _on_arrays(live: LiveModel, matrix: np.ndarray, expected: np.ndarray) -> LiveModel:
    """``live`` predicting on bare matrices, if its model gives ``expected`` that way.

    Wrapping each batch in a DataFrame so scikit-learn can check the column names costs about
    1 ms per call, several times a small model's ``predict``. The request was already checked
    against the signature and put in the fitted column order, so the served copy forgets its
    fitted names (``feature_names_in_``; ``n_features_in_`` is still checked). A model that
    needs the frame (a ColumnTransformer selecting columns by name, say) fails or disagrees on
    the example rows and keeps its names and the DataFrame path.
    """
    forgotten = _forget_feature_names(live.model)
    candidate = replace(live, frame_columns=None)
    try:
        same = np.array_equal(candidate.predict(matrix), expected)
    except Exception:
        same = False
    if same:
        return candidate
    for owner, names in forgotten:
        owner.feature_names_in_ = names
    return live


def _forget_feature_names(root: Any) -> list[tuple[Any, Any]]:
    """Delete ``feature_names_in_`` on ``root`` and the estimators inside it (steps, lists,
    dicts); returns what was deleted, to put back."""
    forgotten: list[tuple[Any, Any]] = []
    seen: set[int] = set()
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, str | bytes | np.ndarray | int | float):
            continue
        seen.add(id(item))
        if isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif hasattr(item, "get_params") and hasattr(item, "__dict__"):
            names = vars(item).pop("feature_names_in_", None)
            if names is not None:
                forgotten.append((item, names))
            pending.extend(vars(item).values())
    return forgotten
