"""CI from a notebook: %mci_ci with real evaluation notebooks run by papermill in kernels of their
own, its progress and result views, the CI columns of %mci_log, what %mci_status says awaits CI,
and %mci_publish / %mci_rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

from nbmci.api import Project
from nbmci.jupyter.markup import BADGES
from tests.ci.conftest import RECORD_ACCURACY, notebook
from tests.jupyter.conftest import WIDGET_VIEW, Kernel
from tests.jupyter.test_bad_input import fails_in_one_line
from tests.jupyter.test_magics import children, only_display, stdout

pytestmark = pytest.mark.kernel

# Reports the accuracy committed with the version as the one CI measured; refuses below 0.5.
EVALUATE = notebook(
    "import nbmci\nacc = nbmci.show(model_ref).metrics['acc']",
    "if acc < 0.5:\n    raise ValueError('evaluation data rejected')",
    "nbmci.record('accuracy', acc)")
FIT = """\
import nbmci
import numpy as np
from sklearn.linear_model import LogisticRegression
X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
def fit_and_commit(*accuracies):
    # each version a model of its own, as real versions are
    for acc in accuracies:
        nbmci.commit(LogisticRegression(C=acc).fit(X, y), name="clf", metrics={"acc": acc},
                     example=np.array(X))
"""


def configure_ci(root: Path, evaluate: str = EVALUATE, gates: str = 'accuracy = ">= 0.9"') -> None:
    (root / "notebooks").mkdir(exist_ok=True)
    (root / "notebooks" / "evaluate.ipynb").write_text(evaluate)
    (root / "pyproject.toml").write_text(
        '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\ntimeout = 60\n\n'
        f"[tool.nbmci.gates]\n{gates}\n")


def rows(text: str) -> dict[str, list[str]]:
    """The words of each table row of a text view, by the ref that starts the row."""
    return {words[0]: words for words in (line.split() for line in text.splitlines())
            if words and "@" in words[0]}


def badge(status: str) -> str:
    return f'background:{BADGES[status]}">{status}</span>'


def new_widgets(kernel: Kernel, before: set[str], model: str) -> list[dict[str, Any]]:
    """The states of the ``model`` widgets the kernel created since ``before``."""
    return [state for key, state in kernel.client.widget_state.items()
            if key not in before and state.get("_model_name") == model]


def test_ci_evaluates_each_version_without_a_result(kernel: Kernel, registry: Project) -> None:
    configure_ci(kernel.root)
    before = set(kernel.client.widget_state)
    cells = kernel.run(FIT, "fit_and_commit(0.95, 0.8, 0.2)", "r = %mci_ci -j 2",
                       "print(r.ok, [(o.ref, o.status) for o in r.outcomes])", "r",
                       "again = %mci_ci", "print(again.ok, again.outcomes)")
    shown = only_display(cells[2])  # the table, in the place of the progress bar
    html, text = shown["data"]["text/html"], shown["data"]["text/plain"]
    assert {WIDGET_VIEW, "text/html", "text/plain"} <= set(shown["data"])
    assert text.splitlines()[0].startswith("nbmci ci · 1 of 3 versions passed in ")
    found = rows(text)
    assert found["clf@1"][:3] == ["clf@1", "passed", "accuracy=0.95"]
    assert " ".join(found["clf@1"][3:-3]) == "✓ accuracy >= 0.9: 0.95 >= 0.9"
    assert found["clf@1"][-2:] == ["s", "no"]  # "1.23 s", not from the cache
    assert found["clf@2"][:3] == ["clf@2", "failed", "accuracy=0.8"]
    assert " ".join(found["clf@2"][3:-3]) == "✗ accuracy >= 0.9: 0.8 is not >= 0.9"
    assert found["clf@3"][:2] == ["clf@3", "error"]
    assert "notebooks/evaluate.ipynb: cell 2 raised ValueError: evaluation data rejected" in html
    for status in ("passed", "failed", "error"):
        assert badge(status) in html
    [bar] = new_widgets(kernel, before, "IntProgressModel")
    assert bar["value"] == bar["max"] == 3 and bar["bar_style"] == "danger"  # clf@3's error
    [label] = new_widgets(kernel, before, "LabelModel")
    assert label["value"] == "3 of 3 notebook runs done"
    assert stdout(cells[3]).strip() == (
        "False [('clf@1', 'passed'), ('clf@2', 'failed'), ('clf@3', 'error')]")
    assert only_display(cells[4])["data"]["text/plain"] == text  # shown again when asked
    assert only_display(cells[5])["data"]["text/plain"].startswith(
        "nbmci ci · nothing to evaluate")
    assert stdout(cells[6]).strip() == "True []"

    ci = {v.ref: v.ci for v in registry.versions("clf")}
    assert {ref: c.status for ref, c in ci.items() if c} == {
        "clf@1": "passed", "clf@2": "failed", "clf@3": "error"}
    assert ci["clf@1"].metrics == {"accuracy": 0.95}
    assert registry.store.has(ci["clf@1"].notebooks[0]["output_digest"])

    log = only_display(kernel.run("%mci_log clf")[0])
    header, *lines = [line.split() for line in log["data"]["text/plain"].splitlines()
                      if line.strip().startswith(("ref", "clf@"))]
    assert header[-3:] == ["CI", "acc", "ci:accuracy"]
    assert [line[0] for line in lines] == ["clf@3", "clf@2", "clf@1"]
    assert [line[line.index("LogisticRegression") + 1:] for line in lines] == [
        ["error", "0.2"], ["failed", "0.8", "0.8"], ["passed", "0.95", "0.95"]]
    assert badge("error") in log["data"]["text/html"]
    _, dropdown, _ = children(kernel, kernel.widget_state(log))
    assert dropdown["_options_labels"] == ["acc", "ci:accuracy"]


def test_status_publish_and_rollback_follow_ci(kernel: Kernel, registry: Project) -> None:
    configure_ci(kernel.root)
    kernel.run(FIT, "fit_and_commit(0.95, 0.97)", "%mci_ci clf@1")
    assert fails_in_one_line(kernel, "%mci_rollback clf") == (  # the hint names magics
        "'clf' has no earlier production version to roll back to. See %mci_log clf; make a "
        "version production with %mci_publish clf@VERSION.")
    cells = kernel.run("%mci_ci clf@1", "%mci_status", "p = %mci_publish clf@1",
                       "print(p.ref, p.forced)", "%mci_status")
    again = rows(only_display(cells[0])["data"]["text/plain"])
    assert again["clf@1"][:2] == ["clf@1", "passed"] and again["clf@1"][-1] == "yes"  # cached
    before, after = (only_display(cells[i])["data"]["text/plain"] for i in (1, 4))
    awaiting = before[before.index("Awaiting CI (1 version):"):].splitlines()
    assert awaiting[2].split() == ["clf", "1", "clf@2"]  # model, how many, which
    assert "Nothing is in production yet" in before
    assert only_display(cells[2])["data"]["text/plain"] == "clf@production → clf@1"
    assert stdout(cells[3]).strip() == "clf@1 False"
    production = after[after.index("Production:"):].splitlines()
    assert production[2].split() == ["clf", "clf@1", "passed", "accuracy=0.95"]

    message = fails_in_one_line(kernel, "%mci_publish clf@2")
    assert message == ("clf@2 has not passed CI (CI: not run); production was not moved. "
                       "Run %mci_ci clf@2, or override with %mci_publish clf@2 --force "
                       "(the override is recorded).")
    assert registry.show("clf@production").version == 1
    forced, back = kernel.run("%mci_publish clf@2 --force", "%mci_rollback clf")
    assert only_display(forced)["data"]["text/plain"] == (
        "clf@production → clf@2 (was clf@1) · forced: it had not passed CI; the override is "
        "recorded")
    assert only_display(back)["data"]["text/plain"] == (
        "clf@production → clf@1 (rolled back from clf@2)")
    assert registry.show("clf@production").version == 1


SLOW = """\
import pathlib, time
pathlib.Path({root!r}, model_ref.replace("@", "-") + ".started").touch()
time.sleep(2)"""
INTERRUPT_ONCE_RUNNING = """\
import os, pathlib, signal, threading, time
import nbmci.ci.runner
assert os.getpgid(0) == os.getpid()  # the kernel leads its own process group

