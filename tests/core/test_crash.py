"""Crash tests (RELIABILITY.md CR-01, CR-03, CR-04, CR-05, CR-07): real processes, real files.

A child process commits and is killed with SIGKILL at a named OS call or SQL point (see
``_workers.OsFaults``), or at a random time; then the test reopens the project as a restarted
process would and checks promise 1: fsck-clean, each version absent or complete, the same
commit retried succeeds, and gc collects leftover temporary files.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbmci.api import Project
from nbmci.digest import hash_buffers
from nbmci.errors import ModelNotFoundError, StorageError
from tests.core import _workers
from tests.core._workers import NAME, OsFaults, sample

# Read at import: the autouse fixture in conftest.py clears NBMCI_* before each test runs.
KILLS = int(os.environ.get("NBMCI_CRASH_KILLS", "30"))
SEED = int(os.environ.get("NBMCI_CRASH_SEED", "20260525"))

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="the OS fault harness reads /proc/self/fd")


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def template(make_project: Callable[..., Project]) -> Path:
    """A closed project holding ``crash@1`` (``sample(0)``), aliased ``production``."""
    project = make_project()
    project.commit(*sample(0), name=NAME)
    project.set_alias(f"{NAME}@1", "production")
    project.close()
    return project.settings.root


def _copy(template: Path, destination: Path) -> Path:
    """A private copy of the template project (nothing has it open)."""
    shutil.copytree(template, destination, symlinks=True)
    return destination


def _killed(target: Callable[..., Any], *args: Any) -> int | None:
    """Run ``target(*args)`` in a child that is expected to SIGKILL itself; its exit code."""
    return _workers.finish(_workers.start(target, *args))


def _assert_holds(project: Project, ref: str, tag: int) -> None:
    """``ref`` loads, and its model and data are exactly ``sample(tag)``."""
    model, data = sample(tag)
    loaded = project.load(ref)
    frames = project.load_data(ref)
    np.testing.assert_array_equal(loaded.predict(data["X"]), model.predict(data["X"]))
    assert sorted(frames) == ["X", "y"]
    pd.testing.assert_frame_equal(frames["X"], data["X"])
    pd.testing.assert_series_equal(frames["y"], data["y"])


def _check_after_crash(root: Path, tag: int, new_version: bool | None) -> int:
    """Reopen ``root`` after a crash while committing ``sample(tag)`` as version 2.

    ``new_version``: whether version 2 must exist (None: either way). Returns how many
    temporary files the crash left behind, all of which gc(grace=0) must remove.
    """
    project = Project.open(root)
    try:
        report = project.fsck()
        assert report.ok, report.problems
        numbers = sorted(v.version for v in project.versions(NAME))
        allowed = {False: [[1]], True: [[1, 2]], None: [[1], [1, 2]]}[new_version]
        assert numbers in allowed
        _assert_holds(project, f"{NAME}@1", 0)
        if 2 in numbers:
            _assert_holds(project, f"{NAME}@2", tag)
        retry = project.commit(*sample(tag), name=NAME)
        assert retry.version == numbers[-1] + 1
        _assert_holds(project, retry.ref, tag)
        collected = project.gc(grace=0)
        assert collected.deleted_temporary == report.temporary
        assert not list(project.store.iter_temporary())
        assert project.fsck().ok
        return report.temporary
    finally:
        project.close()


# -- CR-01 -----------------------------------------------------------------------------------


def test_cr01_sigkill_at_each_step_and_at_random_times(template: Path, tmp_path: Path) -> None:
    """CR-01: kill -9 at every blob write, fsync and link, at the directory fsyncs, before
    and after the metadata commit, then at ``NBMCI_CRASH_KILLS`` random times; each time
    promise 1 holds."""
    calibration = _workers.run(_workers.crash_commit, str(_copy(template, tmp_path / "count")),
                               [1], None)
    counts = calibration["counts"]
    assert counts["link"] == counts["fsync"] >= 5  # model, X and y: columns and manifests
    assert counts["write"] >= counts["link"] and counts["fsync_dir"] >= 2
    assert counts["fsync_top"] == 1
    # skops stamps the time into its zip, so the model's digest, and with it whether the
    # model shares a fan-out directory with a data object, changes from run to run: the
    # number of fan-out directory fsyncs varies by one. Kill only where every run reaches.
    counts["fsync_dir"] -= 1
    steps = [(kind, n) for kind in _workers.OS_KINDS for n in range(1, counts.get(kind, 0) + 1)]
    steps += [("before_commit", 1), ("after_commit", 1)]

    leftovers = {}
    for i, (at, n) in enumerate(steps):
        root = _copy(template, tmp_path / f"step-{i}")
        code = _killed(_workers.crash_commit, str(root), [1], at, n)
        assert code == -signal.SIGKILL, f"not killed at {at} #{n} (exit code {code})"
        leftovers[f"{at} #{n}"] = _check_after_crash(root, 1, new_version=at == "after_commit")
        shutil.rmtree(root)
    assert any(leftovers.values()), "no kill left a temporary file for gc to collect"

    rng = random.Random(SEED)
    ctx = _workers.context()
    finished = 0
    for k in range(KILLS):
        root = _copy(template, tmp_path / f"random-{k}")
        ready, done = ctx.Event(), ctx.Event()
        child = _workers.start(_workers.commit_and_linger, str(root), 1, ready, done)
        assert ready.wait(_workers.WAIT)
        time.sleep(rng.uniform(0, calibration["seconds"]))
        os.kill(child.pid, signal.SIGKILL)
        assert _workers.finish(child) == -signal.SIGKILL
        finished += done.is_set()
        _check_after_crash(root, 1, new_version=True if done.is_set() else None)
        shutil.rmtree(root)
    assert finished < KILLS or KILLS == 0, "every random kill came after the commit returned"


# -- CR-03 -----------------------------------------------------------------------------------


def test_cr03_crash_before_metadata_commit_leaves_only_orphans(
        make_project: Callable[..., Project]) -> None:
    """CR-03 case 1: blobs durable, metadata never committed: orphans only, invisible to the
    API, and reclaimed by the next gc, since no commit holds the store's writing lock."""
    fresh = make_project()
    fresh.registry.engine  # noqa: B018  (create the registry)
    fresh.close()
    root = fresh.settings.root
    assert _killed(_workers.crash_commit, str(root), [1], "before_commit", 1) == -signal.SIGKILL

    project = Project.open(root)
    try:
        report = project.fsck()
        assert report.ok, report.problems
        assert report.objects >= 5 and report.unreferenced == report.objects
        assert report.temporary == 0
        assert project.models() == []
        with pytest.raises(ModelNotFoundError):
            project.load(f"{NAME}@1")
        with pytest.raises(ModelNotFoundError):
            project.load_data(f"{NAME}@latest")

        # No commit is in progress (the killed one's lock died with it): gc reclaims its
        # orphans at once, not after the grace period (CC-06 covers a commit in flight)
        assert project.gc(dry_run=True).deleted_objects == report.objects
        collected = project.gc()
        assert (collected.deleted_objects, collected.kept_young) == (report.objects, 0)
        assert list(project.store.iter_objects()) == []

        version = project.commit(*sample(1), name=NAME)
        assert version.version == 1
        _assert_holds(project, version.ref, 1)
        assert project.fsck().ok
    finally:
        project.close()


