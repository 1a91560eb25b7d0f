"""Recognising data this process has already committed, without chunking and hashing it again.

Re-committing unchanged training data is the most common commit of all (a new model on the
same frame). Hashing 1 GB with BLAKE3 takes about 0.4 s on one core; XXH3-128 reads the same
memory in about 0.04 s. So each stored dataset is remembered under an XXH3-128 fingerprint of
everything its content depends on: the raw memory of every column (values, validity, offsets,
category codes), dtypes, names and the index, plus the storage format and chunk size. A value
with the same fingerprint reuses the earlier manifest as it is; its objects are only checked
to still be in the store (and refreshed against gc), never re-read.

The fingerprint covers content, not identity: a frame edited in place, even one value, gets a
new fingerprint and is stored the normal way. XXH3 is not cryptographic: two different values
with one fingerprint would have to be crafted on purpose and committed from the same process,
and the store's BLAKE3 digests still verify every object read. Values whose memory does not
hold their content (object columns of Python objects, nested Arrow types) get no fingerprint
and always take the normal path. The memo lives with a ``Project`` (one store), in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash

CAPACITY = 16  # datasets remembered per project


class _Opaque(Exception):
    """Part of the value is not flat memory: no fingerprint."""


@dataclass(frozen=True)
class Remembered:
    snapshot: Any  # tables.DatasetSnapshot
    objects: tuple[tuple[str, int], ...]  # (digest, size) of the manifest and every chunk


class DatasetMemo:
    """Datasets stored by this process, by fingerprint (thread-safe, least recently used)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[bytes, Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Remembered | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: bytes, remembered: Remembered) -> None:
        with self._lock:
            self._entries[key] = remembered
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def forget(self, key: bytes) -> None:
        with self._lock:
            self._entries.pop(key, None)


def fingerprint(value: Any, *context: object) -> bytes | None:
    """XXH3-128 of ``value``'s content and ``context`` (format, chunk size), or ``None``."""
    h = xxhash.xxh3_128()
    _text(h, repr(context))
    try:
        if isinstance(value, np.ndarray):
            _text(h, "ndarray")
            _raw(h, value)
        elif isinstance(value, pd.Series):
            _text(h, "series")
            _label(h, value.name)
            _index(h, value.index)
            _array(h, value.array)
        elif isinstance(value, pd.DataFrame):
            _text(h, "dataframe")
            _text(h, repr([(type(c).__name__, c) for c in value.columns]))
            _index(h, value.index)
            for _, column in value.items():
                _array(h, column.array)
        else:
            return None
    except _Opaque:
        return None
    return h.digest()


def _text(h: Any, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _label(h: Any, name: Any) -> None:
    _text(h, f"{type(name).__name__}:{name!r}")


def _raw(h: Any, array: np.ndarray) -> None:
    if array.dtype.hasobject:
        raise _Opaque
    _text(h, f"{array.dtype.str}{array.shape}")
    h.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _index(h: Any, index: pd.Index) -> None:
    _text(h, type(index).__name__)
    _text(h, repr(list(index.names)))
    if isinstance(index, pd.RangeIndex):
        _text(h, f"{index.start}:{index.stop}:{index.step}")
    elif isinstance(index, pd.MultiIndex):
        for level, codes in zip(index.levels, index.codes, strict=True):
            _index(h, level)
            _raw(h, np.asarray(codes))
    else:
        _array(h, index.array)


def _array(h: Any, array: Any) -> None:
    _text(h, f"{type(array).__name__}:{array.dtype}")
    if isinstance(array, pd.Categorical):
        _text(h, "ordered" if array.ordered else "unordered")
        _raw(h, array.codes)
        _index(h, array.categories)
    elif isinstance(array, pd.arrays.DatetimeArray | pd.arrays.TimedeltaArray
                    | pd.arrays.PeriodArray):
        _raw(h, array.asi8)  # NaT is a value of the int64 view
    elif isinstance(array, pd.arrays.NumpyExtensionArray):
        _raw(h, array.to_numpy())
    elif hasattr(array, "__arrow_array__"):  # Arrow-backed, and pandas' masked arrays
        arrow = array.__arrow_array__()
        for chunk in arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]:
            _arrow(h, chunk)
    else:
        raise _Opaque


def _arrow(h: Any, array: pa.Array) -> None:
    kind = array.type
    if pa.types.is_dictionary(kind):
        _text(h, f"dictionary:{kind}")
        _arrow(h, array.indices)
        _arrow(h, array.dictionary)
        return
    if pa.types.is_nested(kind):
        raise _Opaque  # child arrays carry offsets of their own
    _text(h, f"{kind}:{len(array)}:{array.offset}")
    for buffer in array.buffers():
        if buffer is None:
            _text(h, "-")
        else:
            h.update(len(buffer).to_bytes(8, "little"))
            h.update(buffer)
