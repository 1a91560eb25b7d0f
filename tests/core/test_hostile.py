"""BI-01: hostile names through the Python API and the CLI touch nothing outside the store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from nbmci.api import Project
from nbmci.cli import main
from nbmci.errors import InvalidInputError
from tests.core.test_refs import HOSTILE


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_through_the_api(project: Project, fitted: Any, name: str) -> None:
    project.models()  # the registry database exists before we look
    before = _tree(project.settings.root.parent)
    with pytest.raises(InvalidInputError):
        project.commit(fitted, None, name=name)
    for call in (project.show, project.load, project.load_data, project.versions):
        with pytest.raises(InvalidInputError):
            call(name)
    with pytest.raises(InvalidInputError):
        project.commit(fitted, {name: [1]} if name else {"": [1]}, name="ok")
    assert project.models() == []
    assert _tree(project.settings.root.parent) == before


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_through_the_cli(in_project: Project, name: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    if "\x00" in name:
        pytest.skip("a NUL cannot be passed on a command line")
    for args in (["log", name], ["show", f"{name}@1"], ["diff", name, "x@1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1


def test_data_keys_cannot_escape_a_checkout(project: Project, fitted: Any,
                                            tmp_path: Path) -> None:
    import numpy as np

    for key in ("../x", "a/b", "..", ".hidden", "x" * 65):
        with pytest.raises(InvalidInputError):
            project.commit(fitted, {key: np.zeros(2)}, name="clf")
    project.commit(fitted, {"X_train": np.zeros((2, 2))}, name="clf")
    out = tmp_path / "out"
    project.checkout("clf@1", out)
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(w.startswith("out" + os.sep) for w in written)
