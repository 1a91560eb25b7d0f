"""Content-defined row chunking: cut points that follow the data, not fixed offsets.

Each row gets a fingerprint mixed from a few fixed-width key columns; a cut falls after a row
whose rolling window of fingerprints hashes to zero modulo the target chunk length. Inserting
or deleting rows therefore moves only the cuts next to the edit, and an append leaves every
earlier chunk as it was. Everything runs as a handful of vectorized numpy passes.
"""

from __future__ import annotations

import numpy as np

WINDOW = 8
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)


def key_words(raw: np.ndarray, rows: int) -> np.ndarray:
    """Up to 16 leading bytes of each row of a fixed-width buffer, as one uint64 per row."""
    per_row = raw.reshape(rows, -1)
    width = per_row.shape[1]
    if width >= 8:
        words = per_row[:, :16] if width >= 16 else per_row[:, :8]
        words = np.ascontiguousarray(words).view(np.uint64)
        return words.sum(axis=1, dtype=np.uint64) if words.shape[1] > 1 else words[:, 0]
    padded = np.zeros((rows, 8), dtype=np.uint8)
    padded[:, :width] = per_row
    return padded.view(np.uint64)[:, 0]


def fingerprints(keys: list[np.ndarray], rows: int) -> np.ndarray:
    """One uint64 per row from one or more uint64 key arrays (mixed again in ``cut_points``)."""
    if not keys:
        return np.zeros(rows, dtype=np.uint64)
    acc = keys[0] * _K1
    for key in keys[1:]:
        acc += key * _K2
    return acc


def is_varied(key: np.ndarray, sample: int = 2048) -> bool:
    """Whether a key column alone has enough distinct values to place cuts well."""
    if len(key) <= sample:
        picked = key
    else:
        picked = key[:: len(key) // sample]
    return len(np.unique(picked)) >= len(picked) // 2


TARGET_CHUNKS = 256  # a dataset is cut into about this many chunks...
MIN_CHUNK_BYTES = 64 << 10  # ...of at least this many bytes on average


def chunk_size(chunk_bytes: int, total_bytes: float) -> float:
    """Average bytes per chunk: about ``TARGET_CHUNKS`` chunks, between ``MIN_CHUNK_BYTES``
    and ``chunk_bytes``, so an edit rewrites about 1% of a dataset of any size (a 1 MB frame
    has 16 chunks, 16 MB 256 chunks of 64 KiB, and from 2 GB on chunks are ``chunk_bytes``)."""
    return min(float(chunk_bytes), max(float(MIN_CHUNK_BYTES), total_bytes / TARGET_CHUNKS))


def average_rows(chunk_bytes: int, row_bytes: float, rows: int) -> int:
    """Target rows per chunk, a power of two, so that small edits (which barely change the
    dataset's size or its bytes per row) keep the same chunking parameters and hence the
    same cuts."""
    size = chunk_size(chunk_bytes, row_bytes * rows)
    target = max(1.0, size / max(row_bytes, 1e-9))
    return 1 << max(0, round(np.log2(target)))


def cut_points(prints: np.ndarray, average: int) -> list[int]:
    """Exclusive end offsets of each chunk; the last one is ``len(prints)``.

    ``prints`` is used as scratch space (it is overwritten).

    Chunks hold between ``average // 4`` and ``average * 4`` rows, except the last.
    """
    rows = len(prints)
    average = max(1, int(average))
    minimum, maximum = max(1, average // 4), max(2, average * 4)
    if rows <= minimum + WINDOW:
        return [rows]
    # window[i] = prints[i] + ... + prints[i + WINDOW - 1], mixed; computed in place
    sums = np.cumsum(prints, dtype=np.uint64, out=prints)
    window = sums[WINDOW - 1 :].copy()
    np.subtract(window[1:], sums[: rows - WINDOW], out=window[1:])
    np.multiply(window, _K1, out=window)
    bits = max(1, round(np.log2(max(2, average - minimum))))
    # a candidate cut after row i (exclusive end i + 1): the top bits of the mixed window are 0
    candidates = np.flatnonzero(window < np.uint64(1 << (64 - bits))) + WINDOW
    cuts: list[int] = []
    start = 0
    for end in candidates.tolist():
        while end - start > maximum:
            start += maximum
            cuts.append(start)
        if end - start >= minimum and end < rows:
            cuts.append(end)
            start = end
    while rows - start > maximum:
        start += maximum
        cuts.append(start)
    cuts.append(rows)
    return cuts
