"""ObjectStore: put/get/has/verify by digest, over any fsspec URL.

Layout: ``<root>/objects/<2 hex>/<62 hex>``. On a local filesystem an object is written to a
temporary file in its final directory, fsynced, hard-linked into place, and its directory is
fsynced before the caller may reference it (git's order). Objects are read-only (0444),
directories private (0700). On object stores a single PUT is already atomic, so it writes
directly. Every read re-hashes the bytes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from nbmci.digest import hash_buffers, hash_bytes, hex_part, is_digest
from nbmci.errors import (
    CorruptObjectError,
    InvalidInputError,
    MissingDependencyError,
    ObjectCollisionError,
    ObjectNotFoundError,
    StorageError,
)
from nbmci.store.backends import INSTALL_HINTS, redact

logger = logging.getLogger(__name__)

OBJECTS = "objects"
TMP_PREFIX = ".tmp-"
_DIR_MODE = 0o700
_FILE_MODE = 0o444


@dataclass(frozen=True)
class StoredObject:
    digest: str
    size: int
    written: bool  # False when the object was already there (deduplicated)


@dataclass(frozen=True)
class ObjectEntry:
    digest: str
    path: str
    size: int
    mtime: float


def _storage_error(exc: OSError, action: str, where: str) -> StorageError:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        message = f"Disk full while {action} {where}; nothing was committed."
        hint = "Free some space and retry; `nbmci gc` removes unreferenced objects."
    elif exc.errno == errno.EIO:
        message = f"I/O error while {action} {where}; nothing was committed."
        hint = "Check the disk, then run `nbmci fsck`."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        message = f"Permission denied while {action} {where}."
        hint = "Check that the store directory is writable by you."
    else:
        message = f"{exc.strerror or exc} while {action} {where}."
        hint = None
    return StorageError(message, hint=hint, errno=exc.errno)


class ObjectStore:
    """Content-addressed objects under one fsspec URL.

    Example: ``digest = open_store(".nbmci").put([b"hello"]).digest``
    """

    def __init__(self, url: str, *, durable: bool = True) -> None:
        import fsspec

        self.url = url
        self.durable = durable
        try:
            self.fs, root = fsspec.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            protocol = url.split("://", 1)[0] if "://" in url else "file"
            hint = INSTALL_HINTS.get(protocol)
            if hint or isinstance(exc, ImportError):
                raise MissingDependencyError(
                    f"The store at {redact(url)} needs the '{protocol}' filesystem.",
                    hint=f"Run `{hint}`." if hint else str(exc),
                ) from exc
            raise InvalidInputError(f"Cannot open store URL {redact(url)}: {exc}") from exc
        from fsspec.implementations.local import LocalFileSystem

        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.root = root.rstrip("/") if not self.is_local else os.path.abspath(root)
        self._objects = f"{self.root}/{OBJECTS}"

    def __repr__(self) -> str:
        return f"ObjectStore({redact(self.url)!r})"

    @property
    def location(self) -> str:
        return redact(self.url)

    # -- paths -------------------------------------------------------------------------------

    def path(self, digest: str) -> str:
        if not is_digest(digest):
            raise InvalidInputError(f"{digest!r} is not an object digest.")
        hexd = hex_part(digest)
        return f"{self._objects}/{hexd[:2]}/{hexd[2:]}"

    # -- writes ------------------------------------------------------------------------------

    def put(self, pieces: Sequence[Any], digest: str | None = None) -> StoredObject:
        """Store the concatenation of ``pieces`` durably; skip it if already present."""
        with self.writer() as writer:
            return writer.put(pieces, digest)

    def put_bytes(self, data: bytes) -> StoredObject:
        return self.put([data], hash_bytes(data))

    def writer(self) -> ObjectWriter:
        """A batch of puts whose fsyncs overlap the caller's work; durable on exit."""
        return ObjectWriter(self)

    # -- reads -------------------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        path = self.path(digest)
        if self.is_local:
            return os.path.exists(path)
        return bool(self.fs.exists(path))

    def get(self, digest: str) -> bytes:
        """The object's bytes, verified against its digest.

        Raises:
            ObjectNotFoundError: no such object.
            CorruptObjectError: the bytes do not hash to ``digest``.
        """
        path = self.path(digest)
        try:
            if self.is_local:
                with open(path, "rb") as handle:
                    data = handle.read()
            else:
                data = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(digest, self.location) from exc
        except OSError as exc:
            raise _storage_error(exc, "reading object", path) from exc
        if hash_bytes(data) != digest:
            raise CorruptObjectError(digest, path)
        return data

    def verify(self, digest: str) -> str | None:
        """None when the object is whole, else a reason ("missing", "hash mismatch")."""
        try:
            self.get(digest)
        except ObjectNotFoundError:
            return "missing"
        except CorruptObjectError as exc:
            return exc.message
        return None

    def iter_objects(self) -> Iterator[ObjectEntry]:
        """Every object file in the store (temporary files excluded)."""
        for path, info in self._walk():
            name = path.rsplit("/", 1)[-1]
            if name.startswith(TMP_PREFIX):
                continue
            prefix = path.rsplit("/", 2)[-2]
            digest = f"blake3:{prefix}{name}"
            if is_digest(digest):
                yield ObjectEntry(digest, path, int(info["size"]), float(info["mtime"]))

    def iter_temporary(self) -> Iterator[ObjectEntry]:
        """Leftover temporary files of interrupted writes."""
        for path, info in self._walk():
            if path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                yield ObjectEntry("", path, int(info["size"]), float(info["mtime"]))

    def _walk(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self.is_local:
            if not os.path.isdir(self._objects):
                return
            for prefix in sorted(os.listdir(self._objects)):
                directory = f"{self._objects}/{prefix}"
                if not os.path.isdir(directory):
                    continue
                with os.scandir(directory) as entries:
                    for entry in entries:
                        stat = entry.stat(follow_symlinks=False)
                        yield entry.path, {"size": stat.st_size, "mtime": stat.st_mtime}
            return
        if not self.fs.exists(self._objects):
            return
        for path, info in self.fs.find(self._objects, detail=True).items():
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
            if hasattr(mtime, "timestamp"):
                mtime = mtime.timestamp()
            yield path, {"size": info.get("size", 0), "mtime": mtime}

    @contextlib.contextmanager
    def gc_lock(self, *, exclusive: bool) -> Iterator[None]:
        """Commits refresh reused objects under a shared lock; gc deletes under an exclusive
        one (local stores; on object stores gc relies on the grace period alone)."""
        with self._flock(".gc.lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) as held:
            assert held
            yield

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Held (shared) from a commit's first object until the registry references them, so
        ``idle`` can tell that no commit is half-way. The kernel drops it with the process, so
        an interrupted commit never holds it."""
        with self._flock(".commit.lock", fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def idle(self) -> Iterator[bool]:
        """Whether no commit is writing (always False on object stores, which have no locks);
        while True, new commits wait until the block ends."""
        with self._flock(".commit.lock", fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
            yield held

    @contextlib.contextmanager
    def _flock(self, name: str, operation: int) -> Iterator[bool]:
        """``flock(operation)`` on ``<root>/name``: whether it was taken (a non-blocking
        request can fail). Object stores take no lock and yield False for ``LOCK_NB``."""
        if not self.is_local:
            yield not operation & fcntl.LOCK_NB
            return
        if not os.path.isdir(self.root):
            os.makedirs(self.root, mode=_DIR_MODE, exist_ok=True)
        fd = os.open(os.path.join(self.root, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, operation)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def delete_if_older(self, entry: ObjectEntry, cutoff: float) -> bool:
        """Delete an object (gc) unless a commit has refreshed it since it was listed."""
        with self.gc_lock(exclusive=True):
            if self.is_local:
                try:
                    if os.stat(entry.path).st_mtime > cutoff:
                        return False
                except FileNotFoundError:
                    return False
            self.delete(entry.path)
        return True

    def delete(self, path: str) -> None:
        """Remove one object or temporary file (gc only)."""
        if not path.startswith(self._objects + "/"):
            raise InvalidInputError(f"{path!r} is not inside the store.")
        if self.is_local:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        else:
            self.fs.rm_file(path)


class ObjectWriter:
    """Writes objects; fsync and link run on a background thread so disk and CPU overlap.

    Use as a context manager: on a clean exit every object is durable and visible; on an
    exception, pending temporary files are removed.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._dirs: set[str] = set()
        self._tmps: set[str] = set()
        self._shared_lock: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def put(self, pieces: Sequence[Any], digest: str | None = None) -> StoredObject:
        digest = digest or hash_buffers(pieces)
        size = sum(memoryview(p).nbytes for p in pieces)
        store = self.store
        path = store.path(digest)
        if not store.is_local:
            if store.fs.exists(path):
                return StoredObject(digest, size, False)
            store.fs.pipe_file(path, b"".join(bytes(memoryview(p)) for p in pieces))
            return StoredObject(digest, size, True)
        if self._reuse(path):
            return StoredObject(digest, size, False)
        directory = os.path.dirname(path)
        tmp = f"{directory}/{TMP_PREFIX}{os.path.basename(path)[:16]}-{uuid.uuid4().hex}"
        try:
            self._ensure_directory(directory)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        except OSError as exc:
            raise _storage_error(exc, "creating object", tmp) from exc
        self._tmps.add(tmp)
        try:
            _write_all(fd, pieces)
        except BaseException as exc:
            os.close(fd)
            self._discard(tmp)
            if isinstance(exc, OSError):
                raise _storage_error(exc, "writing object", path) from exc
            raise
        self._dirs.add(directory)
        if store.durable:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="nbmci-fsync")
            self._pending.append(self._pool.submit(self._finish, fd, tmp, path, digest))
        else:
            self._finish(fd, tmp, path, digest)
        return StoredObject(digest, size, True)

    def keep(self, digest: str) -> bool:
        """Whether the object ``digest`` is in the store; if so it is kept from gc as if it
        had just been written (see ``_reuse``)."""
        path = self.store.path(digest)
        if not self.store.is_local:
            return bool(self.store.fs.exists(path))
        return self._reuse(path)

    def _reuse(self, path: str) -> bool:
        """Whether ``path`` exists and was kept from gc: its mtime is refreshed under the store's
        shared lock (held until this writer closes), so a concurrent gc either sees it young
        or has already deleted it."""
        if not os.path.exists(path):
            return False
        if self._shared_lock is None:  # held until close: gc deletes nothing meanwhile
            self._shared_lock = self.store.gc_lock(exclusive=False)
            self._shared_lock.__enter__()
        try:
            os.utime(path)
        except FileNotFoundError:
            return False  # gc removed it just now: write it again
        except PermissionError:
            pass  # another user's object in a shared store; only gc cares about its age
        return True

    def _ensure_directory(self, directory: str) -> None:
        """Create ``directory`` and any missing parents below it, each private (0700)."""
        if directory in self._dirs or os.path.isdir(directory):
            return
        parent = os.path.dirname(directory)
        if parent != directory and not os.path.isdir(parent):
            self._ensure_directory(parent)
        try:
            os.mkdir(directory, _DIR_MODE)
        except FileExistsError:
            pass

    def _finish(self, fd: int, tmp: str, path: str, digest: str) -> None:
        try:
            if self.store.durable:
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            self._discard(tmp)
            raise _storage_error(exc, "syncing object", path) from exc
        os.close(fd)
        try:
            _link_into_place(tmp, path, digest)
        finally:
            self._discard(tmp)

    def _discard(self, tmp: str) -> None:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        self._tmps.discard(tmp)

    def close(self) -> None:
        """Wait for every pending object, then make the directory entries durable."""
        try:
            errors = []
            for future in self._pending:
                try:
                    future.result()
                except BaseException as exc:  # collect, then raise the first
                    errors.append(exc)
            if errors:
                raise errors[0]
            if self.store.durable:
                for directory in sorted(self._dirs):
                    _fsync_dir(directory)
                if self._dirs:
                    _fsync_dir(os.path.dirname(next(iter(self._dirs))))
        finally:
            self._shutdown()

    def abort(self) -> None:
        for future in self._pending:
            future.cancel()
        self._shutdown()
        for tmp in list(self._tmps):
            self._discard(tmp)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending.clear()
        if self._shared_lock is not None:
            self._shared_lock.__exit__(None, None, None)
            self._shared_lock = None


def _write_all(fd: int, pieces: Sequence[Any]) -> None:
    for piece in pieces:
        view = memoryview(piece).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _link_into_place(tmp: str, path: str, digest: str) -> None:
    """Hard-link ``tmp`` to ``path``; if ``path`` appeared meanwhile, check it is the same."""
    for _ in range(5):
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            same = _same_bytes(tmp, path)
            if same is None:
                continue  # the other copy vanished (gc) between the two calls: try again
            if same:
                return
            raise ObjectCollisionError(digest, path) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise _storage_error(exc, "linking object", path) from exc
            # a filesystem without hard links: rename, but never over an existing object
            if os.path.exists(path):
                if _same_bytes(tmp, path) is False:
                    raise ObjectCollisionError(digest, path) from None
                return
            os.rename(tmp, path)
            return
    raise StorageError(f"Could not place object {digest} at {path}.")


def _same_bytes(a: str, b: str, block: int = 1 << 20) -> bool | None:
    """Whether two files hold the same bytes; None if ``b`` does not exist."""
    try:
        with open(b, "rb") as fb, open(a, "rb") as fa:
            while True:
                x, y = fa.read(block), fb.read(block)
                if x != y:
                    return False
                if not x:
                    return True
    except FileNotFoundError:
        return None


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        raise _storage_error(exc, "syncing directory", directory) from exc
    finally:
        os.close(fd)


def open_store(url: str, *, durable: bool = True) -> ObjectStore:
    """Open (or lazily create) the object store at ``url``, a path or fsspec URL."""
    return ObjectStore(url, durable=durable)


def age(entry: ObjectEntry) -> float:
    return time.time() - entry.mtime
