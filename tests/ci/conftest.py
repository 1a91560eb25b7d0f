"""CI fixtures: a project with evaluation notebooks built with nbformat, run by real kernels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nbformat
import pytest

from nbmci.api import Project
from nbmci.config import load_settings

PARAMETERS = 'model_ref = "unset"\nthreshold = 0.0'
RECORD_ACCURACY = """import nbmci
version = nbmci.show(model_ref)
nbmci.record("accuracy", version.metrics.get("acc", 0.0))
nbmci.record("note", "evaluated " + model_ref)"""


def notebook(*cells: str, parameters: str | None = PARAMETERS) -> str:
    """An evaluation notebook as JSON text: a tagged parameters cell, then ``cells``."""
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nbformat.writes(nb)


@pytest.fixture
def ci_project(tmp_path_factory: pytest.TempPathFactory,
               monkeypatch: pytest.MonkeyPatch) -> Callable[..., Project]:
    """A project whose pyproject configures CI; ``notebooks`` maps file name -> JSON text."""

    def make(notebooks: dict[str, str], gates: dict[str, str] | None = None,
             timeout: float = 120, extra: str = "") -> Project:
        root = tmp_path_factory.mktemp("ci")
        (root / ".nbmci").mkdir(mode=0o700)
        (root / "notebooks").mkdir()
        for name, text in notebooks.items():
            (root / "notebooks" / name).write_text(text)
        listed = ", ".join(f'"notebooks/{name}"' for name in notebooks)
        gate_lines = "\n".join(f'{k} = "{v}"' for k, v in (gates or {}).items())
        (root / "pyproject.toml").write_text(
            f"[tool.nbmci.ci]\nnotebooks = [{listed}]\ntimeout = {timeout}\n{extra}\n"
            f"[tool.nbmci.gates]\n{gate_lines}\n")
        monkeypatch.chdir(root)
        return Project(load_settings(root))

    return make


@pytest.fixture
def commit_versions(fitted: Any, iris: Any) -> Callable[..., list[str]]:
    """Commit one version per accuracy value; the test notebooks report it back."""
    X, _ = iris

    def commit(project: Project, *accuracies: float, name: str = "clf") -> list[str]:
        return [project.commit(fitted, None, name=name, metrics={"acc": a},
                               example=X.head()).ref for a in accuracies]

    return commit
