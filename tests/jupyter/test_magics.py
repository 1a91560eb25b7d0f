"""The magics in a real kernel: what each one shows, what it returns, what the registry holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

from nbmci.api import Project
from nbmci.config import STATE_DIR
from tests.jupyter.conftest import WIDGET_VIEW, Kernel, kernel_env, mimebundles

pytestmark = pytest.mark.kernel

TRAIN = """\
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X_train = pd.DataFrame({f"x{i}": rng.standard_normal(200) for i in range(3)})
y_train = pd.Series((X_train.x0 > 0).astype(int), name="target")
clf = LogisticRegression().fit(X_train, y_train)
"""
REFIT = """\
X_train = pd.concat([X_train, X_train.head(20) + 1], ignore_index=True)
y_train = pd.Series((X_train.x0 > 0).astype(int), name="target")
clf = LogisticRegression(C=0.1).fit(X_train, y_train)
"""
COMMIT_TWICE = [
    TRAIN,
    '%mci_commit clf --data X_train,y_train -m "baseline" --metrics accuracy=0.91 loss=0.3',
    REFIT,
    '%mci_commit clf --data X_train,y_train -m "stronger prior" --metrics accuracy=0.93',
]


def only_display(cell: NotebookNode) -> dict[str, Any]:
    """The one display output of ``cell``; a second output (an Out[] echo) fails the test."""
    outputs = [o for o in cell["outputs"] if o["output_type"] != "stream"]
    assert [o["output_type"] for o in outputs] == ["display_data"]
    return dict(outputs[0])


def children(kernel: Kernel, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The model states of a container widget's children."""
    return [kernel.client.widget_state[ref.removeprefix("IPY_MODEL_")]
            for ref in state["children"]]


def stdout(cell: NotebookNode) -> str:
    return "".join(o["text"] for o in cell["outputs"] if o.get("name") == "stdout")


def test_the_kernel_runs_this_environment(kernel: Kernel, python: str) -> None:
    cell, = kernel.run("import sys; print(sys.executable)")
    assert stdout(cell).strip() == python


def test_the_extension_loads_from_the_kernel_config(tmp_path: Path) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["nbmci"]\n')
    (tmp_path / STATE_DIR).mkdir(mode=0o700)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%mci_status")])
    NotebookClient(notebook, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=kernel_env(tmp_path / "ipython"))
    status = only_display(notebook.cells[0])["data"]["text/plain"]
    assert status.startswith("nbmci status") and str(tmp_path) in status


def test_commit_shows_a_card_and_writes_one_whole_version(kernel: Kernel,
                                                          registry: Project) -> None:
    cells = kernel.run(TRAIN, 'v = %mci_commit clf --data X_train,y_train -m "first fit" '
                              "--params C=1.0 solver='lbfgs' --metrics accuracy=0.9",
                       "print(v.ref, v.stored.new_objects > 0)")
    card = only_display(cells[1])
    html, text = card["data"]["text/html"], card["data"]["text/plain"]
    for shown in ("clf@1", "first fit", "X_train", "y_train", "accuracy", "solver",
                  "&#x27;lbfgs&#x27;", "Lineage", "cells"):
        assert shown in html
    assert text.startswith("clf@1 · LogisticRegression in ")
    state = kernel.widget_state(card)
    assert state["_model_name"] == "HTMLModel" and "clf@1" in state["value"]
    assert stdout(cells[2]).split() == ["clf@1", "True"]

    version, = registry.versions("clf")
    assert (version.message, sorted(version.data)) == ("first fit", ["X_train", "y_train"])
    assert version.params == {"C": 1.0, "solver": "lbfgs"}
    assert version.metrics == {"accuracy": 0.9}
    assert version.signature["inputs"][0] == {"name": "x0", "dtype": "float64"}
    assert "mci_commit" in version.lineage["cells"][-1]
    assert version.lineage["cells"][0].startswith("import numpy")


def test_model_name_defaults_to_the_variable_name(kernel: Kernel, registry: Project) -> None:
    kernel.run(TRAIN, "Ridge_Model = clf", "%mci_commit Ridge_Model", "%mci_commit clf --name m2")
    assert [m.name for m in registry.models()] == ["m2", "ridge-model"]


