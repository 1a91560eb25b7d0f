"""fsck, gc and checkout: whole-store operations built on the Project's registry and store."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmci.errors import ConflictError, InvalidInputError
from nbmci.results import Checkout, FsckReport, GcReport, Problem

if TYPE_CHECKING:
    from nbmci.api import Project

logger = logging.getLogger(__name__)


def fsck(project: Project) -> FsckReport:
    store, registry = project.store, project.registry
    problems = [Problem("registry", "integrity_check", line)
                for line in registry.integrity_check()]
    problems += [Problem("alias", alias, "points at a version that does not exist")
                 for alias in registry.dangling_aliases()]
    needed = registry.version_digests()
    present = {entry.digest: entry for entry in store.iter_objects()}

    def check(digest: str) -> tuple[str, str | None]:
        return digest, store.verify(digest)

    with ThreadPoolExecutor(4, thread_name_prefix="nbmci-fsck") as pool:
        for digest, reason in pool.map(check, sorted(present)):
            if reason is not None:
                problems.append(Problem("corrupt", digest, reason, sorted(needed.get(digest, []))))
    for digest in sorted(set(needed) - set(present)):
        problems.append(Problem("missing", digest, "referenced but not in the store",
                                sorted(needed[digest])))
    damaged = {p.subject for p in problems}
    problems += _incomplete_versions(project, needed, damaged)
    temporary = sum(1 for _ in store.iter_temporary())
    return FsckReport(objects=len(present), referenced=len(needed),
                      unreferenced=len(set(present) - set(needed)), temporary=temporary,
                      problems=problems)


def _incomplete_versions(project: Project, needed: dict[str, list[str]],
                         damaged: set[str]) -> list[Problem]:
    """Versions whose model, manifests or chunks are not all recorded as theirs."""
    from nbmci.snapshot.tables import manifest_objects, read_manifest

    owned: dict[str, set[str]] = {}
    for digest, refs in needed.items():
        for ref in refs:
            owned.setdefault(ref, set()).add(digest)
    problems = []
    for ref, model_digest, dataset_digests in project.registry.version_roots():
        mine = owned.get(ref, set())
        expected = {model_digest, *dataset_digests}
        for digest in dataset_digests:
            if digest in damaged or digest not in mine:
                continue
            expected.update(manifest_objects(read_manifest(project.store, digest)))
        for digest in sorted(expected - mine):
            problems.append(Problem("incomplete", ref, f"does not record {digest}", [ref]))
    return problems


def gc(project: Project, grace: float, *, dry_run: bool) -> GcReport:
    if not isinstance(grace, (int, float)) or grace < 0:
        raise InvalidInputError(f"The grace period must be a number of seconds >= 0, not "
                                f"{grace!r}.")
    store = project.store
    with store.idle() as idle:
        # No commit is half-way (none holds the store's writing lock, and new ones wait): an
        # unreferenced object or temporary file belongs to no commit that can still finish,
        # so the grace period does not apply. Otherwise a commit landing after this listing
        # references only objects it wrote (young) or refreshed (young again, under the
        # store's shared lock): delete_if_older re-checks the age under the exclusive lock.
        cutoff = time.time() - (0 if idle else grace)
        needed = set(project.registry.version_digests())
        deleted = deleted_bytes = kept = tmp_deleted = 0
        for entry in list(store.iter_objects()):
            if entry.digest in needed:
                continue
            if entry.mtime > cutoff:
                kept += 1  # may belong to a commit that is still writing
                continue
            if dry_run or store.delete_if_older(entry, cutoff):
                deleted += 1
                deleted_bytes += entry.size
            else:
                kept += 1
        for entry in list(store.iter_temporary()):
            if entry.mtime <= cutoff:
                if not dry_run:
                    store.delete(entry.path)
                tmp_deleted += 1
    return GcReport(deleted, deleted_bytes, tmp_deleted, kept, dry_run)


_EXTENSIONS = {"skops": ".skops", "joblib": ".joblib"}


def checkout(project: Project, ref: Any, out: Path) -> Checkout:
    version = project.show(ref)
    target = _prepare_directory(out)
    files: list[str] = []
    model_bytes = project.store.get(version.model.digest)
    model_name = f"model{_EXTENSIONS.get(version.model.format, '.bin')}"
    _write_atomic(target, model_name, model_bytes)
    files.append(model_name)
    data = project.load_data(version.ref)
    if data:
        (target / "data").mkdir(mode=0o700, exist_ok=True)
        _refuse_symlink(target / "data", target)
    for key, value in data.items():
        files.append(_write_data(target, key, value))
    meta = json.dumps(version.to_dict(full=True), indent=2, sort_keys=True, default=str)
    _write_atomic(target, "version.json", meta.encode())
    files.append("version.json")
    return Checkout(version.ref, str(target), files)


def _prepare_directory(out: Path) -> Path:
    if out.is_symlink():
        raise InvalidInputError(f"{str(out)!r} is a symlink; nbmci writes only into real "
                                "directories.", hint="Choose another --out directory.")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not out.is_dir():
        raise InvalidInputError(f"{str(out)!r} is not a directory.")
    if any(out.iterdir()):
        raise ConflictError(f"{str(out)!r} is not empty; nothing was written.",
                            hint="Choose an empty or new --out directory.")
    return out.resolve()


def _refuse_symlink(path: Path, root: Path) -> None:
    if path.is_symlink() or not str(path.resolve()).startswith(str(root) + os.sep):
        raise InvalidInputError(f"{str(path)!r} escapes the output directory via a symlink.")


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_data(target: Path, key: str, value: Any) -> str:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        if value.ndim in (1, 2) and value.dtype.kind not in "SUV":
            frame = pd.DataFrame(value if value.ndim == 2 else value.reshape(-1, 1))
            frame.columns = [str(c) for c in frame.columns]
            value = frame
        else:
            name = f"data/{key}.npy"
            buffer = __import__("io").BytesIO()
            np.save(buffer, value, allow_pickle=False)
            _write_atomic(target / "data", f"{key}.npy", buffer.getvalue())
            return name
    if isinstance(value, pd.Series):
        value = value.to_frame(name=str(value.name) if value.name is not None else key)
    fd, tmp = tempfile.mkstemp(dir=target / "data", prefix=f".{key}.", suffix=".tmp")
    os.close(fd)
    try:
        value.to_parquet(tmp)
        os.replace(tmp, target / "data" / f"{key}.parquet")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return f"data/{key}.parquet"
