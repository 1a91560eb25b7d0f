"""What the crash and concurrency tests run in child processes, and the OS fault harness.

Children are forked from a multiprocessing "forkserver" that preloads this module, so each
child starts with pandas, scikit-learn, pyarrow, skops and nbmci already imported: starting one
costs a fork, not a two-second import. The forkserver never opens a database, so no child
inherits an SQLite connection.

``OsFaults`` wraps the OS calls ``os.write``, ``os.fsync``, ``os.link`` and ``os.replace`` (not
nbmci's functions) and acts just before the Nth call of one kind that touches the object
store: a child kills itself there with SIGKILL, or pauses, or the call raises an injected
error. ``arm_sql`` does the same around the registry's write transactions, using SQLAlchemy
engine events.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import stat
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.context import ForkServerContext, ForkServerProcess
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

# Imported here so the forkserver preloads them; nbmci imports most of them lazily.
import fsspec.implementations.local  # noqa: F401
import numpy as np
import pandas as pd
import pyarrow  # noqa: F401
import skops.io  # noqa: F401
import sqlalchemy as sa
from sklearn.dummy import DummyRegressor
from sklearn.tree import DecisionTreeClassifier

import nbmci._maintenance
import nbmci.snapshot  # noqa: F401
from nbmci.api import Project
from nbmci.errors import NotFoundError

NAME = "crash"  # the model the crash tests commit
WAIT = 60.0  # seconds any child waits for its parent before giving up
OS_KINDS = ("write", "fsync", "link", "replace", "fsync_dir", "fsync_top")
SQL_KINDS = ("before_commit", "after_commit")

Action = Callable[[], None]


# -- the fault harness -----------------------------------------------------------------------


def die() -> None:
    """SIGKILL this process: no cleanup, no atexit, no flush (like `kill -9`)."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(WAIT)  # not reached: SIGKILL to oneself is delivered before kill() returns