@pytest.mark.parametrize(("at", "n"), [("after_commit", 1), ("before_commit", 2)],
                         ids=["after-version-commit", "before-alias-commit"])
def test_cr03_crash_after_metadata_commit_keeps_the_version_and_the_old_alias(
        template: Path, tmp_path: Path, at: str, n: int) -> None:
    """CR-03 case 2: the version committed, the alias update not: the version exists and is
    complete, and the alias still points at the previous version."""
    root = _copy(template, tmp_path / "project")
    code = _killed(_workers.crash_commit, str(root), [1], at, n, "production")
    assert code == -signal.SIGKILL

    project = Project.open(root)
    try:
        assert project.fsck().ok
        assert [v.version for v in project.versions(NAME)] == [2, 1]
        _assert_holds(project, f"{NAME}@2", 1)
        assert project.show(f"{NAME}@production").version == 1
    finally:
        project.close()


# -- CR-04 -----------------------------------------------------------------------------------


def _raiser(error: BaseException) -> Callable[[], None]:
    def action() -> None:
        raise error

    return action


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("the writer broke")],
                         ids=["KeyboardInterrupt", "exception"])
def test_cr04_interrupted_large_blob_leaves_nothing(project: Project,
                                                    error: BaseException) -> None:
    """CR-04: a 16 MiB object interrupted after half of its writes: the error reaches the
    caller, nothing appears under the final name, the temporary file is gone."""
    pieces = [_workers.blob(1 << 20, seed=i) for i in range(16)]
    digest = hash_buffers(pieces)
    with OsFaults(project.store.root, "write", 9, _raiser(error)) as faults, \
            pytest.raises(type(error)) as raised:
        project.store.put(pieces)
    assert raised.value is error
    assert faults.counts["write"] == 9  # eight pieces were on disk
    assert not os.path.exists(project.store.path(digest))
    assert list(project.store.iter_temporary()) == []

    assert project.store.put(pieces).written  # the store is still usable
    assert project.store.get(digest) == b"".join(pieces)
    assert list(project.store.iter_temporary()) == []


