"""Helpers for the browser tests: a project, JupyterLab in a subprocess, Chromium flags.

The project has an evaluation notebook and gates, iris@1 and iris@2 that passed real CI, iris@1
in production, iris@3 (servable, no CI yet), and a model whose message and metric name are
hostile HTML (SE-10).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
HOSTILE_MESSAGE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'
HOSTILE_METRIC = '<img src=x onerror="window.__pwned=3">'
EVALUATE = """import nbmci
version = nbmci.show(model_ref)
nbmci.record("accuracy", version.metrics["accuracy"])"""


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def page_url(self, path: str = "lab") -> str:
        return f"{self.url}/{path}?token={self.token}"


def _evaluation_notebook() -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('model_ref = "unset"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(EVALUATE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nbformat.writes(nb)


def make_project(root: Path) -> None:
    """iris@1 and iris@2 pass CI, iris@1 is in production, iris@3 has no CI; xss@1 carries
    hostile text and is not servable (no example rows)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from nbmci.api import Project
    from nbmci.ci.config import load_ci_config
    from nbmci.ci.runner import Runner
    from nbmci.config import load_settings

    (root / ".nbmci").mkdir(mode=0o700)
    (root / "notebooks").mkdir()
    (root / "notebooks" / "evaluate.ipynb").write_text(_evaluation_notebook())
    (root / "pyproject.toml").write_text(
        '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\ntimeout = 120\n'
        '[tool.nbmci.gates]\naccuracy = ">= 0.9"\n')
    X, y = load_iris(return_X_y=True, as_frame=True)
    project = Project(load_settings(root))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for c, message, acc in [(0.5, "baseline", 0.93), (2.0, "less regularization", 0.97),
                                    (1.0, "no CI yet", 0.95)]:
                model = LogisticRegression(max_iter=500, C=c).fit(X, y)
                project.commit(model, {"X_train": X, "y_train": y}, name="iris", message=message,
                               metrics={"accuracy": acc, "f1_macro": acc - 0.01})
            project.commit(LogisticRegression(max_iter=500).fit(X, y), None, name="xss",
                           message=HOSTILE_MESSAGE, metrics={HOSTILE_METRIC: 1.0})
        report = Runner(project, load_ci_config(project.settings)).run(["iris@1", "iris@2"])
        assert report.ok, report.to_dict()
        project.publish("iris@1")
    finally:
        project.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_settings(settings_dir: Path) -> None:
    """No news toast over the screenshots, and no update check."""
    target = settings_dir / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True)
    (target / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def wait_ready(lab: Lab, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not start; its log:\n{lab.log.read_text()[-4000:]}")


def artifact_dir(config: pytest.Config) -> Path:
    """`test-artifacts/` at the repository root (git-ignored); CI keeps it."""
    path = Path(config.rootpath) / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
