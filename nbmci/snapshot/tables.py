"""DataFrames, Series and numpy arrays to chunked, deduplicated objects and back.

A dataset is a manifest (canonical JSON, itself an object) listing, per column, the digests of
its row chunks. Row chunks are cut by content (see ``chunking``) and shared by every column, so
committing the same data again stores nothing, an append stores about the appended rows, and
an edit in the middle stores about the changed rows. Column chunks are hashed and written
straight from Arrow's buffers. The schema (dtypes incl. categorical, tz-aware datetimes and
the index) travels as Arrow's own schema with pandas metadata, so round trips are exact.
"""

from __future__ import annotations

import base64
import logging
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from nbmci.digest import canonical_json, hash_buffers, is_digest
from nbmci.errors import IntegrityError, UnsupportedDataError, listed
from nbmci.snapshot import arrays, chunking, codec, stats
from nbmci.snapshot.memo import DatasetMemo, Remembered, fingerprint
from nbmci.store.objects import ObjectStore, ObjectWriter

logger = logging.getLogger(__name__)

FORMAT = "nbmci.dataset/1"
PAGE_FORMAT = "nbmci.dataset-page/1"
_MAX_KEY_COLUMNS = 2
# A table's chunk lists (digests and per-chunk statistics, ~100 bytes a chunk and column) go
# into pages of about PAGE_CHUNKS row chunks, cut where the key column's chunk digest says, so
# an edit rewrites the pages around it and not a manifest as long as the whole dataset.
PAGE_CHUNKS = 16
_PAGE_MAX = PAGE_CHUNKS * 4
Progress = Callable[[int], None]


@dataclass
class WriteTally:
    """What a commit stored: bytes and objects that were new versus already present."""

    new_bytes: int = 0
    dedup_bytes: int = 0
    new_objects: int = 0
    dedup_objects: int = 0
    digests: set[str] = field(default_factory=set)

    def add(self, digest: str, size: int, written: bool) -> None:
        self.digests.add(digest)
        if written:
            self.new_bytes += size
            self.new_objects += 1
        else:
            self.dedup_bytes += size
            self.dedup_objects += 1

    def to_dict(self) -> dict[str, int]:
        return {"new_bytes": self.new_bytes, "dedup_bytes": self.dedup_bytes,
                "new_objects": self.new_objects, "dedup_objects": self.dedup_objects}


@dataclass(frozen=True)
class DatasetSnapshot:
    digest: str  # of the manifest object
    kind: str
    rows: int
    nbytes: int
    schema: list[dict[str, str]]
    stats: dict[str, Any]
    manifest: dict[str, Any]


# -- writing ---------------------------------------------------------------------------------


def _to_table(value: Any) -> tuple[str, pa.Table, dict[str, Any]]:
    if isinstance(value, pd.Series):
        name = value.name
        extra = {"series_name": name if isinstance(name, (str, int, float, bool, type(None)))
                 else str(name)}
        value = value.to_frame(name="__series__")
        kind = "series"
    elif isinstance(value, pd.DataFrame):
        kind, extra = "dataframe", {}
        if not value.columns.is_unique:
            dupes = sorted({str(c) for c in value.columns[value.columns.duplicated()]})
            raise UnsupportedDataError(
                f"The DataFrame has duplicate column names: {listed(dupes)}.",
                hint="Rename the columns so each name appears once.",
            )
    else:
        raise UnsupportedDataError(f"Cannot snapshot a {type(value).__name__}.")
    try:
        with warnings.catch_warnings():  # pyarrow's own use of an API pandas 3.1 deprecates
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            table = pa.Table.from_pandas(value, preserve_index=None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
        raise UnsupportedDataError(
            f"Cannot store this {kind}: {exc}",
            hint="Give each column one consistent dtype (e.g. df[col].astype(str)).",
        ) from exc
    if any(col.num_chunks > 1 for col in table.columns):
        table = table.combine_chunks()
    return kind, table, extra


def _single(column: pa.ChunkedArray) -> pa.Array:
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], type=column.type)
    return pa.concat_arrays(column.chunks)


def _key_column(table: pa.Table, index: int) -> np.ndarray | None:
    arr = _single(table.column(index))
    width = arrays.fixed_width(arr.type)
    if width == 0 or pa.types.is_dictionary(arr.type):
        return None
    rows = table.num_rows
    raw = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=rows * width,
                        offset=arr.offset * width)
    return chunking.key_words(raw, rows)


