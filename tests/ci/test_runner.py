"""nbmci ci with real papermill runs: pass, fail, errors, timeouts, cache, jobs and shards."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from nbmci.api import Project
from nbmci.ci.config import load_ci_config
from nbmci.ci.runner import Runner
from nbmci.config import load_settings
from tests.ci.conftest import RECORD_ACCURACY, notebook
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.kernel


def test_pass_and_failing_gate_with_junit_and_summary(
        ci_project: Any, commit_versions: Any, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)},
                         gates={"accuracy": ">= 0.90"})
    commit_versions(project, 0.95, 0.80)
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    code, out, _ = run_cli(capsys, "ci", "--junit", str(junit), "--summary", str(summary))
    assert code == 1
    assert "clf@1" in out and "clf@2" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "1"
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert cases[("clf@1", "notebooks/evaluate.ipynb")].find("failure") is None
    assert cases[("clf@1", "servable")].find("failure") is None
    failure = cases[("clf@2", "notebooks/evaluate.ipynb")].find("failure")
    assert failure is not None and "0.8 is not >= 0.9" in failure.get("message", "")
    assert "1/2 versions passed" in summary.read_text()
    v1, v2 = project.show("clf@1"), project.show("clf@2")
    assert v1.ci.status == "passed" and v1.ci.metrics == {"accuracy": 0.95}
    assert v2.ci.status == "failed"
    [executed] = v1.ci.notebooks
    assert project.store.has(executed["output_digest"])
    log = json.loads(run_cli(capsys, "log", "clf", "--json")[1])
    assert log[1]["ci"]["status"] == "passed" and log[1]["ci"]["metrics"] == {"accuracy": 0.95}
    # nothing left without CI: a second run evaluates nothing and passes
    assert run_cli(capsys, "ci")[0] == 0


def test_servability_is_its_own_check_in_junit_and_markdown(
        ci_project: Any, commit_versions: Any, fitted: Any,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)},
                         gates={"accuracy": ">= 0.90"})
    commit_versions(project, 0.95)
    project.commit(fitted, None, name="clf", metrics={"acc": 0.99})  # no example rows
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    code, out, _ = run_cli(capsys, "ci", "--junit", str(junit), "--summary", str(summary))
    assert code == 1 and "not servable" in out
    cases = {(c.get("classname"), c.get("name")): c
             for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases[("clf@1", "servable")].find("failure") is None
    failure = cases[("clf@2", "servable")].find("failure")
    assert failure is not None and failure.get("type") == "NotServable"
    assert "committed without example rows" in failure.get("message", "")
    assert cases[("clf@2", "notebooks/evaluate.ipynb")].find("failure") is None  # its gates passed
    text = summary.read_text()
    assert "| servable |" in text and "✅ yes" in text
    assert "❌ no: it was committed without example rows" in text
    assert project.show("clf@2").ci.status == "failed"
    assert project.show("clf@1").servability.where == "ci"


def test_notebook_exception_is_an_error_naming_the_cell(
        ci_project: Any, commit_versions: Any, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    project = ci_project({"evaluate.ipynb": notebook(
        RECORD_ACCURACY, "raise ValueError('bad eval data')")})
    commit_versions(project, 0.95)
    junit = tmp_path / "junit.xml"
    code, _out, _ = run_cli(capsys, "ci", "--junit", str(junit))
    assert code == 1
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "ValueError"
    assert "cell 2 raised ValueError: bad eval data" in error.get("message", "")
    ci = project.show("clf@1").ci
    assert ci.status == "error" and ci.notebooks[0]["error"]["cell_index"] == 2
    with pytest.raises(Exception, match="has not passed CI"):
        project.publish("clf@1")


def test_missing_parameters_cell_is_an_error(ci_project: Any, commit_versions: Any) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY, parameters=None)})
    commit_versions(project, 0.95)
    report = Runner(project, load_ci_config(project.settings)).run()
    [outcome] = report.outcomes
    assert outcome.status == "error"
    assert "no cell tagged 'parameters'" in outcome.notebooks[0].error["reason"]


def test_cr08_timeout_and_killed_kernel_are_errors_never_passes(
        ci_project: Any, commit_versions: Any) -> None:
    slow = notebook("import time\ntime.sleep(60)", RECORD_ACCURACY)
    killed = notebook("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", RECORD_ACCURACY)
    project = ci_project({"slow.ipynb": slow, "killed.ipynb": killed}, timeout=4,
                         gates={"accuracy": ">= 0.5"})
    commit_versions(project, 0.95)
    report = Runner(project, load_ci_config(project.settings)).run()
    [outcome] = report.outcomes
    assert outcome.status == "error" and not report.ok
    slow_result, killed_result = outcome.notebooks
    assert "timed out after 4 s" in slow_result.error["reason"]
    assert "died" in killed_result.error["reason"] or "Dead" in killed_result.error["reason"]
    assert outcome.duration > 0
    with pytest.raises(Exception, match="has not passed CI"):
        project.publish("clf@1")
    import nbformat  # the stored notebook keeps what ran, plus a failure marker

    for result in (slow_result, killed_result):
        stored = nbformat.reads(project.store.get(result.output_digest).decode(), as_version=4)
        assert "nbmci-error" in stored.cells[-1].metadata.get("tags", [])
        assert result.error["reason"] in stored.cells[-1].source


def test_relative_gate_against_production_and_cache_hits(
        ci_project: Any, commit_versions: Any) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)},
                         gates={"accuracy": ">= production - 0.01"})
    commit_versions(project, 0.90)
    runner = Runner(project, load_ci_config(project.settings))
    [first] = runner.run().outcomes
    assert first.status == "passed" and first.gates[0].status == "skipped"
    project.publish("clf@1")
    commit_versions(project, 0.95, 0.85)
    events: list[tuple[str, str]] = []
    runner = Runner(project, load_ci_config(project.settings),
                    listener=lambda event, job, _: events.append((event, job.ref)))
    outcomes = {o.ref: o for o in runner.run().outcomes}
    assert outcomes["clf@2"].status == "passed" and outcomes["clf@3"].status == "failed"
    assert outcomes["clf@2"].baseline == "clf@1"
    assert outcomes["clf@3"].gates[0].threshold == pytest.approx(0.89)
    # the production baseline was evaluated before: answered from the cache, not re-run
    assert ("cached", "clf@1") in events and ("started", "clf@1") not in events


def test_identical_evaluation_is_not_run_twice(ci_project: Any, fitted: Any,
                                               iris: Any) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)})
    project.commit(fitted, None, name="clf", metrics={"acc": 0.9}, example=iris[0].head())
    Runner(project, load_ci_config(project.settings)).run()
    started: list[str] = []
    runner = Runner(project, load_ci_config(project.settings),
                    listener=lambda event, job, _: started.append(event))
    [again] = runner.run(["clf@1"]).outcomes
    assert started == ["cached"] and again.notebooks[0].cached and again.status == "passed"


def test_jobs_and_shards(ci_project: Any, commit_versions: Any) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)},
                         gates={"accuracy": ">= 0.5"})
    refs = commit_versions(project, 0.6, 0.7, 0.8, 0.9, 0.4)
    config = load_ci_config(project.settings)
    planned = [Runner(project, config).plan(Runner(project, config).targets(None), (i, 3))
               for i in (1, 2, 3)]
    covered = [job.ref for jobs in planned for job in jobs]
    assert sorted(covered) == sorted(refs)  # every run exactly once
    report = Runner(project, config, jobs=2).run()
    statuses = {o.ref: o.status for o in report.outcomes}
    assert statuses == {"clf@1": "passed", "clf@2": "passed", "clf@3": "passed",
                        "clf@4": "passed", "clf@5": "failed"}
    for ref, outcome in ((o.ref, o) for o in report.outcomes):
        assert outcome.notebooks[0].records["note"]["value"] == f"evaluated {ref}"


def test_bi07_hostile_parameters_are_literals(ci_project: Any, commit_versions: Any,
                                              tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hostile = f'"); import os; os.system("touch {marker}"); ("'
    check = ('nbmci.record("hostile_length", len(hostile))\n'
             'nbmci.record("hostile_text", hostile)')
    project = ci_project({"evaluate.ipynb": notebook(
        RECORD_ACCURACY, check, parameters='model_ref = "x"\nhostile = ""')})
    (project.settings.root / "pyproject.toml").write_text(
        "[tool.nbmci.ci]\nnotebooks = [{path = \"notebooks/evaluate.ipynb\", parameters = "
        "{hostile = " + json.dumps(hostile + "\n'''") + "}}]\n")
    project = Project(load_settings(project.settings.root))
    commit_versions(project, 0.9)
    [outcome] = Runner(project, load_ci_config(project.settings)).run().outcomes
    assert outcome.status == "passed", outcome.notebooks[0].error
    assert outcome.notebooks[0].records["hostile_text"]["value"] == hostile + "\n'''"
    assert not marker.exists()


def test_unknown_keys_bad_gates_and_missing_notebooks_fail_before_running(
        ci_project: Any, capsys: pytest.CaptureFixture[str]) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)})
    root = project.settings.root
    cases = {
        "[tool.nbmci.ci]\nnotebooks = [\"notebooks/evaluate.ipynb\"]\ntimout = 3\n":
            "Unknown key(s) ['timout']",
        "[tool.nbmci.ci]\nnotebooks = [\"notebooks/evaluate.ipynb\"]\n"
        "[tool.nbmci.gates]\naccuracy = \"about 0.9\"\n": "cannot read",
        "[tool.nbmci.ci]\nnotebooks = [\"notebooks/nope.ipynb\"]\n": "does not exist",
        "[tool.nbmci.ci]\nnotebooks = [\"../outside.ipynb\"]\n": "outside the project",
        "[tool.nbmci.ci]\nnotebooks = []\n": "No evaluation notebooks",
        "[tool.nbmci.ci]\nnotebooks = [{path = \"notebooks/evaluate.ipynb\", "
        "parameters = {model_ref = \"x\"}}]\n": "set by nbmci itself",
    }
    for text, message in cases.items():
        (root / "pyproject.toml").write_text(text)
        code, _, err = run_cli(capsys, "ci")
        assert code == 2 and message in err, (text, err)
    code, _, err = run_cli(capsys, "ci", "--shard", "3/2")
    assert code == 2


def test_executed_notebook_is_kept_and_gc_keeps_it(ci_project: Any,
                                                   commit_versions: Any) -> None:
    import nbformat

    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)})
    commit_versions(project, 0.9)
    Runner(project, load_ci_config(project.settings)).run()
    digest = project.show("clf@1").ci.notebooks[0]["output_digest"]
    executed = nbformat.reads(project.store.get(digest).decode(), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert project.gc(grace=0).deleted_objects == 0 and project.store.has(digest)
    assert project.fsck().ok
    assert os.environ.get("NBMCI_ROOT") is None


def test_bi07_non_json_parameters_are_refused(ci_project: Any) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)})
    root = project.settings.root
    for value, kind in (("1979-05-27T07:32:00Z", "datetime"), ("nan", "finite")):
        (root / "pyproject.toml").write_text(
            "[tool.nbmci.ci]\nnotebooks = [{path = \"notebooks/evaluate.ipynb\", "
            f"parameters = {{when = {value}}}}}]\n")
        with pytest.raises(Exception, match=kind) as info:
            load_ci_config(load_settings(root))
        assert info.typename == "ConfigError"


def test_cli_publish_and_rollback(ci_project: Any, commit_versions: Any,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    project = ci_project({"evaluate.ipynb": notebook(RECORD_ACCURACY)},
                         gates={"accuracy": ">= 0.9"})
    commit_versions(project, 0.95, 0.97, 0.5)
    assert run_cli(capsys, "ci")[0] == 1  # clf@3 fails its gate
    assert run_cli(capsys, "publish", "clf@1")[1].strip() == "clf@production -> clf@1"
    code, out, _ = run_cli(capsys, "publish", "clf@2")
    assert code == 0 and "(was clf@1)" in out
    code, _, err = run_cli(capsys, "publish", "clf@3")
    assert code == 1 and "has not passed CI (CI: failed)" in err
    code, out, _ = run_cli(capsys, "publish", "clf@3", "--force")
    assert code == 0 and "forced" in out
    code, out, _ = run_cli(capsys, "rollback", "clf")
    assert code == 0 and "clf@production -> clf@2" in out
    assert project.show("clf@production").version == 2


@pytest.mark.parametrize("runs", [12, pytest.param(50, marks=pytest.mark.slow)])
def test_cr06_kernels_never_share_the_parent_connection(ci_project: Any, commit_versions: Any,
                                                        runs: int) -> None:
    """The runner holds an open SQLite connection and writes results while kernels (forked
    from a zygote, or started) read the same registry: no locking errors, no corruption."""
    reads = notebook(RECORD_ACCURACY, "for _ in range(20):\n    nbmci.versions('clf')")
    project = ci_project({"evaluate.ipynb": reads}, gates={"accuracy": ">= 0.5"})
    commit_versions(project, *[0.6] * runs)
    report = Runner(project, load_ci_config(project.settings), jobs=3).run()
    errors = [n.error for o in report.outcomes for n in o.notebooks if n.error]
    assert [o.status for o in report.outcomes] == ["passed"] * runs, errors
    assert project.registry.integrity_check() == []
    assert project.fsck().ok
