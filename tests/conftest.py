"""Shared fixtures: real projects in temporary directories, small real datasets."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbmci.api import Project
from nbmci.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("NBMCI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Project]]:
    """Projects in fresh directories: ``make_project()``, or with ``store_url=...``."""
    made: list[Project] = []

    def make(**overrides: object) -> Project:
        root = tmp_path_factory.mktemp("project")
        (root / ".nbmci").mkdir(mode=0o700)
        settings = load_settings(root).with_overrides(**overrides)
        project = Project(settings)
        made.append(project)
        return project

    yield make
    for project in made:
        project.close()


@pytest.fixture
def project(make_project: Callable[..., Project]) -> Project:
    return make_project()


@pytest.fixture
def in_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The ``project`` fixture as the working directory, for the module-level API."""
    monkeypatch.chdir(project.settings.root)
    return project


@pytest.fixture(scope="session")
def iris() -> tuple[object, object]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def fitted(iris: tuple[object, object]) -> object:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture
def python() -> str:
    """The interpreter running the tests, for subprocesses that import nbmci."""
    return sys.executable
