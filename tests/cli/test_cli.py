"""The nbmci command: outputs, --json, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbmci.api import Project
from tests.cli_helpers import run_cli as run


@pytest.fixture
def committed(in_project: Project, fitted: Any, iris: Any) -> Project:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    in_project.commit(fitted, {"X_train": X, "y_train": y}, name="clf", message="first")
    other = LogisticRegression(C=0.3, max_iter=500).fit(X, y)
    in_project.commit(other, {"X_train": X, "y_train": y}, name="clf", message="smaller C",
                      metrics={"accuracy": 0.96})
    return in_project


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables at 80 columns otherwise


def test_log_json_has_the_documented_fields(committed: Project,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "log", "clf", "--json")
    assert code == 0
    versions = json.loads(out)
    assert [v["ref"] for v in versions] == ["clf@2", "clf@1"]
    newest = versions[0]
    for field in ("version", "ref", "message", "created_at", "aliases", "data", "model"):
        assert field in newest
    assert newest["message"] == "smaller C" and newest["version"] == 2
    x_train = newest["data"]["X_train"]
    assert x_train["rows"] == 150 and x_train["digest"].startswith("blake3:")
    assert next(c["name"] for c in x_train["columns"]) == "sepal length (cm)"
    assert newest["model"]["class"].endswith("LogisticRegression")
    assert newest["model"]["format"] == "skops" and newest["model"]["digest"].startswith("blake3:")


def test_human_output_is_tables(committed: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "log", "clf")
    assert code == 0 and "clf@2" in out and "smaller C" in out and "accuracy=0.96" in out
    code, out, _ = run(capsys, "models")
    assert code == 0 and "clf@2" in out
    code, out, _ = run(capsys, "show", "clf@1")
    assert code == 0 and "LogisticRegression" in out and "X_train" in out
    code, out, _ = run(capsys, "diff", "clf@1", "clf@2")
    assert code == 0 and "changed" in out and "C" in out


def test_show_and_diff_and_models_json(committed: Project,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "clf@latest", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["ref"] == "clf@2" and "lineage" in shown and "signature" in shown
    code, out, _ = run(capsys, "diff", "clf@1", "clf@2", "--json")
    changed = [c["key"] for c in json.loads(out)["params"] if c["status"] == "changed"]
    assert code == 0 and changed == ["C"]
    code, out, _ = run(capsys, "models", "--json")
    assert json.loads(out)[0]["latest"] == 2


def test_diff_shows_a_none_parameter_as_none(in_project: Project, iris: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    for weights in (None, "balanced"):
        in_project.commit(LogisticRegression(class_weight=weights, max_iter=500).fit(X, y),
                          {"X_train": X, "y_train": y}, name="clf")
    code, out, _ = run(capsys, "diff", "clf@1", "clf@2")
    row = next(line for line in out.splitlines() if "class_weight" in line)
    assert code == 0 and row.split("│")[2].strip() == "None" and "balanced" in row


def test_checkout_fsck_gc(committed: Project, capsys: pytest.CaptureFixture[str],
                          tmp_path: Path) -> None:
    code, out, _ = run(capsys, "checkout", "clf@1", "--out", str(tmp_path / "co"))
    assert code == 0 and (tmp_path / "co" / "data" / "X_train.parquet").is_file()
    code, out, _ = run(capsys, "fsck", "--json")
    assert code == 0 and json.loads(out)["ok"]
    code, out, _ = run(capsys, "gc", "--grace", "0", "--json")
    assert code == 0 and json.loads(out)["deleted_objects"] == 0


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["log", "../x"], 2, "not a valid model name"),
        (["show", "clf@0"], 2, "not a valid reference"),
        (["show", "clf@9"], 1, "the latest is clf@2"),
        (["show", "nope"], 1, "Model 'nope' not found"),
        (["diff", "clf@1"], 2, "Missing argument"),
        (["gc", "--grace", "soon"], 2, "not a duration"),
        (["bogus"], 2, "No such command"),
        (["log", "clf", "--limit", "0"], 2, "0"),
        (["checkout", "clf@1"], 2, "--out"),
        (["rollback", "clf@1"], 2, "Roll back takes a model name"),
    ],
)
def test_errors_are_one_line_with_exit_codes(committed: Project,
                                             capsys: pytest.CaptureFixture[str],
                                             args: list[str], code: int, text: str) -> None:
    got, _out, err = run(capsys, *args)
    assert got == code
    assert text in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


def test_fsck_exits_nonzero_on_corruption(committed: Project,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    version = committed.show("clf@1")
    path = committed.store.path(version.model.digest)
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.write(b"XX")
    code, out, _ = run(capsys, "fsck")
    assert code == 1 and version.model.digest in out and "clf@1" in out


def test_real_process_exit_codes_and_debug(committed: Project) -> None:
    env = {**os.environ, "NBMCI_ROOT": str(committed.settings.root)}
    ok = subprocess.run([sys.executable, "-m", "nbmci.cli", "log", "clf", "--json"], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)[0]["ref"] == "clf@2"
    bad = subprocess.run([sys.executable, "-m", "nbmci.cli", "show", "clf@9"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    debug = subprocess.run([sys.executable, "-m", "nbmci.cli", "--debug", "show", "clf@9"],
                           env=env, capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_init_creates_a_private_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "init")
    assert code == 0 and "Initialized" in out
    assert (tmp_path / ".nbmci").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / ".nbmci" / "registry.db").is_file()
    code, out, _ = run(capsys, "models")
    assert code == 0 and "No models yet" in out
