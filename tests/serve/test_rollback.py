"""SV-03: rolling back under load drops nothing; a version whose model object is corrupt is
refused before any swap, by ``rollback`` and by the server, and the live version keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbmci.errors import ConflictError
from tests.serve.conftest import (
    assert_clean_switch,
    commit,
    fit,
    load_loop,
    saw_version,
    wait_for,
)


def test_sv03_rollback_under_load_then_to_a_corrupt_version(make_serving: Any,
                                                             iris_frame: Any) -> None:
    project, running = make_serving()  # iris@1 live
    host = running.state.host
    X, y = iris_frame
    for c in (0.5, 0.25):
        commit(project, fit(X, y, c=c), X, y)
    for version in (2, 3):
        project.publish(f"iris@{version}", force=True)
        wait_for(lambda v=version: host.get("iris").version == v)

    with load_loop(running.url) as seen:
        assert project.rollback("iris").version == 2
        wait_for(lambda: saw_version(seen, "2"), timeout=2.0)
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    assert_clean_switch(seen, "3", "2")

    project.publish("iris@3", force=True)
    wait_for(lambda: host.get("iris").version == 3)
    blob = Path(project.store.path(project.show("iris@2").model.digest))
    blob.chmod(0o600)
    blob.write_bytes(b"not the model")
    with load_loop(running.url) as seen:
        with pytest.raises(ConflictError, match=r"Cannot roll back to iris@2: .*corrupt"):
            project.rollback("iris")
        assert project.registry.alias_target("iris", "production") == 3
        # forced past the check (as a registry edited by hand would be): the server hashes
        # the object before loading it and never swaps
        project.registry.set_alias("iris", "production", 2, "test", {})
        wait_for(lambda: 2 in host.state("iris").failed)
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    assert "corrupt" in host.state("iris").failed[2]
    assert {s for s in seen} == {(200, "3")}
    with pytest.raises(ConflictError, match="Cannot publish iris@2"):
        project.publish("iris@2", force=True)
