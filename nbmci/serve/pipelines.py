"""Serving shortcuts for the commonest mixed-type models: a ColumnTransformer, or a text
vectorizer, into an estimator.

``make_pipeline(ColumnTransformer([("num", StandardScaler(), [...]), ("cat", OneHotEncoder(),
[...])]), LogisticRegression())`` spends about 3.5 ms a call in scikit-learn, whatever the
batch size: building the DataFrame, validating it, and each transformer's checks. The work
itself is a subtraction, a division and a dictionary look-up per value. Here the column
transformer is compiled, from its fitted state, into a function from a request's decoded
columns (``ColumnBatch``) straight to the matrix it would produce, and the final estimator
runs on that matrix (through ``serve.shortcuts`` when it has one).

A text pipeline (``TfidfVectorizer``, ``CountVectorizer`` or ``HashingVectorizer`` into an
estimator) runs its two steps directly on the request's texts, skipping the Series and the
Pipeline's per-call checks.

Compiled: ``StandardScaler``, ``MinMaxScaler``, ``SimpleImputer`` (numeric) and pipelines of
them, ``OneHotEncoder`` (no ``drop``, no infrequent categories), ``"passthrough"`` and
``"drop"``. Anything else, or a compiled matrix that differs from the transformer's own on
the example rows (or on rows of unseen categories), keeps the model's own path. The server
replays the outputs recorded at commit through whichever path it serves with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nbmci.serve.shortcuts import shortcut
from nbmci.snapshot.schema import ColumnBatch, InputSchema

Block = Callable[[ColumnBatch], np.ndarray]  # (rows, width) of the transformer's output
Methods = dict[str, Callable[[ColumnBatch], np.ndarray]]
_NUMERIC = ("float", "integer")


def compile_pipeline(model: Any, schema: InputSchema, example: ColumnBatch,
                     methods: list[str]) -> Methods:
    """``{method: fast function}`` for a ColumnTransformer pipeline that compiles and agrees
    with the model on ``example``; ``{}`` for any other model."""
    steps = [s for _, s in getattr(model, "steps", []) if s not in (None, "passthrough")]
    if len(steps) != 2:
        return {}
    transformer, final = steps
    try:
        if schema.one_d and hasattr(transformer, "build_analyzer"):  # a text vectorizer
            encode: Block | None = _texts(transformer)
        elif schema.kind == "frame" and hasattr(transformer, "transformers_"):
            encode = _column_transformer(transformer, schema)
            if encode is not None and not _agrees(encode, transformer, schema, example):
                return {}
        else:
            return {}
        if encode is None:
            return {}
        matrix = encode(example)
        fast = shortcut(final, matrix)
    except Exception:  # a fitted state these compilers do not know: the model's own path
        return {}
    compiled: Methods = {}
    for method in methods:
        call = fast if method == "predict" and fast is not None else getattr(final, method)
        compiled[method] = _then(encode, call)
    return compiled


def _then(encode: Block, call: Callable[[np.ndarray], Any]) -> Callable[[ColumnBatch], Any]:
    return lambda batch: np.asarray(call(encode(batch)))


def _texts(vectorizer: Any) -> Block:
    """A text vectorizer's sparse matrix of one text column (no Series, no Pipeline)."""
    return lambda batch: vectorizer.transform(batch.arrays[0])


def _agrees(encode: Block, transformer: Any, schema: InputSchema, example: ColumnBatch) -> bool:
    """The compiled matrix equals the transformer's own on the example rows and on the same
    rows with every string column set to a value training never saw."""
    batches = [example]
    open_ = [c.type == "string" and c.known is None for c in schema.columns]
    if any(open_):  # columns that take values training never saw
        batches.append(ColumnBatch(tuple(
            np.full(len(example), "\x00unseen", dtype=object) if is_open else a
            for is_open, a in zip(open_, example.arrays, strict=True))))
    for batch in batches:
        expected = transformer.transform(schema.model_input(batch))
        expected = expected.toarray() if hasattr(expected, "toarray") else np.asarray(expected)
        found = encode(batch)
        if found.shape != expected.shape or not np.allclose(found, expected, rtol=1e-12,
                                                            atol=1e-12, equal_nan=True):
            return False
    return True


