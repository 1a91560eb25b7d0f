"""Bad input to every magic: one line, no traceback, a failed cell, nothing written (BI-01);
a pickled model is not restored without an explicit opt-in (SE-01)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

from nbmci.api import Project
from tests.jupyter.conftest import Kernel, stored_objects

pytestmark = pytest.mark.kernel

SETUP = """\
import numpy as np, pandas as pd
from sklearn.dummy import DummyClassifier
X = pd.DataFrame({"a": [1.0, 2.0, 3.0]}); y = pd.Series([0, 1, 0], name="y")
clf = DummyClassifier().fit(X, y)
rows = [1, 2, 3]
nul = "a\\x00b"
"""
NAME_RULE = "is not a valid model name"
REF_RULE = "is not a valid reference"
# RELIABILITY BI-01's names, each given to every magic that takes a name or a reference.
HOSTILE = ["../x", "..\\x", "/etc/passwd", "C:\\x", "%2e%2e%2f", "%252e%252e%252f",
           "a#/../../", "a?x=../", "a" * 65, "ｃｌｆ", "Clf"]
HOSTILE_USES = [("%mci_commit clf --name '{}'", NAME_RULE), ("%mci_log '{}'", NAME_RULE),
                ("%mci_checkout '{}@1'", REF_RULE), ("%mci_diff '{}@1' clf@2", REF_RULE),
                ("%mci_ci clf@1 '{}@1'", REF_RULE), ("%mci_publish '{}@1'", REF_RULE),
                ("%mci_rollback '{}'", NAME_RULE)]

BAD_INPUT = [
    ("%mci_commit clf --name {nul}", NAME_RULE),
    ("%mci_commit nope", "There is no variable `nope` in the notebook"),
    ("%mci_commit ../x", "'../x' is not a variable name"),
    ("%mci_commit", "the following arguments are required: MODEL"),
    ("%mci_commit clf --data nope", "There is no variable `nope`"),
    ("%mci_commit clf --data X,,y", "--data takes VAR[,VAR...]"),
    ("%mci_commit clf --data X,X", "--data names a variable twice"),
    ("%mci_commit clf --data ../x", "'../x' is not a variable name"),
    ("%mci_commit clf --data rows", "nbmci stores DataFrames, Series and numpy arrays"),
    ("%mci_commit clf --params C", "--params takes KEY=VALUE pairs"),
    ("%mci_commit clf --params =1", "--params takes KEY=VALUE pairs"),
    ("%mci_commit clf --params C=1 C=2", "--params gives 'C' twice"),
    ("%mci_commit clf --metrics accuracy=high", "must be a number"),
    ("%mci_commit clf --metrics accuracy=1e999", "must be finite"),
    ("%mci_commit clf --bogus", "unrecognized arguments: --bogus"),
    ('%mci_commit clf -m "unclosed', "No closing quotation"),
    ("%mci_log nope", "Model 'nope' not found"),
    ("%mci_log -n 0", "-n/--limit must be at least 1"),
    ("%mci_log -n many", "invalid int value: 'many'"),
    ("%mci_diff clf@1", "the following arguments are required: B"),
    ("%mci_diff clf@1 clf@2", "Model 'clf' not found"),
    ("%mci_checkout nope@1", "Model 'nope' not found"),
    ("%mci_checkout clf@0", "version numbers start at 1"),
    ("%mci_checkout clf@1 --as ../x", "--as takes a variable name"),
    ("%mci_status now", "unrecognized arguments: now"),
    ("%mci_ci", "No evaluation notebooks are configured. Add notebooks = "),
    ("%mci_ci -j 0", "-j/--jobs must be between 1 and 64, not 0."),
    ("%mci_ci --shard 1/2", "unrecognized arguments: --shard"),
    ("%mci_publish", "the following arguments are required: REF"),
    ("%mci_publish nope@1", "Model 'nope' not found"),
    ("%mci_publish clf@1 --force", "Model 'clf' not found"),
    ("%mci_rollback", "the following arguments are required: NAME"),
    ("%mci_rollback nope", "Model 'nope' not found"),
]


def fails_in_one_line(kernel: Kernel, source: str) -> str:
    """Run ``source``; check it failed with a UsageError shown as one line; return that line."""
    with pytest.raises(CellExecutionError) as info:
        kernel.run(source)
    assert info.value.ename == "UsageError"
    cell: NotebookNode = kernel.client.nb.cells[-1]
    # stderr only, no traceback; the kernel may send the line and its newline separately
    assert {(o["output_type"], o.get("name")) for o in cell["outputs"]} == {("stream", "stderr")}
    shown = "".join(o["text"] for o in cell["outputs"])
    assert shown.count("\n") == 1 and shown.startswith("UsageError: ")
    assert info.value.evalue in shown
    return str(info.value.evalue)


def writes_nothing(root: Path, registry: Project) -> None:
    assert registry.models() == []
    assert stored_objects(root) == []
    assert [p.name for p in root.parent.iterdir()] == [root.name]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_by_every_magic(kernel: Kernel, registry: Project,
                                                  name: str) -> None:
    kernel.run(SETUP)
    for use, message in HOSTILE_USES:
        assert message in fails_in_one_line(kernel, use.format(name))
    writes_nothing(kernel.root, registry)


@pytest.mark.parametrize(("source", "message"), BAD_INPUT, ids=[s for s, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_writes_nothing(kernel: Kernel, registry: Project,
                                                  source: str, message: str) -> None:
    kernel.run(SETUP)
    assert message in fails_in_one_line(kernel, source)
    writes_nothing(kernel.root, registry)


@pytest.mark.parametrize(("commit", "source", "message"), [
    ("%mci_commit clf --data X,y", "%mci_diff clf@1 clf@9",
     "Version 'clf@9' not found: the latest is clf@1."),
    ("%mci_commit clf --data X,y", "%mci_checkout clf@staging",
     "Version 'clf@staging' not found"),
    ("%mci_commit clf --data X,y", "%mci_log clf --metric f1",
     "No version here records metric 'f1'"),
    ("%mci_commit clf --name 3d-model", "%mci_checkout 3d-model",
     "Model '3d-model' cannot be a variable name: give one with --as VAR."),
])
def test_bad_input_about_a_known_model_changes_nothing(kernel: Kernel, registry: Project,
                                                       commit: str, source: str,
                                                       message: str) -> None:
    kernel.run(SETUP, commit)
    before = sorted(stored_objects(kernel.root))
    assert message in fails_in_one_line(kernel, source)
    model, = registry.models()
    assert model.versions == 1
    assert sorted(stored_objects(kernel.root)) == before


def test_data_that_cannot_be_a_variable_is_not_half_restored(kernel: Kernel,
                                                             registry: Project) -> None:
    kernel.run(SETUP, "import nbmci\nnbmci.commit(clf, data={'X': X, 'train-set': X})",
               "del clf, X")
    assert "use frames = nbmci.load_data('clf@1')" in fails_in_one_line(
        kernel, "%mci_checkout clf@1 --data")
    cell, = kernel.run("print('clf' in globals(), 'X' in globals())")
    assert cell["outputs"][0]["text"].split() == ["False", "False"]


EVIL = """\
import pathlib
class Evil:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path({marker!r}),))
evil = Evil()
"""


def test_pickled_model_is_refused_without_trust(kernel: Kernel, registry: Project,
                                                tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    kernel.run(EVIL.format(marker=str(marker)), "%mci_commit evil", "del evil")
    assert not registry.show("evil@1").model.trusted

    message = fails_in_one_line(kernel, "%mci_checkout evil@1")
    assert "loading it can run arbitrary code" in message
    assert "%mci_checkout evil@1 --trust" in message
    assert not marker.exists()
    cell, = kernel.run("print('evil' in globals())")
    assert cell["outputs"][0]["text"].strip() == "False"

    assert [e for e in registry.registry.events("evil") if e["kind"] == "model.trusted"] == []
    kernel.run("%mci_checkout evil@1 --trust")  # the explicit opt-in, and only it, runs code
    assert marker.exists()
    trusted = [e for e in registry.registry.events("evil") if e["kind"] == "model.trusted"]
    assert [e["version"] for e in trusted] == [1]


def test_commit_trust_vouches_for_a_pickle_for_serving(kernel: Kernel,
                                                       registry: Project) -> None:
    kernel.run("class Plain:\n    pass\nplain = Plain()", "%mci_commit plain --trust",
               "%mci_commit plain")
    vouched, plain = registry.show("plain@1"), registry.show("plain@2")
    assert not vouched.model.trusted and vouched.model.vouched_by == vouched.author
    assert not plain.model.vouched