def test_cr04_interrupted_commit_of_a_large_frame(project: Project) -> None:
    """CR-04 through the API: Ctrl-C in the middle of committing a ~48 MB frame leaves no
    version and no temporary file; the same commit then succeeds."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.standard_normal(2_000_000),
                          "b": rng.standard_normal(2_000_000),
                          "c": rng.integers(0, 1 << 40, 2_000_000)})
    model, _ = sample(0)
    with OsFaults(project.store.root, "write", 4, _raiser(KeyboardInterrupt())) as faults, \
            pytest.raises(KeyboardInterrupt):
        project.commit(model, {"X": frame}, name=NAME)
    assert faults.counts["write"] == 4
    assert project.models() == []
    assert list(project.store.iter_temporary()) == []
    assert project.fsck().ok

    version = project.commit(model, {"X": frame}, name=NAME)
    pd.testing.assert_frame_equal(project.load_data(version.ref)["X"], frame)


# -- CR-05 -----------------------------------------------------------------------------------


def _query(path: Path, sql: str) -> list[Any]:
    """The first column of ``sql`` run on a read-only connection to ``path``."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [row[0] for row in db.execute(sql)]


def _numbers(path: Path) -> list[int]:
    return _query(path, "SELECT number FROM versions ORDER BY number")


def test_cr05_backup_while_another_process_commits(template: Path, tmp_path: Path) -> None:
    """CR-05: VACUUM INTO backups taken while a child commits back to back are each a
    consistent database: integrity_check ok, version numbers gap-free."""
    ctx = _workers.context()
    started, stop = ctx.Event(), ctx.Event()
    children = _workers.Children()
    children.start(_workers.commit_until, str(template), started, stop)
    project = Project.open(template)
    backups = []
    try:
        assert started.wait(_workers.WAIT)
        for i in range(8):
            backup = tmp_path / f"backup-{i}.db"
            project.registry.backup(str(backup))
            backups.append(backup)
    finally:
        stop.set()
        committed = children.gather()[0]
        project.close()
    for backup in backups:
        assert _query(backup, "PRAGMA integrity_check") == ["ok"]
        numbers = _numbers(backup)
        assert numbers == list(range(1, len(numbers) + 1)) and numbers
        # no half-written version: each has its two datasets and its object list
        assert _query(backup, "SELECT count(*) FROM datasets") == [2 * len(numbers)]
        assert _query(backup, "SELECT count(*) FROM versions v WHERE NOT EXISTS (SELECT 1 "
                              "FROM version_objects o WHERE o.version_id = v.id)") == [0]
    assert len(_numbers(backups[-1])) <= 1 + committed


