"""Lineage inside a real IPython shell: executed cells and the notebook path are recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbmci.api import Project


@pytest.fixture
def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


def test_cells_and_vscode_notebook_path_are_recorded(shell: Any, project: Project,
                                                     tmp_path: Path) -> None:
    shell.user_ns["project"] = project
    shell.user_ns["__vsc_ipynb_file__"] = str(tmp_path / "train.ipynb")
    shell.run_cell("from sklearn.linear_model import LinearRegression\n"
                   "import numpy as np\nX = np.arange(10.0).reshape(5, 2)", store_history=True)
    shell.run_cell(store_history=True, raw_cell="model = LinearRegression().fit(X, X[:, 0])")
    result = shell.run_cell(store_history=True,
                            raw_cell="v = project.commit(model, X, message='from ipython')")
    result.raise_error()
    version = shell.user_ns["v"]
    assert version.name == "model" and list(version.data) == ["X"]
    cells = version.lineage["cells"]
    assert cells[-2].startswith("model = LinearRegression()")
    assert "project.commit(model, X" in cells[-1]
    assert version.lineage["notebook"] == str(tmp_path / "train.ipynb")
    assert version.lineage["script"] is None


def test_jupyter_session_name_is_the_notebook_path(shell: Any, project: Project,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/work/churn.ipynb")
    shell.user_ns["project"] = project
    shell.run_cell(store_history=True, raw_cell="from sklearn.dummy import DummyClassifier\n"
                   "clf = DummyClassifier().fit([[0], [1]], [0, 1])")
    shell.run_cell(store_history=True, raw_cell="v = project.commit(clf)").raise_error()
    assert shell.user_ns["v"].lineage["notebook"] == "/home/me/work/churn.ipynb"