@pytest.mark.parametrize("setup", [
    "import os; os.environ['JPY_SESSION_NAME'] = {path!r}",  # JupyterLab / Notebook 7
    "__vsc_ipynb_file__ = {path!r}",  # VS Code
    "PAPERMILL_INPUT_PATH = {path!r}",  # papermill --inject-input-path
], ids=["jupyterlab", "vscode", "papermill"])
def test_commit_records_the_notebook_path(kernel: Kernel, registry: Project,
                                          setup: str) -> None:
    path = str(kernel.root / "work" / "train.ipynb")
    cells = kernel.run(setup.format(path=path), TRAIN, "%mci_commit clf")
    assert path in only_display(cells[-1])["data"]["text/html"]
    assert registry.show("clf@1").lineage["notebook"] == path


def test_large_commit_shows_progress_then_the_card_in_its_place(kernel: Kernel) -> None:
    cells = kernel.run(TRAIN, "big = pd.DataFrame({'a': np.arange(4_500_000, dtype=float)})",
                       "%mci_commit clf --data big")
    card = only_display(cells[-1])
    assert "clf@1" in card["data"]["text/html"]
    bars = [s for s in kernel.client.widget_state.values()
            if s.get("_model_name") == "IntProgressModel" and s.get("description")
            == "committing"]
    assert bars and bars[-1]["value"] == 100


def test_log_lists_versions_newest_first_with_a_metric_chart(kernel: Kernel) -> None:
    cells = kernel.run(*COMMIT_TWICE, "r = %mci_log clf", "print([v.ref for v in r])")
    log = only_display(cells[-2])
    html, text = log["data"]["text/html"], log["data"]["text/plain"]
    assert html.index("clf@2") < html.index("clf@1")
    assert "stronger prior" in html and "<svg" in html and "accuracy" in html
    assert text.splitlines()[0] == "Log of clf"
    table, dropdown, chart = children(kernel, kernel.widget_state(log))
    assert dropdown["_options_labels"] == ["accuracy", "loss"]
    assert dropdown["index"] == 0 and "<svg" in chart["value"]
    assert "clf@2" in table["value"]
    assert stdout(cells[-1]).strip() == "['clf@2', 'clf@1']"


def test_log_of_every_model_charts_the_chosen_metric(kernel: Kernel) -> None:
    cells = kernel.run(*COMMIT_TWICE, "other = clf", "%mci_commit other --metrics loss=0.5",
                       "%mci_log --metric loss -n 2")
    log = only_display(cells[-1])
    _, dropdown, chart = children(kernel, kernel.widget_state(log))
    assert dropdown["_options_labels"][dropdown["index"]] == "loss"
    assert "other@1" in chart["value"] and "clf@1" not in log["data"]["text/html"]


def test_diff_puts_versions_side_by_side_and_marks_changes(kernel: Kernel) -> None:
    cells = kernel.run(*COMMIT_TWICE, "d = %mci_diff clf@1 clf@2", "print(d.changed)")
    diff = only_display(cells[-2])
    text = diff["data"]["text/plain"]
    assert text.splitlines()[0] == "clf@1 → clf@2"
    assert "~ C " in text and "~ accuracy" in text and "- loss" in text
    assert "~ rows" in text and "200" in text and "220" in text
    assert "~ x0 mean" in text
    _, tabs = children(kernel, kernel.widget_state(diff))
    assert tabs["titles"][:3] == ["Model (1 of 3 changed)", "Params (1 of 14 changed)",
                                  "Metrics (2 of 2 changed)"]
    assert "rgba(255,193,7" in diff["data"]["text/html"]  # changed rows are highlighted
    assert stdout(cells[-1]).strip() == "True"


def test_checkout_restores_the_model_and_its_data(kernel: Kernel) -> None:
    cells = kernel.run(*COMMIT_TWICE, "del clf, X_train, y_train",
                       "%mci_checkout clf@1 --data",
                       "print(clf.C, X_train.shape, y_train.name)",
                       "%mci_checkout clf@latest --as newest",
                       "print(newest.C)")
    card = only_display(cells[-4])["data"]
    assert "Checked out clf@1" in card["text/plain"] and "X_train" in card["text/html"]
    assert stdout(cells[-3]).split() == ["1.0", "(200,", "3)", "target"]
    assert stdout(cells[-1]).strip() == "0.1"


def test_status_shows_the_registry_and_production_versions(kernel: Kernel,
                                                          registry: Project) -> None:
    kernel.run(*COMMIT_TWICE)
    registry.set_alias("clf@1", "production")
    cells = kernel.run("s = %mci_status", "print(len(s.models))")
    status = only_display(cells[0])["data"]["text/plain"]
    assert str(kernel.root) in status
    row = next(line for line in status.splitlines() if line.strip().startswith("clf"))
    assert row.split()[:5] == ["clf", "2", "clf@2", "clf@1", "clf@2"]
    production = status[status.index("Production:"):].splitlines()
    assert production[2].split() == ["clf", "clf@1", "—", "baseline"]  # CI has not run
    awaiting = status[status.index("Awaiting CI (2 versions):"):].splitlines()
    assert awaiting[2].split() == ["clf", "2", "2:", "clf@1", "…", "clf@2"]
    assert stdout(cells[1]).strip() == "1"


