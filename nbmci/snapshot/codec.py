"""The byte format of one stored chunk: a small JSON header, then raw buffers.

Arrow buffers go to disk as they are, so hashing and writing a chunk never copies the data:
``NBMCCHK1 | u32 header length | header JSON (space-padded) | buffer | pad | buffer | pad ...``
with every buffer starting on a 64-byte boundary, so loaded buffers are aligned for numpy
and Arrow.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from nbmci.errors import IntegrityError

MAGIC = b"NBMCCHK1"
ALIGN = 64
_ZEROS = bytes(ALIGN)


def _pad(size: int) -> int:
    return -size % ALIGN


def encode(header: dict[str, Any], buffers: list[Any]) -> list[Any]:
    """The pieces whose concatenation is the chunk object (header sizes filled in here)."""
    views = [memoryview(b).cast("B") if b is not None else None for b in buffers]
    header = {**header, "sizes": [-1 if v is None else v.nbytes for v in views]}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    fixed = len(MAGIC) + 4
    text += b" " * _pad(fixed + len(text))
    pieces: list[Any] = [MAGIC + struct.pack("<I", len(text)) + text]
    for view in views:
        if view is None or view.nbytes == 0:
            continue
        pieces.append(view)
        if _pad(view.nbytes):
            pieces.append(_ZEROS[: _pad(view.nbytes)])
    return pieces


def decode(data: Any, digest: str) -> tuple[dict[str, Any], list[Any]]:
    """Split a chunk object into its header and zero-copy slices of ``data`` (a pa.Buffer)."""
    import pyarrow as pa

    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    head = buf.slice(0, len(MAGIC) + 4).to_pybytes()
    if len(head) < len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
        raise IntegrityError(f"Object {digest} is not an nbmci data chunk.")
    (length,) = struct.unpack("<I", head[len(MAGIC) :])
    offset = len(MAGIC) + 4 + length
    try:
        header = json.loads(buf.slice(len(MAGIC) + 4, length).to_pybytes())
        sizes = header["sizes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"Object {digest} has an unreadable chunk header.") from exc
    buffers: list[Any] = []
    for size in sizes:
        if not isinstance(size, int) or size < -1 or offset + max(size, 0) > buf.size:
            raise IntegrityError(f"Object {digest} has a chunk header that does not fit.")
        if size == -1:
            buffers.append(None)
            continue
        buffers.append(buf.slice(offset, size))
        offset += size + _pad(size)
    return header, buffers