def interrupt_once_running(started=pathlib.Path({root!r}, "clf-1.started")):
    while not started.exists():
        time.sleep(0.05)
    os.killpg(os.getpgid(0), signal.SIGINT)  # what Kernel > Interrupt does

threading.Thread(target=interrupt_once_running, daemon=True).start()
"""


def test_interrupt_stops_the_run_and_records_nothing(kernel: Kernel, registry: Project) -> None:
    root = str(kernel.root)
    configure_ci(kernel.root, notebook(SLOW.format(root=root), RECORD_ACCURACY), gates="")
    kernel.run(FIT, "fit_and_commit(0.95, 0.97)", INTERRUPT_ONCE_RUNNING.format(root=root))
    before = set(kernel.client.widget_state)
    with pytest.raises(CellExecutionError) as info:
        kernel.run("%mci_ci -j 1")
    assert info.value.ename == "KeyboardInterrupt"
    assert (kernel.root / "clf-1.started").exists()  # ran to its end,
    assert not (kernel.root / "clf-2.started").exists()  # and the next one never began
    assert [v.ci for v in registry.versions("clf")] == [None, None]
    [bar] = new_widgets(kernel, before, "IntProgressModel")
    assert bar["bar_style"] == "danger" and bar["description"] == "failed"
    [label] = new_widgets(kernel, before, "LabelModel")
    assert label["value"].startswith("interrupted: waiting for the running notebooks")
    cell: NotebookNode
    cell, = kernel.run("print('still here')")
    assert stdout(cell).strip() == "still here"


def test_bad_ci_input_is_one_line_and_records_nothing(kernel: Kernel, registry: Project) -> None:
    configure_ci(kernel.root)
    kernel.run(FIT, "fit_and_commit(0.95)")
    before = set(kernel.client.widget_state)
    for source, message in [
        ("%mci_ci nope@1", "Model 'nope' not found"),
        ("%mci_ci clf@1 clf@9",
         "Version 'clf@9' not found: the latest is clf@1. List versions with %mci_log clf."),
        ("%mci_ci 'a b@1'", "is not a valid reference"),
        ("%mci_ci clf@1 -j 0", "-j/--jobs must be between 1 and 64, not 0."),
        ("%mci_ci -j two", "invalid int value: 'two'"),
    ]:
        assert message in fails_in_one_line(kernel, source)
    (kernel.root / "pyproject.toml").write_text(
        '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\n'
        '[tool.nbmci.gates]\naccuracy = "about 0.9"\n')
    assert "Gate 'accuracy' has an expression nbmci cannot read" in fails_in_one_line(
        kernel, "%mci_ci")
    (kernel.root / "pyproject.toml").write_text(
        '[tool.nbmci.ci]\nnotebooks = ["notebooks/gone.ipynb"]\n')
    assert "Evaluation notebook 'notebooks/gone.ipynb' does not exist" in fails_in_one_line(
        kernel, "%mci_ci")
    assert registry.show("clf@1").ci is None
    assert new_widgets(kernel, before, "IntProgressModel") == []
