"""Content digests: ``"blake3:<64 hex>"``, streamed over buffers without copying them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import blake3

ALGORITHM = "blake3"
_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}", re.ASCII)
# Below this size the thread pool costs more than it saves.
_THREADED_MIN = 4 << 20

Buffer = bytes | bytearray | memoryview


def hash_buffers(pieces: Sequence[Any]) -> str:
    """Digest of the concatenation of ``pieces`` (anything exposing the buffer protocol)."""
    total = sum(memoryview(p).nbytes for p in pieces)
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if total >= _THREADED_MIN else 1)
    for piece in pieces:
        hasher.update(piece)
    return f"{ALGORITHM}:{hasher.hexdigest()}"


def hash_bytes(data: Any) -> str:
    """Digest of one buffer."""
    view = memoryview(data)
    threads = blake3.blake3.AUTO if view.nbytes >= _THREADED_MIN else 1
    return f"{ALGORITHM}:{blake3.blake3(view, max_threads=threads).hexdigest()}"


def is_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def hex_part(digest: str) -> str:
    return digest.partition(":")[2]


def short_digest(digest: str) -> str:
    """The first 12 hex characters, as shown to people."""
    return hex_part(digest)[:12]


def canonical_json(obj: object) -> bytes:
    """The bytes a JSON document is hashed as: sorted keys, no spaces, no NaN."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
