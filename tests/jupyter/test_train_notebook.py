"""The example notebook, executed as CI executes notebooks: by papermill, in a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from nbmci.api import Project
from nbmci.config import STATE_DIR, load_settings
from tests.conftest import ROOT
from tests.jupyter.conftest import kernel_env

NOTEBOOK = ROOT / "notebooks" / "train.ipynb"


def test_the_example_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "widgets" not in notebook.metadata


@pytest.mark.kernel
def test_the_example_runs_under_papermill_and_versions_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    root = tmp_path / "project"
    (root / STATE_DIR).mkdir(parents=True, mode=0o700)
    for name, value in kernel_env(tmp_path / "ipython").items():
        monkeypatch.setenv(name, value)
    executed = papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "train.out.ipynb"), kernel_name="python3",
        parameters={"PAPERMILL_INPUT_PATH": str(NOTEBOOK)},  # as --inject-input-path does
        cwd=str(root), progress_bar=False)

    project = Project(load_settings(root))
    second, first = project.versions("clf")
    project.close()
    assert (first.params["randomforestclassifier__n_estimators"],
            second.params["randomforestclassifier__n_estimators"]) == (20, 100)
    assert first.data["X_train"].digest == second.data["X_train"].digest
    assert second.stored.dedup_bytes >= first.data["X_train"].nbytes
    for version in (first, second):
        assert version.lineage["notebook"] == str(NOTEBOOK)
        assert any("tumours()" in cell for cell in version.lineage["cells"])
    assert 0.9 < first.metrics["accuracy"] < second.metrics["accuracy"] <= 1

    outputs = {c.source: c.outputs for c in executed.cells if c.cell_type == "code"}
    log, = outputs["%mci_log clf"]
    assert log.data["text/html"].index("clf@2") < log.data["text/html"].index("clf@1")
    diff, = outputs["%mci_diff {first.ref} {second.ref}"]
    changed = [line.split() for line in diff.data["text/plain"].splitlines()
               if line.startswith("~ ")]
    assert ["~", "randomforestclassifier__n_estimators", "20", "100"] in changed
    assert ["~", "accuracy"] in [row[:2] for row in changed]
    assert executed.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
