"""Servability from a real notebook kernel: notebook-defined code is refused with a fix, code
in a module beside the notebook travels with the version, and the card shows the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from nbmci.api import Project
from tests.jupyter.conftest import Kernel, mimebundles
from tests.jupyter.test_magics import TRAIN

pytestmark = pytest.mark.kernel

IN_NOTEBOOK = """\
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
def double(X):
    return X * 2
piped = make_pipeline(FunctionTransformer(double), LogisticRegression()).fit(X_train, y_train)
"""
BESIDE = """\
def double(X):
    return X * 2
"""
WAIT = "import nbmci, time\nnbmci.project().checks.wait(v)\ntime.sleep(0.3)"


def stderr(cells: list[Any]) -> str:
    return "".join(o["text"] for c in cells for o in c["outputs"] if o.get("name") == "stderr")


def test_a_function_defined_in_the_notebook_is_refused_with_the_fix(
        kernel: Kernel, registry: Project) -> None:
    cells = kernel.run(TRAIN, IN_NOTEBOOK, "v = %mci_commit piped --data X_train,y_train")
    warned = stderr(cells)
    assert "piped@1 is not servable: it needs `double`, defined in the notebook itself" in warned
    assert "Move `double` into a module beside the notebook" in warned
    card = mimebundles(cells)[-1]["text/plain"]
    assert "✗ no: it needs `double`" in card
    assert registry.show("piped@1").servability.status == "not servable"
    [cell] = kernel.run("try:\n    %mci_publish piped@1 --force\n"
                        "except Exception as exc:\n    print(type(exc).__name__, exc)")
    assert "UsageError piped@1 is not servable" in cell["outputs"][0]["text"]
    assert registry.show("piped").aliases == []


def test_code_beside_the_notebook_is_stored_and_the_card_shows_the_verdict(
        kernel: Kernel, registry: Project) -> None:
    (kernel.root / "features.py").write_text(BESIDE, encoding="utf-8")
    cells = kernel.run(TRAIN, IN_NOTEBOOK.replace("def double(X):\n    return X * 2\n",
                                                  "from features import double\n"),
                       "v = %mci_commit piped --data X_train,y_train")
    assert "not servable" not in stderr(cells)
    card_id = mimebundles(cells)[-1]["application/vnd.jupyter.widget-view+json"]["model_id"]
    kernel.run(WAIT)  # the card's redraw arrives while this cell runs
    assert "✓ yes: loads alone and reproduces its outputs" in \
        kernel.client.widget_state[card_id]["value"]
    version = registry.show("piped@1")
    assert version.servability.status == "servable"
    assert version.signature["code"]["modules"] == ["features"]
    # the stored copy loads even once the file beside the notebook is gone
    (kernel.root / "features.py").unlink()
    assert registry.load("piped@1").steps[0][1].func(3) == 6


def test_a_model_committed_without_example_rows_is_not_servable(
        kernel: Kernel, registry: Project) -> None:
    cells = kernel.run(TRAIN, "%mci_commit clf")
    assert "clf@1 is not servable: it was committed without example rows" in stderr(cells)
    kernel.run("v = %mci_commit clf --example X_train", WAIT)
    assert registry.show("clf@2").servability.status == "servable"