def test_cr05_restart_after_sigkill_keeps_the_hot_wal(make_project: Callable[..., Project],
                                                      tmp_path: Path) -> None:
    """CR-05: a writer killed with its -wal file still holding three committed versions;
    reopening through nbmci recovers them all (so the -wal was not deleted or moved)."""
    fresh = make_project()
    fresh.registry.engine  # noqa: B018
    fresh.close()
    root = fresh.settings.root
    database = root / ".nbmci" / "registry.db"
    wal = Path(f"{database}-wal")
    assert not wal.exists()

    code = _killed(_workers.crash_commit, str(root), [1, 2, 3], "after_commit", 3)
    assert code == -signal.SIGKILL
    assert wal.stat().st_size > 0  # the hot WAL the dead writer left
    main_only = tmp_path / "main-only.db"
    shutil.copyfile(database, main_only)
    assert len(_numbers(main_only)) < 3  # the versions live only in the -wal

    project = Project.open(root)
    try:
        assert [v.version for v in project.versions(NAME)] == [3, 2, 1]
        for number in (1, 2, 3):
            _assert_holds(project, f"{NAME}@{number}", number)
        assert project.fsck().ok
        assert wal.exists()
    finally:
        project.close()


# -- CR-07 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "n", "code", "words"), [
    ("write", 2, errno.ENOSPC, "Disk full"),
    ("write", 2, errno.EIO, "I/O error"),
    ("fsync", 2, errno.ENOSPC, "Disk full"),
    ("fsync", 2, errno.EIO, "I/O error"),
    ("fsync_dir", 2, errno.EIO, "I/O error"),
    ("fsync_top", 1, errno.EIO, "I/O error"),
])
def test_cr07_disk_full_and_io_errors(project: Project, at: str, n: int, code: int,
                                      words: str) -> None:
    """CR-07: ENOSPC/EIO injected into a blob write, a blob fsync or a directory fsync: a
    clear StorageError, no partial version, no temporary file; the store works once the
    disk does."""
    project.commit(*sample(0), name=NAME)
    error = OSError(code, os.strerror(code))
    with OsFaults(project.store.root, at, n, _raiser(error)) as faults, \
            pytest.raises(StorageError) as raised:
        project.commit(*sample(1), name=NAME)
    assert faults.counts[at] >= n  # the fault was reached
    assert words in str(raised.value)
    assert raised.value.errno == code
    assert [v.version for v in project.versions(NAME)] == [1]
    assert list(project.store.iter_temporary()) == []
    assert project.fsck().ok

    version = project.commit(*sample(1), name=NAME)
    assert version.version == 2
    _assert_holds(project, version.ref, 1)
    assert project.fsck().ok


def test_cr07_registry_full_is_a_clear_error_and_loses_nothing(project: Project,
                                                               fitted: Any) -> None:
    """SQLite reports SQLITE_FULL when it cannot grow the database (here: capped with
    max_page_count, SQLite's own limit); the commit fails cleanly and the store stays usable."""
    import sqlalchemy as sa

    first = project.commit(fitted, None, name="clf")
    engine = project.registry.engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()
    sa.event.listen(engine, "connect", cap)
    big = {"x": "y" * 200_000}
    with pytest.raises(StorageError, match="Disk full while writing the registry"):
        project.commit(fitted, None, name="clf", params=big)
    sa.event.remove(engine, "connect", cap)
    engine.dispose()
    assert [v.ref for v in project.versions("clf")] == [first.ref]
    assert project.commit(fitted, None, name="clf", params=big).version == 2
    assert project.fsck().ok
