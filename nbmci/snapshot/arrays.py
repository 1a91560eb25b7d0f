"""Arrow arrays to the buffers of one stored chunk, and back, without copying the data.

Fixed-width arrays keep their data buffer as it is; strings keep their bytes and store offsets
relative to the chunk, so a chunk's bytes do not depend on where it sits in the column;
dictionary arrays store their indices (the dictionary is stored once per column); anything
else goes through Arrow IPC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from nbmci.errors import IntegrityError

_BINARY = (pa.string(), pa.binary(), pa.large_string(), pa.large_binary())


def fixed_width(type_: pa.DataType) -> int:
    try:
        bits = type_.bit_width
    except ValueError:
        return 0
    return bits // 8 if bits % 8 == 0 else 0


def _validity(arr: pa.Array) -> Any:
    if arr.null_count == 0:
        return None
    return np.packbits(arr.is_valid().to_numpy(zero_copy_only=False), bitorder="little")


def encode_array(arr: pa.Array) -> tuple[dict[str, Any], list[Any]]:
    """A chunk header and the buffers to store for ``arr`` (zero-copy where possible)."""
    type_ = arr.type
    n = len(arr)
    if pa.types.is_dictionary(type_):
        header, buffers = encode_array(arr.indices)
        return {**header, "layout": "dict"}, buffers
    width = fixed_width(type_)
    if width and type_.num_fields == 0:
        data = arr.buffers()[1].slice(arr.offset * width, n * width)
        return {"layout": "fixed", "n": n, "nulls": arr.null_count}, [_validity(arr), data]
    if type_ in _BINARY:
        large = type_ in (pa.large_string(), pa.large_binary())
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if large else np.int32,
                                count=n + 1, offset=arr.offset * (8 if large else 4))
        base, end = int(offsets[0]), int(offsets[-1])
        values = arr.buffers()[2]
        data = values.slice(base, end - base) if values is not None else None
        return ({"layout": "binary", "n": n, "nulls": arr.null_count},
                [_validity(arr), offsets - offsets[0], data])
    return {"layout": "ipc", "n": n, "nulls": arr.null_count}, ipc_bytes(arr)


def ipc_bytes(arr: pa.Array) -> list[Any]:
    """One array as an Arrow IPC stream: for types without a raw-buffer layout here."""
    sink = pa.BufferOutputStream()
    batch = pa.record_batch([arr], names=["c"])
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return [sink.getvalue()]


def decode_array(type_: pa.DataType, header: dict[str, Any], buffers: list[Any],
                 dictionary: pa.Array | None, digest: str) -> pa.Array:
    """The array one chunk holds, built on ``buffers`` without copying them."""
    layout, n, nulls = header.get("layout"), header.get("n"), header.get("nulls", 0)
    try:
        if layout == "dict":
            assert dictionary is not None
            indices = pa.Array.from_buffers(type_.index_type, n, buffers[:2], null_count=nulls)
            return pa.DictionaryArray.from_arrays(indices, dictionary, ordered=type_.ordered)
        if layout == "fixed":
            return pa.Array.from_buffers(type_, n, buffers[:2], null_count=nulls)
        if layout == "binary":
            validity, offsets, data = buffers
            if data is None:
                data = pa.py_buffer(b"")
            return pa.Array.from_buffers(type_, n, [validity, offsets, data], null_count=nulls)
        if layout == "ipc":
            return pa.ipc.open_stream(buffers[0]).read_all().column(0).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, IndexError, AssertionError) as exc:
        raise IntegrityError(f"Data chunk {digest} does not match its column type.") from exc
    raise IntegrityError(f"Data chunk {digest} has an unknown layout {layout!r}.")
