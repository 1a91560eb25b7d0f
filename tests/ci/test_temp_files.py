"""CI leaves nothing behind in the system temp folder or Jupyter's runtime folder: not its
scratch copies of executed notebooks, kernel sockets, connection files or warm processes'
folders, whether notebooks pass, raise or kill their kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ci.conftest import RECORD_ACCURACY, notebook

pytestmark = pytest.mark.kernel


def test_ci_leaves_no_temporary_files(ci_project: Any, commit_versions: Any,
                                      tmp_path: Path) -> None:
    project = ci_project({
        "evaluate.ipynb": notebook(RECORD_ACCURACY),
        "raises.ipynb": notebook("raise ValueError('bad eval data')"),
        "killed.ipynb": notebook("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
    }, gates={"accuracy": ">= 0.5"})
    commit_versions(project, 0.9, 0.8)
    temp, runtime = tmp_path / "tmp", tmp_path / "runtime"
    temp.mkdir()
    runtime.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "JUPYTER_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([sys.executable, "-m", "nbmci.cli", "ci", "--jobs", "2",
                           "--junit", str(tmp_path / "junit.xml")],
                          cwd=project.settings.root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr  # two notebooks end in errors
    assert "bad eval data" in done.stdout
    assert project.show("clf@2").ci.status == "error"
    assert sorted(p.name for p in temp.iterdir()) == []
    assert sorted(p.name for p in runtime.iterdir()) == []



def _gone(pid: int, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


SLOW = ("import os, pathlib, time\n"
        "pathlib.Path('started').write_text(str(os.getpid()))\n"
        "time.sleep(300)")


def _start_slow_run(ci_project: Any, commit_versions: Any, tmp_path: Path
                    ) -> tuple[subprocess.Popen[str], int, Path, Path]:
    """``nbmci ci`` in a subprocess, once its notebook runs: (process, kernel pid, temp
    folder, runtime folder)."""
    project = ci_project({"slow.ipynb": notebook(SLOW)}, timeout=600)
    commit_versions(project, 0.9, 0.8)
    temp, runtime = tmp_path / "tmp", tmp_path / "runtime"
    temp.mkdir()
    runtime.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "JUPYTER_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen([sys.executable, "-m", "nbmci.cli", "ci"],
                               cwd=project.settings.root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    marker = project.settings.root / "notebooks" / "started"
    deadline = time.monotonic() + 120
    while not marker.exists() or not marker.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the notebook did not start: {process.communicate()}")
        time.sleep(0.1)
    return process, int(marker.read_text()), temp, runtime


def test_sigterm_stops_ci_cleanly(ci_project: Any, commit_versions: Any,
                                  tmp_path: Path) -> None:
    """A CI system cancelling the job (SIGTERM) mid-notebook: kernels end, files go."""
    process, kernel, temp, runtime = _start_slow_run(ci_project, commit_versions, tmp_path)
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 130 and "interrupted" in err
    assert _gone(kernel)
    assert sorted(p.name for p in temp.iterdir()) == []
    assert sorted(p.name for p in runtime.iterdir()) == []


def test_killed_runner_leaves_no_kernel_running(ci_project: Any, commit_versions: Any,
                                                tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up files, but the kernels end with the runner."""
    process, kernel, _, _ = _start_slow_run(ci_project, commit_versions, tmp_path)
    process.kill()
    process.communicate(timeout=60)
    assert _gone(kernel)