def _column_transformer(transformer: Any, schema: InputSchema) -> Block | None:
    indices = getattr(transformer, "_transformer_to_input_indices", None)
    if indices is None:
        return None
    blocks: list[Block] = []
    for name, part, _ in transformer.transformers_:
        columns = [int(i) for i in indices.get(name, [])]
        if part == "drop" or not columns:
            continue
        block = _block(part, columns, schema)
        if block is None:
            return None
        blocks.append(block)
    if not blocks:
        return None

    def encode(batch: ColumnBatch) -> np.ndarray:
        return np.hstack([block(batch) for block in blocks]) if len(blocks) > 1 \
            else blocks[0](batch)

    return encode


def _block(part: Any, columns: list[int], schema: InputSchema) -> Block | None:
    kind = type(part).__name__ if type(part).__module__.startswith("sklearn.") else None
    if kind == "OneHotEncoder":
        return _one_hot(part, columns, schema)
    numeric = all(schema.columns[i].type in _NUMERIC for i in columns)
    if not numeric:
        return None
    steps = [part] if part == "passthrough" or not hasattr(part, "steps") else \
        [s for _, s in part.steps if s not in (None, "passthrough")]
    scalings = [_scaling(step) for step in steps]
    if any(s is None for s in scalings):
        return None

    def block(batch: ColumnBatch) -> np.ndarray:
        values = np.column_stack([batch.arrays[i].astype(np.float64, copy=False)
                                  for i in columns])
        for scale in scalings:
            values = scale(values)  # type: ignore[misc]
        return values

    return block


def _scaling(step: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    kind = type(step).__name__ if type(step).__module__.startswith("sklearn.") else None
    if step == "passthrough" or (kind == "FunctionTransformer" and step.func is None):
        return lambda values: values  # a remainder="passthrough" is an identity transformer
    if kind == "StandardScaler":
        mean, scale = step.mean_, step.scale_
        mean = mean if step.with_mean and mean is not None else 0.0
        scale = scale if step.with_std and scale is not None else 1.0
        return lambda values: (values - mean) / scale
    if kind == "MinMaxScaler" and not step.clip:
        factor, offset = step.scale_, step.min_
        return lambda values: values * factor + offset
    if kind == "SimpleImputer" and not step.add_indicator and \
            np.issubdtype(np.asarray(step.statistics_).dtype, np.number) and \
            _is_nan(step.missing_values) and not np.isnan(step.statistics_).any():
        fill = np.asarray(step.statistics_, dtype=np.float64)
        return lambda values: np.where(np.isnan(values), fill, values)
    return None


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _one_hot(encoder: Any, columns: list[int], schema: InputSchema) -> Block | None:
    if encoder.drop is not None or any(i is not None for i in
                                       getattr(encoder, "_infrequent_indices", []) or []):
        return None
    lookups, offsets, width = [], [], 0
    for position, index in zip(range(len(columns)), columns, strict=True):
        categories = encoder.categories_[position].tolist()
        column = schema.columns[index]
        table = {c: i for i, c in enumerate(categories) if not _is_nan(c) and c is not None}
        missing = next((i for i, c in enumerate(categories) if _is_nan(c) or c is None), -1)
        if column.type == "category":  # storage: codes of the training categories
            codes = np.array([table.get(c, -1) for c in column.categories or ()] + [missing],
                             dtype=np.intp)
            lookups.append(lambda values, codes=codes: codes[values])  # -1 picks the last
        else:
            lookups.append(lambda values, table=table, missing=missing: np.fromiter(
                (missing if v is None or _is_nan(v) else table.get(v, -1)
                 for v in values.tolist()), dtype=np.intp, count=len(values)))
        offsets.append(width)
        width += len(categories)
    dtype, strict = encoder.dtype, encoder.handle_unknown == "error"

    def block(batch: ColumnBatch) -> np.ndarray:
        rows = len(batch)
        out = np.zeros((rows, width), dtype=dtype)
        every = np.arange(rows)
        for lookup, offset, index in zip(lookups, offsets, columns, strict=True):
            found = lookup(batch.arrays[index])
            hit = found >= 0
            if strict and not hit.all():  # as the encoder itself refuses them
                raise ValueError(f"Found unknown categories in column "
                                 f"'{schema.columns[index].name}' during transform")
            out[every[hit], offset + found[hit]] = 1
        return out

    return block
