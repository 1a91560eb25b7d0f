"""CI runs any notebook a user brings (issue 15): notebooks without kernel metadata, the kernel
setting, errors reported as errors, and CI notebooks and gates per model."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbmci.api import Project
from nbmci.ci.config import load_ci_config
from nbmci.ci.runner import Runner
from nbmci.config import load_settings
from nbmci.errors import ConfigError
from tests.ci.conftest import PARAMETERS, RECORD_ACCURACY, notebook
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.kernel

RECORD_KERNEL = """import os, sys
nbmci.record("python", sys.executable)
nbmci.record("kernel_env", os.environ.get("NBMCI_TEST_KERNEL", "none"))"""


def records(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, list[Any]]:
    """``nbmci ci --json ARGS`` (it must pass): each version's notebooks' records."""
    code, out, err = run_cli(capsys, "ci", "--json", *args)
    assert code == 0, out + err
    return {v["ref"]: [{k: r["value"] for k, r in n["records"].items()} for n in v["notebooks"]]
            for v in json.loads(out)["versions"]}


def bare(*cells: str, metadata: dict[str, Any] | None = None) -> str:
    """A notebook as ``nbformat.v4.new_notebook()`` writes it: no kernelspec, no
    language_info (unless ``metadata`` adds some)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata.update(metadata or {})
    assert "kernelspec" not in nb.metadata or metadata
    return nbformat.writes(nb)


# what `jupytext --to ipynb evaluate.py` writes for a percent script with no header
JUPYTEXT = {"jupytext": {"cell_metadata_filter": "-all", "main_language": "python",
                         "notebook_metadata_filter": "-all"}}
NOT_INSTALLED = {"kernelspec": {"name": "conda-env-gone-py", "display_name": "Gone",
                                "language": "python"}}