def _key_arrays(table: pa.Table, prefer: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """The columns whose values place the cuts: the previous version's when still there,
    so that adding or reordering columns keeps every other column's chunks."""
    names = table.column_names
    if prefer and all(n in names for n in prefer):
        keys = [_key_column(table, names.index(n)) for n in prefer]
        if all(k is not None for k in keys):
            return [k for k in keys if k is not None], list(prefer)
    keys: list[np.ndarray] = []
    chosen: list[str] = []
    candidates = sorted(
        range(table.num_columns),
        key=lambda i: (not pa.types.is_floating(table.schema.field(i).type), i),
    )
    for i in candidates:
        key = _key_column(table, i)
        if key is None:
            continue
        if not keys and chunking.is_varied(key):
            return [key], [names[i]]  # one well-spread column places cuts as well as several
        keys.append(key)
        chosen.append(names[i])
        if len(keys) == _MAX_KEY_COLUMNS:
            break
    if not keys:  # no fixed-width column: fall back to hashing the first column's values
        values = table.column(0).to_numpy(zero_copy_only=False)
        keys.append(pd.util.hash_array(np.asarray(values, dtype=object)).astype(np.uint64))
    return keys, chosen


def _average(chunk_bytes: int, row_bytes: float, rows: int,
             previous: dict[str, Any] | None) -> int:
    """Rows per chunk; an earlier version's value is kept while it is within 4x of the
    target, so a dataset's chunking (and so its dedup) survives changes in its size and
    row width."""
    target = chunking.average_rows(chunk_bytes, row_bytes, rows)
    before = ((previous or {}).get("chunking") or {}).get("average")
    if isinstance(before, int) and before > 0 and target / 4 <= before <= target * 4:
        return before
    return target


class _ColumnWriter:
    def __init__(self, writer: ObjectWriter, tally: WriteTally,
                 known_stats: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.writer = writer
        self.tally = tally
        self.known_stats = known_stats
        self.objects: list[tuple[str, int]] = []  # (digest, size) of everything put

    def put(self, pieces: list[Any]) -> str:
        digest = hash_buffers(pieces)
        stored = self.writer.put(pieces, digest)
        self.tally.add(digest, stored.size, stored.written)
        self.objects.append((digest, stored.size))
        return digest

    def put_column(self, arr: pa.Array, cuts: list[int], progress: Progress | None) -> dict:
        type_name = str(arr.type)
        digests, chunk_stats = [], []
        start = 0
        for end in cuts:
            piece = arr.slice(start, end - start)
            header, buffers = arrays.encode_array(piece)
            digest = self.put(codec.encode(header, buffers))
            digests.append(digest)
            known = self.known_stats.get((type_name, digest))
            chunk_stats.append(known if known is not None else stats.chunk_stats(piece))
            if progress:
                progress(piece.nbytes)
            start = end
        column: dict[str, Any] = {"type": type_name, "chunks": digests, "stats": chunk_stats,
                                  "dictionary": None}
        if pa.types.is_dictionary(arr.type):
            column["dictionary"] = self.put(arrays.ipc_bytes(arr.dictionary))
        return column


def known_chunk_stats(manifest: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """Per-chunk statistics of an earlier manifest, so unchanged chunks are not rescanned."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for column in (manifest or {}).get("columns", []):
        for digest, chunk in zip(column.get("chunks", []), column.get("stats", []), strict=False):
            out[(column.get("type", ""), digest)] = chunk
    return out


def write_dataset(
    value: Any,
    writer: ObjectWriter,
    tally: WriteTally,
    *,
    chunk_bytes: int,
    previous: dict[str, Any] | None = None,
    progress: Progress | None = None,
    memo: DatasetMemo | None = None,
) -> DatasetSnapshot:
    """Store ``value`` (DataFrame, Series or ndarray) and return its snapshot.

    With a ``memo``, a value this process stored before (same content, see ``memo``) reuses
    that manifest: its objects are checked to be in the store, not chunked and hashed again.
    """
    key = fingerprint(value, FORMAT, chunk_bytes) if memo is not None else None
    if key is not None and memo is not None:
        known = memo.get(key)
        if known is not None:
            if all(writer.keep(digest) for digest, _ in known.objects):
                for digest, size in known.objects:
                    tally.add(digest, size, False)
                if progress:
                    progress(known.snapshot.nbytes)
                return known.snapshot  # type: ignore[no-any-return]
            memo.forget(key)  # an object went missing (a wiped store): store it again
    columns_writer = _ColumnWriter(writer, tally, known_chunk_stats(previous))
    if isinstance(value, np.ndarray):
        snapshot = _write_ndarray(value, columns_writer, chunk_bytes=chunk_bytes,
                                  progress=progress, previous=previous)
    else:
        snapshot = _write_table(value, columns_writer, chunk_bytes=chunk_bytes,
                                progress=progress, previous=previous)
    if key is not None and memo is not None:
        memo.put(key, Remembered(snapshot, tuple(columns_writer.objects)))
    return snapshot


def _write_table(value: Any, columns_writer: _ColumnWriter, *, chunk_bytes: int,
                 progress: Progress | None, previous: dict[str, Any] | None) -> DatasetSnapshot:
    kind, table, extra = _to_table(value)
    rows = table.num_rows
    nbytes = table.nbytes
    cuts = [rows]  # an empty table still gets one (empty) chunk: it carries dictionaries
    average = _average(chunk_bytes, nbytes / max(rows, 1), rows, previous)
    keys: list[str] = []
    if rows and table.num_columns:
        prefer = ((previous or {}).get("chunking") or {}).get("keys") or []
        key_arrays, keys = _key_arrays(table, [str(k) for k in prefer])
        cuts = chunking.cut_points(chunking.fingerprints(key_arrays, rows), average)
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        entry = columns_writer.put_column(_single(column), cuts, progress)
        columns.append({"name": name, **entry})
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "rows": rows,
        "cuts": cuts,
        "chunking": {"average": average, "keys": keys},
        "schema": base64.b64encode(table.schema.serialize().to_pybytes()).decode(),
        "columns": columns,
        **extra,
    }
    stored = manifest
    if len(cuts) > PAGE_CHUNKS:
        pages = _pages(columns, table.column_names, keys)
        manifest["pages"] = [columns_writer.put([canonical_json(page)]) for page in pages]
        stored = {**manifest, "columns": [{k: c[k] for k in ("name", "type", "dictionary")}
                                          for c in columns]}
    digest = columns_writer.put([canonical_json(stored)])
    summary = {_display_name(c["name"]): stats.combine(c["type"], c["stats"]) for c in columns}
    if kind == "series":
        summary[str(extra["series_name"])] = summary.pop("__series__")
    return DatasetSnapshot(digest, kind, rows, nbytes, _describe(value, kind), summary, manifest)


def _pages(columns: list[dict[str, Any]], names: list[str],
           keys: list[str]) -> list[dict[str, Any]]:
    """The columns' chunk lists cut into pages after each row chunk whose key-column digest
    ends in a multiple of ``PAGE_CHUNKS`` (content-defined, so pages resync after an edit)."""
    lead = columns[names.index(keys[0]) if keys and keys[0] in names else 0]["chunks"]
    ends = [i + 1 for i, d in enumerate(lead) if int(d[-8:], 16) % PAGE_CHUNKS == 0]
    bounded, start = [], 0
    for end in [*ends, len(lead)]:
        while end - start > _PAGE_MAX:
            start += _PAGE_MAX
            bounded.append(start)
        if end > start:
            bounded.append(end)
            start = end
    pages, start = [], 0
    for end in bounded:
        pages.append({"format": PAGE_FORMAT, "columns": [
            {"chunks": c["chunks"][start:end], "stats": c["stats"][start:end]}
            for c in columns]})
        start = end
    return pages


def _display_name(column: str) -> str:
    """Arrow's name for an unnamed pandas index level, as people would say it."""
    if column.startswith("__index_level_") and column.endswith("__"):
        level = column[len("__index_level_"):-2]
        return "(index)" if level == "0" else f"(index {level})"
    return column


def _describe(value: Any, kind: str) -> list[dict[str, str]]:
    if kind == "series":
        return [{"name": str(value.name), "dtype": str(value.dtype)}]
    return [{"name": str(c), "dtype": str(t)} for c, t in value.dtypes.items()]


def _write_ndarray(value: np.ndarray, column_writer: _ColumnWriter, *,
                   chunk_bytes: int, progress: Progress | None,
                   previous: dict[str, Any] | None) -> DatasetSnapshot:
    if value.dtype.hasobject or value.dtype.fields is not None:
        raise UnsupportedDataError(
            f"Cannot store a numpy array of dtype {value.dtype}: only numeric, boolean, "
            "datetime and fixed-width string arrays are supported.",
            hint="Convert it to a DataFrame or to a numeric dtype first.",
        )
    shape = list(value.shape)
    rows = shape[0] if shape else 1
    flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    row_bytes = flat.nbytes // rows if rows else 0
    average = _average(chunk_bytes, row_bytes, rows, previous)
    cuts = [rows]
    if rows and row_bytes:
        keys = [chunking.key_words(flat, rows)]
        cuts = chunking.cut_points(chunking.fingerprints(keys, rows), average)
    digests, start = [], 0
    for end in cuts:
        piece = flat[start * row_bytes : end * row_bytes]
        digests.append(column_writer.put(codec.encode({"layout": "raw", "n": end - start},
                                                      [piece])))
        if progress:
            progress(piece.nbytes)
        start = end
    manifest = {"format": FORMAT, "kind": "ndarray", "rows": rows, "cuts": cuts,
                "chunking": {"average": average, "keys": []},
                "dtype": value.dtype.str, "shape": shape, "chunks": digests}
    digest = column_writer.put([canonical_json(manifest)])
    summary = {"values": stats.ndarray_stats(value)}
    schema = [{"name": "values", "dtype": f"{value.dtype}{tuple(shape)}"}]
    return DatasetSnapshot(digest, "ndarray", rows, value.nbytes, schema, summary, manifest)


# -- reading ---------------------------------------------------------------------------------


_MANIFEST_KEYS = {
    "dataframe": {"format", "kind", "rows", "cuts", "chunking", "schema", "columns", "pages"},
    "series": {"format", "kind", "rows", "cuts", "chunking", "schema", "columns", "series_name",
               "pages"},
    "ndarray": {"format", "kind", "rows", "cuts", "chunking", "dtype", "shape", "chunks"},
}
_COLUMN_KEYS = {"name", "type", "chunks", "stats", "dictionary"}


def read_manifest(store: ObjectStore, digest: str) -> dict[str, Any]:
    """A dataset manifest, validated strictly: known fields only, every reference a digest.

    Manifests never hold paths, module names or code; anything else is refused before a
    single referenced object is opened.
    """
    import json

    try:
        manifest = json.loads(store.get(digest))
    except ValueError as exc:
        raise IntegrityError(f"Dataset manifest {digest} is not valid JSON.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"Object {digest} is not an nbmci dataset manifest.")
    _validate_manifest(manifest, digest)
    if "pages" in manifest:
        _inline_pages(store, manifest, digest)
    return manifest


def _inline_pages(store: ObjectStore, manifest: dict[str, Any], digest: str) -> None:
    """Put each column's chunk list and statistics back together from the pages."""
    import json

    columns = manifest["columns"]
    for column in columns:
        column["chunks"], column["stats"] = [], []
    for page_digest in manifest["pages"]:
        try:
            page = json.loads(store.get(page_digest))
        except ValueError as exc:
            raise IntegrityError(f"Page {page_digest} of dataset manifest {digest} is not "
                                 "valid JSON.") from exc
        parts = page.get("columns") if isinstance(page, dict) else None
        if page.get("format") != PAGE_FORMAT or set(page) != {"format", "columns"} or \
                not isinstance(parts, list) or len(parts) != len(columns):
            raise IntegrityError(f"Object {page_digest} is not a page of dataset manifest "
                                 f"{digest}.", hint="Nothing was loaded. Run `nbmci fsck`.")
        for column, part in zip(columns, parts, strict=True):
            if not isinstance(part, dict) or set(part) != {"chunks", "stats"}:
                raise IntegrityError(f"Page {page_digest} of dataset manifest {digest} has "
                                     "unknown fields.", hint="Nothing was loaded.")
            column["chunks"] += part["chunks"]
            column["stats"] += part["stats"]
    if any(len(c["chunks"]) != len(manifest["cuts"]) for c in columns):
        raise IntegrityError(f"The pages of dataset manifest {digest} do not hold one chunk "
                             "per row chunk.", hint="Nothing was loaded. Run `nbmci fsck`.")
    _validate_manifest(manifest, digest)


def _validate_manifest(manifest: dict[str, Any], digest: str) -> None:
    def refuse(reason: str) -> IntegrityError:
        return IntegrityError(f"Dataset manifest {digest} is refused: {reason}.",
                              hint="Nothing was loaded. Run `nbmci fsck`.")

    allowed = _MANIFEST_KEYS.get(manifest.get("kind"))  # type: ignore[arg-type]
    if allowed is None:
        raise refuse(f"unknown kind {manifest.get('kind')!r}")
    unknown = set(manifest) - allowed
    if unknown:
        raise refuse(f"unknown fields {sorted(unknown)}")
    references: list[Any] = list(manifest.get("pages") or [])
    if not isinstance(manifest.get("pages", []), list):
        raise refuse("'pages' is not a list")
    if manifest["kind"] == "ndarray":
        references = list(manifest.get("chunks") or [])
    else:
        for column in manifest.get("columns") or []:
            if not isinstance(column, dict) or set(column) - _COLUMN_KEYS:
                raise refuse("a column entry has unknown fields")
            references += list(column.get("chunks") or [])
            if column.get("dictionary") is not None:
                references.append(column["dictionary"])
    bad = [r for r in references if not is_digest(r)]
    if bad:
        raise refuse(f"it references {str(bad[0])[:80]!r}, which is not an object digest")


def manifest_objects(manifest: dict[str, Any]) -> list[str]:
    """Every object digest a manifest points at."""
    if manifest["kind"] == "ndarray":
        return list(manifest["chunks"])
    out = list(manifest.get("pages") or [])
    for column in manifest["columns"]:
        out.extend(column["chunks"])
        if column.get("dictionary"):
            out.append(column["dictionary"])
    return out


def _fetch_all(store: ObjectStore, digests: list[str]) -> dict[str, bytes]:
    unique = list(dict.fromkeys(digests))
    if len(unique) < 4:
        return {d: store.get(d) for d in unique}
    with ThreadPoolExecutor(4, thread_name_prefix="nbmci-read") as pool:
        return dict(zip(unique, pool.map(store.get, unique), strict=True))


def read_dataset(store: ObjectStore, digest: str) -> Any:
    """Load a dataset back as the DataFrame, Series or ndarray that was committed."""
    manifest = read_manifest(store, digest)
    blobs = _fetch_all(store, manifest_objects(manifest))
    if manifest["kind"] == "ndarray":
        return _read_ndarray(manifest, blobs)
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(manifest["schema"])))
    columns = []
    for field_, column in zip(schema, manifest["columns"], strict=True):
        dictionary = None
        if column.get("dictionary"):
            dictionary = pa.ipc.open_stream(blobs[column["dictionary"]]).read_all().column(0)
            dictionary = dictionary.combine_chunks()
        pieces = []
        for chunk_digest in column["chunks"]:
            header, buffers = codec.decode(blobs[chunk_digest], chunk_digest)
            pieces.append(arrays.decode_array(field_.type, header, buffers, dictionary,
                                              chunk_digest))
        columns.append(pa.chunked_array(pieces, type=field_.type))
    table = pa.Table.from_arrays(columns, schema=schema)
    frame = table.to_pandas()
    if manifest["kind"] == "series":
        series = frame.iloc[:, 0]
        series.name = manifest.get("series_name")
        return series
    return frame


def _read_ndarray(manifest: dict[str, Any], blobs: dict[str, bytes]) -> np.ndarray:
    dtype = np.dtype(manifest["dtype"])
    if dtype.hasobject:
        raise IntegrityError("An ndarray manifest names an object dtype.")
    parts = []
    for chunk_digest in manifest["chunks"]:
        _, buffers = codec.decode(blobs[chunk_digest], chunk_digest)
        parts.append(np.frombuffer(buffers[0], dtype=np.uint8))
    raw = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint8)
    shape = tuple(int(s) for s in manifest["shape"])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if raw.nbytes != expected:
        raise IntegrityError("An ndarray's chunks do not add up to its shape.")
    return raw.view(dtype).reshape(shape)

