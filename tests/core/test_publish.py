"""publish and rollback move the production alias; publish needs a passed CI run or --force."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from nbmci.api import Project
from nbmci.errors import ConflictError, InvalidInputError, ModelNotFoundError


def _ci(project: Project, ref: str, status: str) -> None:
    """Record a CI run as the CI runner does (the runner itself is tested in tests/ci)."""
    name, number = project.resolve(ref)
    run = {"started_at": dt.datetime.now(dt.UTC), "status": status, "metrics": {"acc": 0.9},
           "gates": [], "duration": 1.0, "environment": {}}
    project.registry.add_ci_run(name, number, run, [], actor="ci")


@pytest.fixture
def three(project: Project, fitted: Any, iris: Any) -> Project:
    for _ in range(3):
        project.commit(fitted, None, name="clf", example=iris[0].head())
    return project


def test_publish_requires_passed_ci(three: Project) -> None:
    with pytest.raises(ConflictError, match=r"clf@1 has not passed CI \(CI: not run\)") as info:
        three.publish("clf@1")
    assert "--force" in str(info.value)
    _ci(three, "clf@1", "failed")
    with pytest.raises(ConflictError, match="CI: failed"):
        three.publish("clf@1")
    _ci(three, "clf@1", "passed")
    published = three.publish("clf@1")
    assert (published.ref, published.previous, published.forced) == ("clf@1", None, False)
    assert three.show("clf@production").version == 1
    assert three.show("clf@1").ci.status == "passed"


def test_force_publish_is_recorded(three: Project) -> None:
    published = three.publish("clf@2", force=True)
    assert published.forced
    [event] = [e for e in three.registry.events("clf") if e["kind"] == "alias.moved"]
    assert event["payload"]["forced"] is True and event["payload"]["ci"] == "not run"


def test_rollback_walks_back_through_publish_history(three: Project) -> None:
    for ref in ("clf@1", "clf@2", "clf@3"):
        _ci(three, ref, "passed")
        three.publish(ref)
    back = three.rollback("clf")
    assert (back.previous, back.version, back.rolled_back) == (3, 2, True)
    assert three.rollback("clf").version == 1
    with pytest.raises(ConflictError, match="no earlier production version"):
        three.rollback("clf")
    three.publish("clf@3")
    assert three.rollback("clf").version == 1


def test_rollback_errors(three: Project) -> None:
    with pytest.raises(ModelNotFoundError):
        three.rollback("nope")
    with pytest.raises(ConflictError, match="no earlier production version") as nothing:
        three.rollback("clf")
    assert "nbmci publish clf@VERSION" in (nothing.value.hint or "")


def test_rollback_of_a_version_says_what_rollback_means(three: Project) -> None:
    three.publish("clf@2", force=True)
    with pytest.raises(InvalidInputError, match="takes a model name") as meant:
        three.rollback("clf@1")
    assert "`nbmci rollback clf`" in meant.value.hint and "`nbmci publish clf@1`" in \
        meant.value.hint
    with pytest.raises(InvalidInputError, match="takes a model name"):
        three.rollback("clf@production")
    assert three.show("clf@production").version == 2  # nothing moved


def _damage(project: Project, ref: str, data: bytes | None) -> None:
    from pathlib import Path

    blob = Path(project.store.path(project.show(ref).model.digest))
    blob.chmod(0o600)
    if data is None:
        blob.unlink()
    else:
        blob.write_bytes(data)


def test_production_never_moves_to_a_missing_or_corrupt_model(project: Project, fitted: Any,
                                                              iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    first = project.commit(fitted, None, name="clf", example=iris[0].head())
    project.commit(LogisticRegression(C=0.3, max_iter=500).fit(*iris), None, name="clf",
                   example=iris[0].head())
    project.publish("clf@1", force=True)
    project.publish("clf@2", force=True)
    _damage(project, "clf@1", b"garbage")
    with pytest.raises(ConflictError, match=r"Cannot roll back to clf@1: .*corrupt"):
        project.rollback("clf")
    with pytest.raises(ConflictError, match=r"Cannot publish clf@1: .*corrupt"):
        project.publish("clf@1", force=True)
    _damage(project, "clf@1", None)
    with pytest.raises(ConflictError, match=r"its model object blake3:\w+ is missing"):
        project.publish("clf@1", force=True)
    assert project.show("clf@production").version == 2
    assert first.version == 1


def test_a_rollback_checked_against_a_moved_alias_moves_nothing(three: Project) -> None:
    from nbmci.registry.queries import AliasMovedError

    for ref in ("clf@1", "clf@2"):
        three.publish(ref, force=True)
    stale = three.registry.rollback_target("clf", "production")
    assert stale == (2, 1)
    three.publish("clf@3", force=True)  # lands between the check and the move
    with pytest.raises(AliasMovedError, match="moved while a rollback was being checked"):
        three.registry.roll_back_alias("clf", "production", "test", expect=stale)
    assert three.show("clf@production").version == 3
    assert three.rollback("clf").version == 2  # the API checks the new target and moves


def test_a_version_whose_check_never_recorded_is_checked_at_publish(project: Project,
                                                                    iris: Any) -> None:
    """A commit whose background check was lost (the kernel died first) is checked when it
    is published, in a fresh process, and the verdict is recorded."""
    from sklearn.linear_model import LogisticRegression

    committed = project.commit(LogisticRegression(max_iter=500).fit(*iris), None, name="clf",
                               example=iris[0].head())
    project.checks.wait(committed)
    row = project.registry.versions("clf")[0]
    copy = {k: row[k] for k in ("message", "author", "model_digest", "model_format",
                                "model_class", "model_size", "trusted", "trusted_types",
                                "params", "metrics", "signature", "lineage", "stored")}
    number = project.registry.add_version("lost", copy, [], [row["model_digest"]], actor="x")
    assert project.show(f"lost@{number}").servability.status == "unknown"
    project.publish(f"lost@{number}", force=True)
    verdict = project.show(f"lost@{number}").servability
    assert (verdict.status, verdict.where) == ("servable", "publish")