def pause(paused: Event, resume: Event) -> Action:
    """An action that tells the parent "I am here" and waits until it says go on."""

    def action() -> None:
        paused.set()
        if not resume.wait(WAIT):
            raise TimeoutError("the parent never resumed this child")

    return action


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class OsFaults:
    """Count the OS calls that touch ``under``; run ``action`` before the ``n``-th of ``at``.

    Kinds: ``write``, ``fsync`` (of a file), ``link``, ``replace``, and the fsync of a
    directory: ``fsync_dir`` (a fan-out directory like ``objects/ab``) or ``fsync_top`` (a
    top directory like ``objects``). Use as a context manager; the real functions are
    restored on exit.

    Example: ``with OsFaults(store.root, "write", 3, die): project.commit(...)``
    """

    def __init__(self, under: str | os.PathLike[str], at: str | None = None, n: int = 1,
                 action: Action | None = None) -> None:
        if at is not None and at not in OS_KINDS:
            raise ValueError(f"unknown OS call kind {at!r}")
        self.under = os.path.realpath(under)
        self.at, self.n, self.action = at, n, action
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._real: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> OsFaults:
        for name in ("write", "fsync", "link", "replace"):
            self._real[name] = getattr(os, name)
            setattr(os, name, self._wrap(name, self._real[name]))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, real in self._real.items():
            setattr(os, name, real)
        self._real.clear()

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kind = self._kind(name, args)
            if kind is not None:
                self._hit(kind)
            return real(*args, **kwargs)

        return wrapper

    def _kind(self, name: str, args: tuple[Any, ...]) -> str | None:
        target = os.fspath(args[1]) if name in ("link", "replace") else _fd_path(args[0])
        target = os.path.realpath(target) if target else ""
        if not target.startswith(self.under + os.sep):
            return None
        if name == "fsync" and stat.S_ISDIR(os.fstat(args[0]).st_mode):
            top = os.sep not in os.path.relpath(target, self.under)
            return "fsync_top" if top else "fsync_dir"
        return name

    def _hit(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1
            strike = kind == self.at and self.counts[kind] == self.n
        if strike and self.action is not None:
            self.action()


def arm_sql(engine: sa.Engine, at: str, n: int, action: Action) -> None:
    """Run ``action`` just before, or just after, the ``n``-th registry write's COMMIT.

    "before_commit" fires from the engine's ``commit`` event, before the DBAPI commit.
    "after_commit" fires when that connection goes back to the pool: the transaction is
    durable but the nbmci call that made it has not returned yet.
    """
    if at not in SQL_KINDS:
        raise ValueError(f"unknown SQL point {at!r}")
    state = {"writes": 0, "committed": False}

    def on_commit(conn: sa.Connection) -> None:
        if not conn.get_execution_options().get("nbmci_write"):
            return  # a read transaction
        state["writes"] += 1
        if state["writes"] == n:
            if at == "before_commit":
                action()
            else:
                state["committed"] = True

    def on_checkin(_dbapi_connection: Any, _record: Any) -> None:
        if state["committed"]:
            state["committed"] = False
            action()

    sa.event.listen(engine, "commit", on_commit)
    sa.event.listen(engine, "checkin", on_checkin)


def armed(project: Project, at: str | None, n: int, action: Action) -> OsFaults:
    """OS faults for ``project``'s store; SQL points are armed on its registry engine."""
    if at in SQL_KINDS:
        arm_sql(project.registry.engine, at, n, action)
        return OsFaults(project.store.root)
    return OsFaults(project.store.root, at, n, action)


# -- what gets committed ---------------------------------------------------------------------


def sample(tag: int, rows: int = 150) -> tuple[DecisionTreeClassifier, dict[str, Any]]:
    """A DataFrame, a Series and a model fitted on them; no object is shared across tags."""
    rng = np.random.default_rng(tag)
    X = pd.DataFrame({"a": rng.standard_normal(rows), "b": rng.standard_normal(rows),
                      "tag": np.full(rows, tag, dtype="int64")})
    y = pd.Series((X["a"] + X["b"] > 0).astype("int64"), name="y")
    model = DecisionTreeClassifier(max_depth=3, random_state=tag).fit(X, y)
    return model, {"X": X, "y": y}


def stamped(worker: int, index: int) -> tuple[DummyRegressor, dict[str, Any]]:
    """A model and data that say which worker made them, and in which iteration."""
    model = DummyRegressor(strategy="constant", constant=worker * 1000 + index)
    model.fit(np.zeros((1, 1)), np.zeros(1))
    frame = pd.DataFrame({"worker": np.full(64, worker), "index": np.full(64, index),
                          "pid": np.full(64, os.getpid())})
    return model, {"stamp": frame}


def blob(nbytes: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(nbytes)


def open_project(root: str) -> Project:
    """The project at ``root``, opened afresh as a restarted process would."""
    project = Project.open(root)
    project.registry.engine  # noqa: B018  (connect before any fault is armed)
    return project


# -- child entry points ----------------------------------------------------------------------


def crash_commit(root: str, tags: Sequence[int], at: str | None, n: int = 1,
                 alias: str | None = None) -> dict[str, Any]:
    """Commit ``sample(tag)`` for each tag (then point ``alias`` at it), killing this process
    just before the ``n``-th ``at`` call; with ``at=None`` return the calls it counted."""
    project = open_project(root)
    items = [sample(tag) for tag in tags]
    started = time.perf_counter()
    with armed(project, at, n, die) as faults:
        for model, data in items:
            version = project.commit(model, data, name=NAME)
            if alias is not None:
                project.set_alias(version.ref, alias)
    return {"counts": dict(faults.counts), "seconds": time.perf_counter() - started}


def commit_and_linger(root: str, tag: int, ready: Event, done: Event) -> None:
    """Commit ``sample(tag)``, then wait to be killed; ``done`` tells whether it finished."""
    project = open_project(root)
    model, data = sample(tag)
    ready.set()
    project.commit(model, data, name=NAME)
    done.set()
    time.sleep(WAIT)


def paused_commit(root: str, tag: int, paused: Event, resume: Event) -> int:
    """Commit ``sample(tag)``, pausing after every blob is durable, before the SQL COMMIT."""
    project = open_project(root)
    arm_sql(project.registry.engine, "before_commit", 1, pause(paused, resume))
    return project.commit(*sample(tag), name=NAME).version


def paused_gc(root: str, paused: Event, resume: Event) -> dict[str, Any]:
    """Run gc with its default grace period, pausing after it listed the store and read the
    references, just before it takes the store's exclusive lock to delete the first
    candidate (an OS-level hook on ``fcntl.flock``)."""
    import fcntl

    project = open_project(root)
    real_flock = fcntl.flock
    seen = [0]

    def flock(fd: int, operation: int) -> None:
        if operation & fcntl.LOCK_EX:
            seen[0] += 1
            if seen[0] == 1:
                pause(paused, resume)()
        real_flock(fd, operation)

    fcntl.flock = flock
    try:
        return project.gc().to_dict()
    finally:
        fcntl.flock = real_flock


def commit_series(root: str, name: str, worker: int, count: int,
                  barrier: Barrier) -> list[tuple[int, int]]:
    """``count`` commits of ``stamped(worker, i)``; returns (i, version number) pairs."""
    project = open_project(root)
    items = [stamped(worker, i) for i in range(count)]
    barrier.wait(WAIT)
    numbers = []
    for i, (model, data) in enumerate(items):
        numbers.append((i, project.commit(model, data, name=name, message=f"{worker}/{i}").version))
    return numbers


def commit_at_barrier(root: str, names: Sequence[str], worker: int,
                      barrier: Barrier) -> list[int]:
    """For each name, wait for the other worker, then both commit its first version."""
    project = open_project(root)
    model, data = stamped(worker, 0)
    numbers = []
    for name in names:
        barrier.wait(WAIT)
        numbers.append(project.commit(model, data, name=name).version)
    return numbers


def put_at_barrier(root: str, nbytes: int, barrier: Barrier) -> tuple[str, bool]:
    """Store the same ``nbytes`` as every other writer, all starting together."""
    project = open_project(root)
    data = blob(nbytes)
    barrier.wait(WAIT)
    stored = project.store.put([data])
    return stored.digest, stored.written


def put_pausing_halfway(root: str, pieces: int, piece_bytes: int, halfway: Event,
                        resume: Event) -> str:
    """Store one object written in ``pieces`` writes; pause after half of them."""
    project = open_project(root)
    data = blob(pieces * piece_bytes, seed=1)
    parts = [memoryview(data)[i * piece_bytes:(i + 1) * piece_bytes] for i in range(pieces)]
    with OsFaults(project.store.root, "write", pieces // 2 + 1, pause(halfway, resume)):
        return project.store.put(parts).digest


def watch_object(root: str, digest: str, nbytes: int, halfway: Event,
                 checked: Event) -> dict[str, int]:
    """Read ``digest`` (through the API and straight from its file) until it is complete.

    Counts "missing", "complete" and "partial" reads; sets ``checked`` after three rounds
    of reads made while the writer was paused half-way.
    """
    project = open_project(root)
    path = project.store.path(digest)
    seen: Counter[str] = Counter()
    during = 0
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        paused_now = halfway.is_set()
        outcomes = [_read_api(project, digest), _read_file(path, digest, nbytes)]
        seen.update(outcomes)
        if paused_now:
            during += 1
            if during == 3:
                checked.set()
        if "complete" in outcomes and checked.is_set():
            break
        time.sleep(0.002)
    return dict(seen)


def _read_api(project: Project, digest: str) -> str:
    try:
        project.store.get(digest)  # raises CorruptObjectError on partial bytes
    except NotFoundError:
        return "missing"
    return "complete"


def _read_file(path: str, digest: str, nbytes: int) -> str:
    from nbmci.digest import hash_bytes

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return "missing"
    return "complete" if len(data) == nbytes and hash_bytes(data) == digest else "partial"


def commit_until(root: str, started: Event, stop: Event, limit: int = 500) -> int:
    """Commit new versions back to back until ``stop`` is set; returns how many."""
    project = open_project(root)
    items = [sample(tag) for tag in range(100, 110)]
    done = 0
    while not stop.is_set() and done < limit:
        model, data = items[done % len(items)]
        project.commit(model, data, name=NAME, message=f"backup race {done}")
        done += 1
        started.set()
    return done


# -- the parent's side -----------------------------------------------------------------------


def context() -> ForkServerContext:
    """The forkserver context, preloading this module (only if the server is not up yet)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _call(results: Any, index: int, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        results.put((index, True, target(*args)))
    except BaseException:  # report everything, KeyboardInterrupt included
        results.put((index, False, traceback.format_exc()))


def start(target: Callable[..., Any], *args: Any) -> ForkServerProcess:
    """Start ``target(*args)`` in a child; nothing is collected from it but its exit code."""
    process = context().Process(target=target, args=args, daemon=True)
    process.start()
    return process


def finish(process: mp.process.BaseProcess, timeout: float = WAIT) -> int | None:
    """Wait for ``process``; kill it if it overstays. Returns its exit code (None if hung)."""
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join(10)
        return None
    return process.exitcode


class Children:
    """Several children whose return values (or tracebacks) come back to the parent."""

    def __init__(self) -> None:
        self.ctx = context()
        self.results = self.ctx.Queue()
        self.processes: list[ForkServerProcess] = []

    def start(self, target: Callable[..., Any], *args: Any) -> None:
        process = self.ctx.Process(target=_call, daemon=True,
                                   args=(self.results, len(self.processes), target, args))
        process.start()
        self.processes.append(process)

    def gather(self, timeout: float = 120.0) -> list[Any]:
        """Every child's return value, in start order; fails on any error or hang."""
        deadline = time.monotonic() + timeout
        found: dict[int, tuple[bool, Any]] = {}
        while len(found) < len(self.processes) and time.monotonic() < deadline:
            try:
                index, ok, value = self.results.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in self.processes) and self.results.empty():
                    break  # someone died without reporting
                continue
            found[index] = (ok, value)
        for process in self.processes:
            finish(process, max(1.0, deadline - time.monotonic()))
        errors = [f"child {i}:\n{v}" for i, (ok, v) in sorted(found.items()) if not ok]
        silent = [f"child {i} exit code {p.exitcode}" for i, p in enumerate(self.processes)
                  if i not in found]
        if errors or silent:
            raise AssertionError("\n".join(errors + silent))
        return [found[i][1] for i in range(len(self.processes))]


def run(target: Callable[..., Any], *args: Any, timeout: float = 120.0) -> Any:
    """Run ``target(*args)`` in one child and return its result."""
    children = Children()
    children.start(target, *args)
    return children.gather(timeout)[0]


def age_paths(paths: Sequence[str | Path], seconds: float) -> None:
    """Make files look ``seconds`` old, as if time had passed since they were written."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))
