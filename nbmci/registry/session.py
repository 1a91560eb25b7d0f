"""Engines and transactions: SQLite in WAL mode (default) or PostgreSQL.

Write transactions take the database's write lock up front (``BEGIN IMMEDIATE`` on SQLite,
row locks on PostgreSQL) and are retried, with a rollback, on lock timeouts and serialization
failures, so callers never see ``database is locked``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from nbmci.errors import ConflictError, InvalidInputError, StorageError, UnavailableError
from nbmci.errors import redact_url as redact

logger = logging.getLogger(__name__)

T = TypeVar("T")
HEAD_REVISION = "0003"
WRITE_TIMEOUT = 120.0  # seconds a writer keeps retrying before giving up
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    # A forked child must never use its parent's SQLite connections (SQLite "How to corrupt").
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


def _sqlite_path(url: sa.URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(url: str) -> Engine:
    """An engine for the registry URL, with nbmci's pragmas and transaction rules."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidInputError(f"{redact(url)!r} is not a database URL.") from exc
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"timeout": 60, "check_same_thread": False}
        )
        _configure_sqlite(engine)
    else:
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True)
        except ImportError as exc:
            raise UnavailableError(
                f"The registry at {redact(url)} needs a database driver: {exc}.",
                hint="Run `pip install 'nbmci[postgres]'`.",
            ) from exc
    _ENGINES.add(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a commit that returned survives a crash
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("nbmci_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _is_retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    if isinstance(exc, OperationalError) and ("locked" in text or "busy" in text):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01", "23505")


def run_write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one write transaction, retrying (after a rollback) on contention."""
    deadline = time.monotonic() + WRITE_TIMEOUT
    delay = 0.005
    while True:
        try:
            with engine.connect().execution_options(nbmci_write=True) as conn, conn.begin():
                return work(conn)
        except (OperationalError, SAIntegrityError, DBAPIError) as exc:
            if not _is_retryable(exc):
                raise _database_error(exc, engine) from exc
            if time.monotonic() > deadline:
                raise ConflictError(
                    "The registry stayed busy for too long; nothing was written.",
                    hint="Retry; if it persists, look for a stuck process holding the database.",
                ) from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)


def _database_error(exc: DBAPIError, engine: Engine) -> Exception:
    text = str(exc.orig or exc).lower()
    where = redact(str(engine.url))
    if "disk" in text and "full" in text:
        return StorageError(
            f"Disk full while writing the registry at {where}; nothing was committed.",
            hint="Free some space and retry.",
        )
    if "disk i/o" in text or "i/o error" in text:
        return StorageError(f"I/O error while writing the registry at {where}.",
                            hint="Check the disk, then run `nbmci fsck`.")
    if isinstance(exc, SAIntegrityError):
        return ConflictError(f"The registry refused a write: {exc.orig}.")
    if isinstance(exc, OperationalError):
        return UnavailableError(f"The registry at {where} is unavailable: {exc.orig}.")
    return exc


@contextlib.contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise _database_error(exc, engine) from exc


_PG_MIGRATION_LOCK = 0x6E626D6369  # "nbmci": one advisory lock key for schema upgrades


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Only one process upgrades the schema: a file lock beside an SQLite database, a session
    advisory lock on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
                conn.commit()
        return
    path = _sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
    if path is None:
        yield
        return
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def ensure_schema(engine: Engine) -> None:
    """Bring the schema to the head revision with Alembic (only imported when needed)."""
    try:
        if current_revision(engine) == HEAD_REVISION:
            return
    except OperationalError as exc:
        raise _database_error(exc, engine) from exc
    with _migration_lock(engine):
        if current_revision(engine) == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        logger.info("registry schema upgraded to %s", HEAD_REVISION)
