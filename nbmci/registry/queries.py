"""Typed reads and writes of the registry. Version numbers are allocated under the write lock."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from nbmci.errors import ConflictError, InvalidInputError
from nbmci.errors import redact_url as redact
from nbmci.registry import session
from nbmci.registry.schema import (
    aliases,
    checks,
    ci_notebooks,
    ci_runs,
    datasets,
    events,
    models,
    version_objects,
    versions,
)

logger = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Registry:
    """Models, versions, datasets, aliases and events in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"Registry({redact(self.url)!r})"

    @cached_property
    def engine(self) -> Engine:
        engine = session.create_engine(self.url)
        session.ensure_schema(engine)
        return engine

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]

    # -- writes ------------------------------------------------------------------------------

    def add_version(
        self,
        name: str,
        row: dict[str, Any],
        dataset_rows: list[dict[str, Any]],
        digests: Iterable[str],
        actor: str,
    ) -> int:
        """Insert a version of ``name`` (creating the model if needed); return its number."""
        digest_list = sorted(set(digests))

        def work(conn: Connection) -> int:
            now = utcnow()
            model_id = _get_or_create_model(conn, name, now)
            # The write lock (BEGIN IMMEDIATE / FOR UPDATE) makes this read-increment safe.
            last = conn.execute(
                sa.select(models.c.last_version).where(models.c.id == model_id).with_for_update()
            ).scalar_one()
            number = last + 1
            conn.execute(
                models.update().where(models.c.id == model_id).values(last_version=number)
            )
            version_id = conn.execute(
                versions.insert().values(model_id=model_id, number=number, created_at=now, **row)
            ).inserted_primary_key[0]
            if dataset_rows:
                conn.execute(
                    datasets.insert(), [{**d, "version_id": version_id} for d in dataset_rows]
                )
            if digest_list:
                conn.execute(
                    version_objects.insert(),
                    [{"version_id": version_id, "digest": d} for d in digest_list],
                )
            conn.execute(
                events.insert().values(
                    at=now, kind="version.committed", model=name, version=number, actor=actor,
                    payload={"message": row.get("message", ""), "model": row["model_digest"]},
                )
            )
            return number

        return session.run_write(self.engine, work)

    def set_alias(self, name: str, alias: str, number: int, actor: str,
                  payload: dict[str, Any] | None = None) -> int | None:
        """Point ``alias`` at version ``number``; return the version it pointed at before."""
        return session.run_write(
            self.engine, lambda conn: _move_alias(conn, name, alias, number, actor, payload))

    def add_event(self, kind: str, model: str | None, version: int | None, actor: str,
                  payload: dict[str, Any]) -> None:
        """Append one entry to the event log."""

        def work(conn: Connection) -> None:
            conn.execute(events.insert().values(at=utcnow(), kind=kind, model=model,
                                                version=version, actor=actor, payload=payload))

        session.run_write(self.engine, work)

    def add_ci_run(self, name: str, number: int, run: dict[str, Any],
                   notebooks: list[dict[str, Any]], actor: str) -> int:
        """Record one CI evaluation of ``name@number``; its executed notebooks become objects
        the version needs (so gc keeps them)."""

        def work(conn: Connection) -> int:
            version_id = _version_id(conn, name, number)
            run_id = conn.execute(ci_runs.insert().values(version_id=version_id, **run)
                                  ).inserted_primary_key[0]
            if notebooks:
                conn.execute(ci_notebooks.insert(), [{**n, "run_id": run_id} for n in notebooks])
            outputs = {n["output_digest"] for n in notebooks if n.get("output_digest")}
            known = set(conn.execute(sa.select(version_objects.c.digest).where(
                version_objects.c.version_id == version_id,
                version_objects.c.digest.in_(outputs))).scalars())
            if outputs - known:
                conn.execute(version_objects.insert(), [
                    {"version_id": version_id, "digest": d} for d in sorted(outputs - known)])
            conn.execute(events.insert().values(
                at=run["started_at"], kind="ci.completed", model=name, version=number,
                actor=actor, payload={"status": run["status"], "run": run_id}))
            return int(run_id)

        return session.run_write(self.engine, work)

    def add_check(self, name: str, number: int, kind: str, passed: bool,
                  detail: dict[str, Any]) -> None:
        """Record one check of ``name@number`` (the newest of each kind is the verdict)."""

        def work(conn: Connection) -> None:
            conn.execute(checks.insert().values(version_id=_version_id(conn, name, number),
                                                kind=kind, passed=passed, checked_at=utcnow(),
                                                detail=detail))

        session.run_write(self.engine, work)

    def latest_checks(self, version_ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
        """The newest check of each kind of each version: ``{version_id: {kind: row}}``."""
        if not version_ids:
            return {}
        newest = (sa.select(sa.func.max(checks.c.id))
                  .where(checks.c.version_id.in_(version_ids))
                  .group_by(checks.c.version_id, checks.c.kind))
        found: dict[int, dict[str, dict[str, Any]]] = {}
        with session.read(self.engine) as conn:
            for row in conn.execute(sa.select(checks).where(checks.c.id.in_(newest))).mappings():
                found.setdefault(row["version_id"], {})[row["kind"]] = dict(row)
        return found

    def roll_back_alias(self, name: str, alias: str, actor: str,
                        expect: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """Move ``alias`` back to where it pointed before its current target, in one write
        transaction; returns (from, to), or None when there is no earlier target.

        With ``expect`` (what ``rollback_target`` said), a different (from, to) by then, after a
        concurrent move, raises ``AliasMovedError`` and moves nothing.
        """

        def work(conn: Connection) -> tuple[int, int] | None:
            moved = _rollback_pair(conn, name, alias)
            if expect is not None and moved != expect:
                raise AliasMovedError(name, alias)
            if moved is not None:
                _move_alias(conn, name, alias, moved[1], actor, {"rollback": True})
            return moved

        return session.run_write(self.engine, work)

    def rollback_target(self, name: str, alias: str) -> tuple[int, int] | None:
        """(from, to) that ``roll_back_alias`` would move ``alias`` now, or None."""
        with session.read(self.engine) as conn:
            return _rollback_pair(conn, name, alias)

    # -- reads -------------------------------------------------------------------------------

    def model(self, name: str) -> RowMapping | None:
        with session.read(self.engine) as conn:
            return conn.execute(sa.select(models).where(models.c.name == name)).mappings().first()

    def model_names(self) -> list[str]:
        with session.read(self.engine) as conn:
            return list(conn.execute(sa.select(models.c.name).order_by(models.c.name)).scalars())

    def model_summaries(self) -> list[dict[str, Any]]:
        """Each model with its version count, latest number and time, and aliases."""
        latest = (
            sa.select(
                versions.c.model_id,
                sa.func.count().label("count"),
                sa.func.max(versions.c.number).label("latest"),
                sa.func.max(versions.c.created_at).label("updated_at"),
            ).group_by(versions.c.model_id).subquery()
        )
        query = (
            sa.select(models.c.id, models.c.name, models.c.created_at, latest.c.count,
                      latest.c.latest, latest.c.updated_at)
            .select_from(models.outerjoin(latest, latest.c.model_id == models.c.id))
            .order_by(models.c.name)
        )
        with session.read(self.engine) as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
            alias_map = self._aliases(conn, [r["id"] for r in rows])
        for r in rows:
            r["aliases"] = alias_map.get(r.pop("id"), {})
        return rows

    def _aliases(self, conn: Connection, model_ids: list[int]) -> dict[int, dict[str, int]]:
        query = (
            sa.select(aliases.c.model_id, aliases.c.name, versions.c.number)
            .select_from(aliases.join(versions, aliases.c.version_id == versions.c.id))
            .where(aliases.c.model_id.in_(model_ids))
        )
        out: dict[int, dict[str, int]] = {}
        for model_id, alias, number in conn.execute(query):
            out.setdefault(model_id, {})[alias] = number
        return out

    def versions(self, name: str, numbers: list[int] | None = None) -> list[dict[str, Any]]:
        """Version rows of ``name`` (newest first), each with its datasets and aliases."""
        with session.read(self.engine) as conn:
            model_id = conn.execute(
                sa.select(models.c.id).where(models.c.name == name)
            ).scalar_one_or_none()
            if model_id is None:
                return []
            query = sa.select(versions).where(versions.c.model_id == model_id)
            if numbers is not None:
                query = query.where(versions.c.number.in_(numbers))
            rows = [dict(r) for r in conn.execute(query.order_by(versions.c.number.desc()))
                    .mappings()]
            ids = [r["id"] for r in rows]
            data: dict[int, list[dict[str, Any]]] = {}
            for d in conn.execute(
                sa.select(datasets).where(datasets.c.version_id.in_(ids)).order_by(datasets.c.id)
            ).mappings():
                data.setdefault(d["version_id"], []).append(dict(d))
            by_number: dict[int, list[str]] = {}
            for alias, number in self._aliases(conn, [model_id]).get(model_id, {}).items():
                by_number.setdefault(number, []).append(alias)
        ci = self.latest_ci(ids)
        checked = self.latest_checks(ids)
        for r in rows:
            r["name"] = name
            r["ci"] = ci.get(r["id"])
            r["checks"] = checked.get(r["id"], {})
            r["datasets"] = data.get(r["id"], [])
            r["aliases"] = sorted(by_number.get(r["number"], []))
        return rows

    def latest_ci(self, version_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The newest CI run of each version, with its notebooks."""
        if not version_ids:
            return {}
        newest = (sa.select(sa.func.max(ci_runs.c.id))
                  .where(ci_runs.c.version_id.in_(version_ids))
                  .group_by(ci_runs.c.version_id))
        with session.read(self.engine) as conn:
            runs = {r["id"]: dict(r) for r in conn.execute(
                sa.select(ci_runs).where(ci_runs.c.id.in_(newest))).mappings()}
            for n in conn.execute(sa.select(ci_notebooks).where(
                    ci_notebooks.c.run_id.in_(list(runs))).order_by(ci_notebooks.c.id)).mappings():
                runs[n["run_id"]].setdefault("notebooks", []).append(dict(n))
        return {r["version_id"]: {**r, "notebooks": r.get("notebooks", [])}
                for r in runs.values()}

    def cached_notebook(self, cache_key: str) -> dict[str, Any] | None:
        """A completed execution with the same inputs, if any (errors are never reused)."""
        query = (sa.select(ci_notebooks).where(ci_notebooks.c.cache_key == cache_key,
                                               ci_notebooks.c.status == "passed")
                 .order_by(ci_notebooks.c.id.desc()).limit(1))
        with session.read(self.engine) as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def versions_without_ci(self) -> list[tuple[str, int]]:
        query = (sa.select(models.c.name, versions.c.number)
                 .select_from(versions.join(models, models.c.id == versions.c.model_id)
                              .outerjoin(ci_runs, ci_runs.c.version_id == versions.c.id))
                 .where(ci_runs.c.id.is_(None))
                 .order_by(models.c.name, versions.c.number))
        with session.read(self.engine) as conn:
            return [(name, number) for name, number in conn.execute(query)]

    def alias_history(self, name: str, alias: str) -> list[dict[str, Any]]:
        """Every move of ``alias``, oldest first (from the event log)."""
        query = (sa.select(events).where(events.c.model == name, events.c.kind == "alias.moved")
                 .order_by(events.c.id))
        with session.read(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()
                    if (r["payload"] or {}).get("alias") == alias]

    def alias_target(self, name: str, alias: str) -> int | None:
        query = (
            sa.select(versions.c.number)
            .select_from(
                aliases.join(versions, aliases.c.version_id == versions.c.id)
                .join(models, models.c.id == aliases.c.model_id)
            )
            .where(models.c.name == name, aliases.c.name == alias)
        )
        with session.read(self.engine) as conn:
            return conn.execute(query).scalar_one_or_none()

    def latest_number(self, name: str) -> int | None:
        query = (
            sa.select(sa.func.max(versions.c.number))
            .select_from(versions.join(models, models.c.id == versions.c.model_id))
            .where(models.c.name == name)
        )
        with session.read(self.engine) as conn:
            return conn.execute(query).scalar_one_or_none()

    def version_digests(self) -> dict[str, list[str]]:
        """digest -> the refs of the versions that need it."""
        query = (
            sa.select(version_objects.c.digest, models.c.name, versions.c.number)
            .select_from(
                version_objects.join(versions, versions.c.id == version_objects.c.version_id)
                .join(models, models.c.id == versions.c.model_id)
            )
        )
        out: dict[str, list[str]] = {}
        with session.read(self.engine) as conn:
            for digest, name, number in conn.execute(query):
                out.setdefault(digest, []).append(f"{name}@{number}")
        return out

    def version_roots(self) -> list[tuple[str, str, list[str]]]:
        """(ref, model digest, dataset manifest digests) of every version."""
        query = (
            sa.select(models.c.name, versions.c.number, versions.c.model_digest, datasets.c.digest)
            .select_from(
                versions.join(models, models.c.id == versions.c.model_id)
                .outerjoin(datasets, datasets.c.version_id == versions.c.id)
            )
            .order_by(models.c.name, versions.c.number)
        )
        roots: dict[str, tuple[str, list[str]]] = {}
        with session.read(self.engine) as conn:
            for name, number, model_digest, dataset_digest in conn.execute(query):
                entry = roots.setdefault(f"{name}@{number}", (model_digest, []))
                if dataset_digest is not None:
                    entry[1].append(dataset_digest)
        return [(ref, model, data) for ref, (model, data) in roots.items()]

    def events(self, model: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(events.c.model == model)
        with session.read(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def dangling_aliases(self) -> list[str]:
        query = (
            sa.select(models.c.name, aliases.c.name)
            .select_from(
                aliases.join(models, models.c.id == aliases.c.model_id)
                .outerjoin(versions, versions.c.id == aliases.c.version_id)
            )
            .where(versions.c.id.is_(None))
        )
        with session.read(self.engine) as conn:
            return [f"{m}@{a}" for m, a in conn.execute(query)]

    def integrity_check(self) -> list[str]:
        """SQLite's own check of the database file; empty when fine."""
        if self.engine.dialect.name != "sqlite":
            return []
        with self.engine.connect() as conn:
            result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
        return [] if result == ["ok"] else result

    def backup(self, destination: str) -> None:
        """A consistent copy taken while others may be writing (``VACUUM INTO``)."""
        if self.engine.dialect.name != "sqlite":
            raise InvalidInputError(
                "Backups are built in for SQLite registries only.",
                hint="Use pg_dump for a PostgreSQL registry.",
            )
        raw = self.engine.raw_connection()  # VACUUM cannot run inside SQLAlchemy's BEGIN
        try:
            raw.driver_connection.execute("VACUUM INTO ?", (destination,))  # type: ignore[union-attr]
        finally:
            raw.close()


class AliasMovedError(ConflictError):
    def __init__(self, name: str, alias: str) -> None:
        super().__init__(f"'{alias}' of '{name}' moved while a rollback was being checked; "
                         "nothing was changed.", hint="Run it again.")


def _rollback_pair(conn: Connection, name: str, alias: str) -> tuple[int, int] | None:
    """(current, previous) target of ``alias`` from its moves, rollbacks popping the stack."""
    stack: list[int] = []
    for event in conn.execute(
            sa.select(events.c.version, events.c.payload)
            .where(events.c.model == name, events.c.kind == "alias.moved")
            .order_by(events.c.id)):
        if (event.payload or {}).get("alias") != alias:
            continue
        if (event.payload or {}).get("rollback") and stack:
            stack.pop()
        else:
            stack.append(event.version)
    return (stack[-1], stack[-2]) if len(stack) >= 2 else None


def _move_alias(conn: Connection, name: str, alias: str, number: int, actor: str,
                payload: dict[str, Any] | None) -> int | None:
    now = utcnow()
    model_id = conn.execute(sa.select(models.c.id).where(models.c.name == name)).scalar_one()
    version_id = _version_id(conn, name, number)
    previous = conn.execute(
        sa.select(versions.c.number)
        .select_from(aliases.join(versions, aliases.c.version_id == versions.c.id))
        .where(aliases.c.model_id == model_id, aliases.c.name == alias)
    ).scalar_one_or_none()
    if previous is None:
        conn.execute(aliases.insert().values(model_id=model_id, name=alias,
                                             version_id=version_id, updated_at=now))
    else:
        conn.execute(aliases.update()
                     .where(aliases.c.model_id == model_id, aliases.c.name == alias)
                     .values(version_id=version_id, updated_at=now))
    conn.execute(events.insert().values(
        at=now, kind="alias.moved", model=name, version=number, actor=actor,
        payload={"alias": alias, "from": previous, **(payload or {})}))
    return previous


def _version_id(conn: Connection, name: str, number: int) -> int:
    query = (sa.select(versions.c.id)
             .select_from(versions.join(models, models.c.id == versions.c.model_id))
             .where(models.c.name == name, versions.c.number == number))
    return int(conn.execute(query).scalar_one())


def _get_or_create_model(conn: Connection, name: str, now: dt.datetime) -> int:
    found = conn.execute(sa.select(models.c.id).where(models.c.name == name)).scalar_one_or_none()
    if found is not None:
        return int(found)
    try:
        with conn.begin_nested():
            return int(conn.execute(
                models.insert().values(name=name, created_at=now, last_version=0)
            ).inserted_primary_key[0])
    except sa.exc.IntegrityError:
        # Lost a race on PostgreSQL: the other transaction's row is the model.
        return int(conn.execute(sa.select(models.c.id).where(models.c.name == name)).scalar_one())
