"""ObjectStore on a local directory and on fsspec's memory filesystem."""

from __future__ import annotations

from uuid import uuid4

import pytest

from nbmci.digest import hash_bytes
from nbmci.errors import CorruptObjectError, MissingDependencyError, ObjectNotFoundError
from nbmci.store import ObjectStore, open_store


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ObjectStore:
    if request.param == "file":
        return open_store(str(tmp_path_factory.mktemp("store")))
    # fsspec's memory filesystem is process-global: give each test its own root
    return open_store(f"memory://nbmci-{uuid4().hex}")


def test_put_get_has_and_dedup(store: ObjectStore) -> None:
    first = store.put([b"hello ", memoryview(b"world")])
    assert first.written and first.size == 11
    assert first.digest == hash_bytes(b"hello world")
    assert store.has(first.digest)
    assert store.get(first.digest) == b"hello world"
    again = store.put_bytes(b"hello world")
    assert again.digest == first.digest and not again.written
    assert [e.digest for e in store.iter_objects()] == [first.digest]


def test_missing_and_corrupt_objects_are_named(store: ObjectStore) -> None:
    missing = hash_bytes(b"never stored")
    with pytest.raises(ObjectNotFoundError) as info:
        store.get(missing)
    assert info.value.digest == missing
    stored = store.put_bytes(b"payload")
    path = store.path(stored.digest)
    if store.is_local:
        import os

        os.chmod(path, 0o644)
        with open(path, "wb") as handle:
            handle.write(b"tampered")
    else:
        store.fs.pipe_file(path, b"tampered")
    with pytest.raises(CorruptObjectError) as corrupt:
        store.get(stored.digest)
    assert corrupt.value.digest == stored.digest and stored.digest in str(corrupt.value)
    assert store.verify(stored.digest) is not None


def test_writer_abort_leaves_nothing(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError), store.writer() as writer:
        writer.put([b"x" * 1000])
        raise RuntimeError("interrupted")
    assert list(store.iter_temporary()) == []


def test_unknown_protocol_names_the_fix() -> None:
    with pytest.raises(MissingDependencyError, match="pip install 'nbmci\\[gcs\\]'"):
        open_store("gs://bucket/nbmci")


def test_project_on_a_memory_store(make_project, fitted, iris) -> None:  # type: ignore[no-untyped-def]
    project = make_project(store_url=f"memory://nbmci-{uuid4().hex}")
    X, y = iris
    version = project.commit(fitted, {"X": X, "y": y}, name="clf")
    assert project.load(version.ref).get_params() == fitted.get_params()
    assert project.load_data(version.ref)["X"].equals(X)
    assert project.fsck().ok