def test_a_result_shows_once_and_again_when_asked(kernel: Kernel) -> None:
    cells = kernel.run(*COMMIT_TWICE, "%mci_diff clf@1 clf@2", "%reload_ext nbmci",
                       "v = %mci_commit clf", "v", "versions = %mci_log clf\nversions",
                       "import nbmci\nnbmci.diff('clf@1', 'clf@3')")
    only_display(cells[4])  # the diff's view, and no Out[] echo of the Diff under it
    only_display(cells[6])
    assert "clf@3" in only_display(cells[7])["data"]["text/html"]
    assert "Log of clf" in only_display(cells[8])["data"]["text/plain"]
    assert "clf@1 → clf@3" in only_display(cells[9])["data"]["text/plain"]


@pytest.mark.parametrize("magic", ["mci_commit", "mci_log", "mci_diff", "mci_checkout",
                                   "mci_status", "mci_ci", "mci_publish", "mci_rollback"])
def test_every_magic_has_help_with_usage(kernel: Kernel, magic: str) -> None:
    text = kernel.inspect(f"%{magic}")
    usage = text[text.index("::"):].split("\n")[2].strip()
    assert usage.startswith(f"%{magic}")
    assert "Example: %" + magic in text
    kernel.run(f"%{magic}?")


def test_tab_completes_model_names_and_refs(kernel: Kernel, registry: Project) -> None:
    kernel.run(*COMMIT_TWICE)
    registry.set_alias("clf@1", "production")
    assert kernel.complete("%mci_checkout cl") == ["clf"]
    assert kernel.complete("%mci_checkout clf@") == ["clf@2", "clf@1", "clf@latest",
                                                     "clf@production"]
    assert kernel.complete("%mci_diff clf@1 clf@l") == ["clf@latest"]
    assert kernel.complete("%mci_log ") == ["clf"]
    assert kernel.complete("%mci_commit clf --name c") == ["clf"]
    assert kernel.complete("%mci_ci clf@1 clf@") == ["clf@2", "clf@1", "clf@latest",
                                                    "clf@production"]
    assert "clf" not in kernel.complete("%mci_ci -j ")  # a number, not a ref
    assert kernel.complete("%mci_publish clf@l") == ["clf@latest"]
    assert kernel.complete("%mci_rollback c") == ["clf"]


def test_tab_creates_no_registry(kernel: Kernel) -> None:
    kernel.run("import shutil; shutil.rmtree('.nbmci')")
    kernel.complete("%mci_log ")
    kernel.complete("%mci_checkout clf@")
    assert not (kernel.root / ".nbmci").exists()


def test_views_show_what_users_wrote_as_text_never_markup(kernel: Kernel) -> None:
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    cells = kernel.run(TRAIN, f"%mci_commit clf -m {hostile!r} --params {hostile!r}=1",
                       "%mci_log clf")
    for bundle in mimebundles(cells):
        assert "<img" not in bundle["text/html"] and "<script" not in bundle["text/html"]
        assert "&lt;img src=x onerror=alert(1)&gt;" in bundle["text/html"]
    card = only_display(cells[1])
    assert "<script" not in kernel.widget_state(card)["value"]


def test_views_render_without_a_widget_manager(kernel: Kernel) -> None:
    bundles = mimebundles(kernel.run(*COMMIT_TWICE, "%mci_log clf", "%mci_status"))
    assert len(bundles) == 4
    for bundle in bundles:
        assert {WIDGET_VIEW, "text/html", "text/plain"} <= set(bundle)
        assert "<script" not in bundle["text/html"]


def test_record_shows_its_line_and_echoes_nothing(kernel: Kernel) -> None:
    cell, = kernel.run("import nbmci\nnbmci.record('accuracy', 0.91)")
    shown = only_display(cell)  # no Out[] echo of a returned dict under the cell
    assert shown["data"]["text/plain"] == "accuracy = 0.91"


def test_the_readme_table_lists_every_magic() -> None:
    import re

    from nbmci.jupyter.magics import MciMagics

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed = set(re.findall(r"^\| `%(mci_\w+)", readme, flags=re.MULTILINE))
    assert listed == set(MciMagics.magics["line"])
