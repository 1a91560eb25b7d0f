"""Concurrency tests (RELIABILITY.md CC-01, CC-02, CC-03, CC-04, CC-06): real processes
sharing one project directory, started together at a barrier."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from nbmci.api import Project
from nbmci.digest import hash_bytes
from nbmci.errors import ObjectCollisionError
from tests.core import _workers
from tests.core._workers import NAME, OsFaults, sample

# Read at import: the autouse fixture in conftest.py clears NBMCI_* before each test runs.
CC03_MB = int(os.environ.get("NBMCI_CC03_MB", "50"))

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="the OS fault harness reads /proc/self/fd")


@pytest.fixture
def root(project: Project) -> str:
    """An initialised project that this process does not hold open."""
    project.registry.engine  # noqa: B018  (create the schema before the children race)
    project.close()
    return str(project.settings.root)


def _sql(root: str, query: str, *args: object) -> list[tuple[object, ...]]:
    path = Path(root) / ".nbmci" / "registry.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(query, args).fetchall()


# -- CC-01 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "commits"), [
    pytest.param(4, 25, id="4x25"),
    pytest.param(16, 20, id="16x20", marks=pytest.mark.slow),
])
def test_cc01_concurrent_commits_get_unique_gap_free_numbers(root: str, workers: int,
                                                             commits: int) -> None:
    """CC-01: N processes commit M versions each of one model: versions are exactly 1..N*M,
    and each version holds the bytes of the process and iteration that committed it."""
    ctx = _workers.context()
    barrier = ctx.Barrier(workers)
    children = _workers.Children()
    for worker in range(workers):
        children.start(_workers.commit_series, root, "shared", worker, commits, barrier)
    reported = children.gather(timeout=60 + 3.0 * workers * commits)

    total = workers * commits
    made = {number: (worker, i) for worker, pairs in enumerate(reported) for i, number in pairs}
    assert sorted(made) == list(range(1, total + 1))  # none duplicated, none missing
    for pairs in reported:  # each process saw its own commits in order
        assert [n for _, n in pairs] == sorted(n for _, n in pairs)

    project = Project.open(root)
    pids: dict[int, set[int]] = {worker: set() for worker in range(workers)}
    try:
        versions = project.versions("shared")
        assert sorted(v.version for v in versions) == list(range(1, total + 1))
        for version in versions:
            worker, i = made[version.version]
            assert version.message == f"{worker}/{i}"
            assert project.load(version.ref).constant_.item() == worker * 1000 + i
            stamp = project.load_data(version.ref)["stamp"]
            assert set(stamp["worker"]) == {worker} and set(stamp["index"]) == {i}
            pids[worker].update(stamp["pid"])
        assert project.fsck().ok
    finally:
        project.close()
    assert all(len(found) == 1 for found in pids.values())  # one process per worker...
    assert len(set.union(*pids.values())) == workers  # ...and a different one each


# -- CC-02 -----------------------------------------------------------------------------------


def test_cc02_two_processes_create_the_same_new_model(root: str) -> None:
    """CC-02: two processes commit the first version of the same new name at the same moment,
    ten names in a row: one model row per name, both callers succeed, numbers 1 and 2."""
    names = [f"new-{i}" for i in range(10)]
    ctx = _workers.context()
    barrier = ctx.Barrier(2)
    children = _workers.Children()
    for worker in range(2):
        children.start(_workers.commit_at_barrier, root, names, worker, barrier)
    first, second = children.gather()

    for name, a, b in zip(names, first, second, strict=True):
        assert {a, b} == {1, 2}
        assert _sql(root, "SELECT count(*) FROM models WHERE name = ?", name) == [(1,)]
        assert _sql(root, "SELECT count(*), count(DISTINCT v.model_id) FROM versions v "
                          "JOIN models m ON m.id = v.model_id WHERE m.name = ?", name) == [(2, 1)]
    assert _sql(root, "SELECT count(*) FROM models") == [(len(names),)]


# -- CC-03 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("megabytes", [
    pytest.param(CC03_MB, id=f"{CC03_MB}MB"),
    pytest.param(500, id="500MB", marks=pytest.mark.slow),
])
def test_cc03_eight_writers_store_one_identical_blob(root: str, megabytes: int) -> None:
    """CC-03: eight processes store the same bytes at once: all succeed, one object on disk
    (one link, read-only), no temporary file left, the bytes verify."""
    nbytes = megabytes << 20
    ctx = _workers.context()
    barrier = ctx.Barrier(8)
    children = _workers.Children()
    for _ in range(8):
        children.start(_workers.put_at_barrier, root, nbytes, barrier)
    results = children.gather(timeout=120 + megabytes)

    digests = {digest for digest, _ in results}
    assert len(digests) == 1
    digest = digests.pop()
    project = Project.open(root)
    try:
        store = project.store
        assert [entry.digest for entry in store.iter_objects()] == [digest]
        assert list(store.iter_temporary()) == []
        info = os.stat(store.path(digest))
        assert (info.st_size, info.st_nlink, stat.S_IMODE(info.st_mode)) == (nbytes, 1, 0o444)
        assert hash_bytes(store.get(digest)) == digest
    finally:
        project.close()


@pytest.mark.parametrize("same", [True, False], ids=["same-bytes", "different-bytes"])
def test_cc03_link_race_compares_bytes(project: Project, same: bool) -> None:
    """CC-03 injected fault: another writer places the object between our existence check
    and our link. Same bytes: we succeed. Different bytes under that name: we fail loudly
    with ObjectCollisionError and the existing object is untouched."""
    store = project.store
    real = _workers.blob(1 << 20, seed=1)
    digest = hash_bytes(real)
    ours = real if same else _workers.blob(1 << 20, seed=2)

    def the_other_writer_wins() -> None:
        store.put([real], digest)

    with OsFaults(store.root, "link", 1, the_other_writer_wins) as faults:
        if same:
            store.put([ours], digest)
        else:
            with pytest.raises(ObjectCollisionError) as raised:
                store.put([ours], digest)
            assert digest in str(raised.value)
    assert faults.counts["link"] == 2  # the other writer's link, then ours
    info = os.stat(store.path(digest))
    assert (info.st_nlink, stat.S_IMODE(info.st_mode)) == (1, 0o444)
    assert store.get(digest) == real
    assert [entry.digest for entry in store.iter_objects()] == [digest]
    assert list(store.iter_temporary()) == []


# -- CC-04 -----------------------------------------------------------------------------------


def test_cc04_readers_never_see_a_partial_object(root: str) -> None:
    """CC-04: three readers poll an object (through the API and straight from its file) while
    another process writes it, paused half-way: each read is "missing" or complete."""
    pieces, piece_bytes = 64, 1 << 20
    nbytes = pieces * piece_bytes
    digest = hash_bytes(_workers.blob(nbytes, seed=1))
    ctx = _workers.context()
    halfway, resume = ctx.Event(), ctx.Event()
    checked = [ctx.Event() for _ in range(3)]
    children = _workers.Children()
    for event in checked:
        children.start(_workers.watch_object, root, digest, nbytes, halfway, event)
    children.start(_workers.put_pausing_halfway, root, pieces, piece_bytes, halfway, resume)
    try:
        assert halfway.wait(_workers.WAIT)
        project = Project.open(root)
        try:
            assert not project.store.has(digest)
            assert [t.size for t in project.store.iter_temporary()] == [nbytes // 2]
        finally:
            project.close()
        for event in checked:
            assert event.wait(_workers.WAIT)  # every reader read while the write was half done
    finally:
        resume.set()
        *seen, written = children.gather()

    assert written == digest
    for counts in seen:
        assert counts.get("partial", 0) == 0
        assert counts["missing"] >= 6 and counts["complete"] >= 1


# -- CC-06 -----------------------------------------------------------------------------------


@pytest.fixture
def with_version(make_project: Callable[..., Project]) -> str:
    """A closed project holding ``crash@1`` (``sample(0)``)."""
    project = make_project()
    project.commit(*sample(0), name=NAME)
    project.close()
    return str(project.settings.root)


def test_cc06_gc_keeps_the_blobs_of_a_commit_in_flight(with_version: str) -> None:
    """CC-06: gc (default grace) runs while a commit has written its blobs but not yet its
    metadata: it deletes nothing; the commit then completes and loads."""
    ctx = _workers.context()
    paused, resume = ctx.Event(), ctx.Event()
    children = _workers.Children()
    children.start(_workers.paused_commit, with_version, 1, paused, resume)
    project = Project.open(with_version)
    try:
        assert paused.wait(_workers.WAIT)
        before = {entry.digest for entry in project.store.iter_objects()}
        referenced = set(project.registry.version_digests())
        assert before - referenced  # the new blobs, not yet referenced
        report = project.gc()
        assert report.deleted_objects == 0 and report.kept_young == len(before - referenced)
        assert {entry.digest for entry in project.store.iter_objects()} == before
        resume.set()
        assert children.gather() == [2]

        model, data = sample(1)
        frames = project.load_data(f"{NAME}@2")
        np.testing.assert_array_equal(project.load(f"{NAME}@2").predict(data["X"]),
                                      model.predict(data["X"]))
        assert frames["X"].equals(data["X"])
        assert project.fsck().ok
    finally:
        resume.set()
        project.close()


def test_cc06_gc_spares_an_old_orphan_a_commit_is_reusing(make_project: Callable[..., Project]
                                                          ) -> None:
    """CC-06, deduplicated blobs: a commit crashed a day ago and left orphan blobs. Today the
    same commit is retried (reusing those blobs, which refreshes their mtime) while gc runs.
    gc must not delete blobs the retried commit now depends on."""
    fresh = make_project()
    fresh.registry.engine  # noqa: B018
    fresh.close()
    root = str(fresh.settings.root)
    killed = _workers.finish(_workers.start(_workers.crash_commit, root, [1], "before_commit", 1))
    assert killed == -signal.SIGKILL
    orphans = Project.open(root)
    _workers.age_paths([entry.path for entry in orphans.store.iter_objects()], 2 * 86400)
    orphans.close()

    ctx = _workers.context()
    gc_paused, gc_resume = ctx.Event(), ctx.Event()
    commit_paused, commit_resume = ctx.Event(), ctx.Event()
    children = _workers.Children()
    try:
        children.start(_workers.paused_gc, root, gc_paused, gc_resume)  # has listed the store
        assert gc_paused.wait(_workers.WAIT)
        children.start(_workers.paused_commit, root, 1, commit_paused, commit_resume)
        # gc found no commit in progress, so it holds the store's writing lock: the commit
        # waits for gc to end, then writes the blobs gc removed again. (Were it let through,
        # it would reuse and refresh them, then pause before its SQL COMMIT.)
        commit_paused.wait(2)
        gc_resume.set()
        _workers.finish(children.processes[0])  # gc finishes while the commit is in flight
    finally:
        gc_resume.set()
        commit_resume.set()
        gc_report, number = children.gather()
    assert number == 1

    project = Project.open(root)
    try:
        missing = [p.subject for p in project.fsck().problems if p.kind == "missing"]
        assert missing == [], (f"gc deleted {len(missing)} objects that {NAME}@1 needs "
                               f"(gc report: {gc_report})")
        assert project.load_data(f"{NAME}@1")["X"].equals(sample(1)[1]["X"])
    finally:
        project.close()