def test_notebooks_without_kernel_metadata_run_on_this_python(
        ci_project: Any, commit_versions: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cells = (RECORD_ACCURACY, RECORD_KERNEL)
    project = ci_project({"bare.ipynb": bare(*cells), "jupytext.ipynb": bare(*cells,
                          metadata=JUPYTEXT), "gone.ipynb": bare(*cells, metadata=NOT_INSTALLED)},
                         gates={"accuracy": ">= 0.9"})
    commit_versions(project, 0.95)
    found = records(capsys)
    ci = project.show("clf@1").ci
    assert ci.status == "passed" and [n["status"] for n in ci.notebooks] == ["passed"] * 3
    assert len(found["clf@1"]) == 3
    for recorded in found["clf@1"]:
        assert recorded["python"] == sys.executable and recorded["kernel_env"] == "none"


@pytest.fixture
def other_kernel(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """A second installed kernel, ``nbmci-other``: this Python with a marker in its env."""
    share = tmp_path_factory.mktemp("jupyter")
    spec = share / "kernels" / "nbmci-other"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Other", "language": "python", "env": {"NBMCI_TEST_KERNEL": "other"}}))
    monkeypatch.setenv("JUPYTER_PATH", str(share))
    return "nbmci-other"


def test_kernel_from_config_and_from_the_flag(ci_project: Any, commit_versions: Any,
                                              other_kernel: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    project = ci_project({"evaluate.ipynb": bare(RECORD_ACCURACY, RECORD_KERNEL)},
                         extra=f'kernel = "{other_kernel}"')
    commit_versions(project, 0.95)
    [recorded] = records(capsys)["clf@1"]
    assert recorded["kernel_env"] == "other"
    # --kernel names another for this run: back to plain python3
    [recorded] = records(capsys, "--kernel", "python3", "clf@1")["clf@1"]
    assert recorded["kernel_env"] == "none"


def test_unknown_kernel_is_a_clear_error_naming_the_installed_ones(
        ci_project: Any, commit_versions: Any, other_kernel: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = ci_project({"evaluate.ipynb": bare(RECORD_ACCURACY)})
    commit_versions(project, 0.95)
    code, _, err = run_cli(capsys, "ci", "--kernel", "julia-9")
    assert code == 2 and "Traceback" not in err and err.strip().count("\n") == 0
    assert "'julia-9'" in err and "--kernel" in err
    assert "python3" in err and other_kernel in err
    (project.settings.root / "pyproject.toml").write_text(
        '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\nkernel = "julia-9"\n')
    code, _, err = run_cli(capsys, "ci")
    assert code == 2 and "'julia-9'" in err and "[tool.nbmci.ci]" in err and "python3" in err
    assert project.show("clf@1").ci is None  # nothing ran


def test_notebook_error_is_reported_as_that_error_everywhere(
        ci_project: Any, commit_versions: Any, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    project = ci_project({"evaluate.ipynb": notebook(
        "import nbmci", "raise ValueError('bad eval data')", RECORD_ACCURACY)},
        gates={"accuracy": ">= 0.90"})
    commit_versions(project, 0.95)
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    code, out, _ = run_cli(capsys, "ci", "--junit", str(junit), "--summary", str(summary))
    assert code == 1
    expected = "cell 2 raised ValueError: bad eval data"
    markdown = summary.read_text()
    xml = junit.read_text()
    for text in (out, markdown, xml):
        assert expected in text, text
        assert "did not record" not in text, text
    assert "not evaluated" in out and "not evaluated" in markdown
    cases = {(c.get("classname"), c.get("name")): c
             for c in ET.parse(junit).getroot().iter("testcase")}
    case = cases[("clf@1", "notebooks/evaluate.ipynb")]
    assert case.find("failure") is None
    error = case.find("error")
    assert error is not None and error.get("type") == "ValueError"
    assert "accuracy >= 0.90: not evaluated" in (error.text or "")
    ci = project.show("clf@1").ci
    assert ci.status == "error"
    [gate] = ci.gates
    assert gate["status"] == "skipped" and gate["detail"].startswith("not evaluated")


def test_each_model_runs_its_own_notebooks_and_gates(
        ci_project: Any, commit_versions: Any, fitted: Any, iris: Any,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    regression = notebook(
        "import nbmci\nversion = nbmci.show(model_ref)\n"
        "nbmci.record('rmse', version.metrics['train_rmse'] * scale)\n"
        "nbmci.record('target', target)",
        parameters='model_ref = "unset"\nscale = 0.0\ntarget = "unset"')
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY),
                          "regression.ipynb": regression},
                         gates={"accuracy": ">= 0.9"})
    (project.settings.root / "pyproject.toml").write_text(
        '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\ntimeout = 120\n'
        '[tool.nbmci.gates]\naccuracy = ">= 0.9"\n'
        '[tool.nbmci.ci.models.reg]\n'
        'notebooks = [{path = "notebooks/regression.ipynb", parameters = {scale = 1.0}}]\n'
        'parameters = {target = "price", scale = 99.0}\n'
        '[tool.nbmci.ci.models.reg.gates]\nrmse = "<= 0.5"\n')
    project = Project(load_settings(project.settings.root))
    commit_versions(project, 0.95, 0.5)
    X, _ = iris
    for rmse in (0.3, 0.8):
        project.commit(fitted, None, name="reg", metrics={"train_rmse": rmse},
                       example=X.head())
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    code, out, _ = run_cli(capsys, "ci", "--junit", str(junit), "--summary", str(summary),
                           "--json")
    assert code == 1
    versions = {v["ref"]: v for v in json.loads(out)["versions"]}
    statuses = {ref: project.show(ref).ci.status
                for ref in ("clf@1", "clf@2", "reg@1", "reg@2")}
    assert statuses == {"clf@1": "passed", "clf@2": "failed", "reg@1": "passed",
                        "reg@2": "failed"}
    reg = project.show("reg@1").ci
    assert [g["metric"] for g in reg.gates] == ["rmse"]
    assert reg.metrics["rmse"] == pytest.approx(0.3)
    [executed] = versions["reg@1"]["notebooks"]
    assert executed["notebook"] == "notebooks/regression.ipynb"
    # the model's parameters reach its notebook; the notebook entry's win over them
    assert executed["records"]["target"]["value"] == "price"
    assert executed["records"]["rmse"]["value"] == pytest.approx(0.3)
    clf = project.show("clf@2").ci
    assert [g["metric"] for g in clf.gates] == ["accuracy"]
    assert [n["notebook"] for n in clf.notebooks] == ["notebooks/evaluate.ipynb"]
    cases = {(c.get("classname"), c.get("name")) for c in ET.parse(junit).getroot().iter(
        "testcase")}
    assert ("reg@2", "notebooks/regression.ipynb") in cases
    assert ("reg@2", "notebooks/evaluate.ipynb") not in cases
    assert "0.8 is not <= 0.5" in summary.read_text()


@pytest.mark.parametrize(("table", "message"), [
    ('[tool.nbmci.ci.models.reg]\nnotbooks = ["notebooks/evaluate.ipynb"]\n',
     "Unknown key(s) ['notbooks'] in [tool.nbmci.ci.models.reg]"),
    ('[tool.nbmci.ci.models.reg]\nkernel = 3\n', "ci.models.reg.kernel"),
    ('[tool.nbmci.ci.models.reg]\ntimeout = "long"\n', "ci.models.reg.timeout"),
    ('[tool.nbmci.ci.models.reg]\ngates = ["rmse <= 1"]\n', "ci.models.reg.gates"),
    ('[tool.nbmci.ci.models.reg]\nparameters = [1]\n', "ci.models.reg"),
    ('[tool.nbmci.ci.models.reg]\nnotebooks = "notebooks/evaluate.ipynb"\n',
     "ci.models.reg.notebooks"),
    ('[tool.nbmci.ci.models.reg]\nnotebooks = ["notebooks/nope.ipynb"]\n', "does not exist"),
    ('[tool.nbmci.ci.models.reg.gates]\nrmse = "about 1"\n', "cannot read"),
    ('[tool.nbmci.ci.models."Bad Name"]\nkernel = "python3"\n', "'Bad Name'"),
    ('[tool.nbmci.ci]\nmodels = 3\n', "ci.models"),
    ('[tool.nbmci.ci]\nparameters = 3\n', "[tool.nbmci.ci]"),
])
def test_per_model_config_is_validated(ci_project: Any, table: str, message: str) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)})
    root = project.settings.root
    base = '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\n'
    text = base + table.replace("[tool.nbmci.ci]\n", "") if table.startswith(
        "[tool.nbmci.ci]\n") else base + table
    (root / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_ci_config(load_settings(root))
    assert message in str(info.value)


def test_a_model_without_notebooks_anywhere_is_a_config_error(
        ci_project: Any, commit_versions: Any) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)})
    (project.settings.root / "pyproject.toml").write_text(
        '[tool.nbmci.ci.models.clf]\nnotebooks = ["notebooks/evaluate.ipynb"]\n')
    project = Project(load_settings(project.settings.root))
    commit_versions(project, 0.95)
    commit_versions(project, 0.95, name="other")
    config = load_ci_config(project.settings)
    runner = Runner(project, config)
    assert [j.ref for j in runner.plan([("clf", 1)])] == ["clf@1"]
    with pytest.raises(ConfigError, match="No evaluation notebooks are configured for model "
                                          "'other'"):
        runner.plan([("other", 1)])
