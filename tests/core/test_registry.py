"""The registry schema: Alembic migrations match the tables; SQLite pragmas are in force."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from nbmci.registry import Registry
from nbmci.registry.schema import metadata
from nbmci.registry.session import HEAD_REVISION, current_revision


def test_migrations_build_exactly_the_declared_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}")
    with registry.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    assert current_revision(registry.engine) == HEAD_REVISION


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}")
    with registry.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert registry.integrity_check() == []


def test_backup_is_a_consistent_copy(project, fitted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project.commit(fitted, None, name="clf")
    target = tmp_path / "backup.db"
    project.registry.backup(str(target))
    copy = sa.create_engine(f"sqlite:///{target}")
    with copy.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("SELECT count(*) FROM versions").scalar() == 1


def test_an_older_registry_is_upgraded_in_place(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    import nbmci.registry.session as session

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = session.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(Path(session.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql("INSERT INTO models (name, created_at, last_version) "
                             "VALUES ('clf', '2026-01-01 00:00:00', 4)")
    engine.dispose()
    registry = Registry(url)
    assert current_revision(registry.engine) == HEAD_REVISION
    assert registry.model_names() == ["clf"]
    with registry.engine.connect() as conn:
        assert sa.inspect(conn).has_table("ci_runs")
