"""The same registry code on PostgreSQL: round trips and concurrent version numbering."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbmci.api import Project
from tests import pg

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg.unavailable_reason() is not None,
                       reason=pg.unavailable_reason() or ""),
]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with pg.cluster() as url:
        yield url


@pytest.fixture
def pg_project(make_project: Any, postgres_url: str) -> Project:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # a clean schema per test
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    return make_project(registry_url=postgres_url)


def test_round_trip_on_postgres(pg_project: Project, fitted: Any, iris: Any) -> None:
    X, y = iris
    first = pg_project.commit(fitted, {"X": X, "y": y}, name="clf", metrics={"acc": 0.9})
    second = pg_project.commit(fitted, {"X": X, "y": y}, name="clf")
    assert (first.ref, second.ref) == ("clf@1", "clf@2")
    pg_project.set_alias("clf@1", "production")
    assert pg_project.show("clf@production").metrics == {"acc": 0.9}
    assert pg_project.load_data("clf@2")["X"].equals(X)
    assert pg_project.fsck().ok
    assert [m.aliases for m in pg_project.models()] == [{"production": 1}]


def test_concurrent_committers_get_gapless_numbers(pg_project: Project, tmp_path: Path) -> None:
    worker = textwrap.dedent("""
        import sys
        import numpy as np
        from nbmci.api import Project
        from nbmci.config import load_settings
        from sklearn.dummy import DummyClassifier
        root, url, who = sys.argv[1], sys.argv[2], int(sys.argv[3])
        project = Project(load_settings(root).with_overrides(registry_url=url))
        model = DummyClassifier(constant=who, strategy="constant").fit([[0], [1]], [who, 1 - who])
        for i in range(10):
            project.commit(model, {"X": np.full((4, 2), who * 100 + i)}, name="shared")
    """)
    root = str(pg_project.settings.root)
    url = pg_project.settings.registry_url
    procs = [subprocess.Popen([sys.executable, "-c", worker, root, url, str(who)],
                              stderr=subprocess.PIPE, text=True) for who in range(4)]
    try:
        errors = [proc.communicate(timeout=240)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    numbers = sorted(v.version for v in pg_project.versions("shared"))
    assert numbers == list(range(1, 41))
    for version in pg_project.versions("shared"):
        value = int(pg_project.load_data(version.ref)["X"][0, 0])
        assert version.model.class_name.endswith("DummyClassifier") and 0 <= value < 400
