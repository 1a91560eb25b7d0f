"""The main job: the whole journey on scikit-learn's bundled data, in a fresh project.

Run it with ``nbmci demo``: train and commit models with their data, run CI on them with the
example evaluation notebook and quality gates, publish the one that passes, see a failing
version refused, roll back, and look at the log and a diff.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

CONFIG = """[tool.nbmci.ci]
notebooks = ["notebooks/evaluate.ipynb"]
timeout = 300

[tool.nbmci.gates]
accuracy = ">= 0.90"
f1 = ">= production - 0.02"
"""


def tumours() -> tuple[Any, Any]:
    """scikit-learn's breast cancer data as the demo uses it: the 30 measurements, a string
    column ``size`` (small, medium or large, from the mean radius) and string labels
    (``benign``, ``malignant``)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X["size"] = pd.cut(X["mean radius"], [0, 12, 16, np.inf],
                       labels=["small", "medium", "large"]).astype("str")
    return X, pd.Series(np.where(y == 1, "benign", "malignant"), name="diagnosis")


def pipeline(estimator: Any) -> Any:
    """``estimator`` after a one-hot encoding of ``size`` (the measurements pass through)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([("size", OneHotEncoder(handle_unknown="ignore"), ["size"])],
                               remainder="passthrough")
    return make_pipeline(encode, estimator)


def example_notebook() -> Path:
    """The example evaluation notebook: shipped in the wheel, or in a source checkout."""
    shipped = files("nbmci").joinpath("examples", "evaluate.ipynb")
    if shipped.is_file():
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "notebooks" / "evaluate.ipynb"


def run_demo(directory: Path | None, console: Any) -> Path:
    """Run the journey in ``directory``, kept for a look around; with None, in a temporary
    folder that is removed at the end (nothing is left in the system temp folder)."""
    if directory is not None:
        root = _run(Path(directory), console)
        console.print(f"[green]done[/green]: look around with `cd {root} && nbmci log clf`")
        return root
    with tempfile.TemporaryDirectory(prefix="nbmci-demo-", ignore_cleanup_errors=True) as tmp:
        root = _run(Path(tmp), console)
    console.print(f"[green]done[/green]: the demo project in {root} was temporary and is "
                  "removed; `nbmci demo --dir DIR` keeps one to look around in")
    return root


def _run(directory: Path, console: Any) -> Path:
    from nbmci import api

    root = directory.resolve()
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    shutil.copy(example_notebook(), root / "notebooks" / "evaluate.ipynb")
    (root / "pyproject.toml").write_text(CONFIG)
    project = api.init(root)
    console.rule("[bold]nbmci demo")
    console.print(f"project: {root}  (registry and store in {project.settings.state_dir})")
    previous = Path.cwd()
    os.chdir(root)
    try:
        _journey(project, console)
    finally:
        os.chdir(previous)
        project.close()
    return root


def _journey(project: Any, console: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    X, y = tumours()
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0)

    def commit(model: Any, message: str) -> Any:
        started = time.perf_counter()
        model.fit(X_train, y_train)
        version = project.commit(model, {"X_train": X_train, "y_train": y_train}, name="clf",
                                 message=message)
        console.print(f"committed [bold]{version.ref}[/bold] {message!r}: "
                      f"{version.stored.new_bytes / 1e3:.1f} kB new, "
                      f"{version.stored.dedup_bytes / 1e3:.1f} kB deduplicated "
                      f"({(time.perf_counter() - started) * 1e3:.0f} ms with training)")
        return version

    first = commit(pipeline(RandomForestClassifier(n_estimators=50, random_state=0)),
                   "baseline forest")
    _cli(console, "ci", first.ref)
    _cli(console, "publish", first.ref)
    server = Server(project.settings.root, console)
    try:
        server.predict(X_train.iloc[:1])
        second = commit(pipeline(RandomForestClassifier(n_estimators=200, random_state=0)),
                        "more trees")
        third = commit(pipeline(DecisionTreeClassifier(max_depth=1)), "a stump: too simple")
        _cli(console, "ci")  # every version without a CI result: the two new ones
        _cli(console, "publish", second.ref)
        server.wait_for(2)
        _cli(console, "publish", third.ref)  # refused: it failed its gates
        _cli(console, "rollback", "clf")
        server.wait_for(1)
    finally:
        server.stop()
    _cli(console, "log", "clf")
    _cli(console, "diff", first.ref, second.ref)
    _cli(console, "fsck")
    console.rule("where things are")
    state = project.settings.state_dir
    console.print(f"registry: {state / 'registry.db'}\nobjects:  {state / 'objects'}\n"
                  f"executed evaluation notebooks: `nbmci show {second.ref} --json` lists their "
                  "digests under ci.notebooks\nserver log: " + str(server.log))


class Server:
    """``nbmci serve`` in a subprocess, as a user would run it, on a free loopback port."""

    def __init__(self, root: Path, console: Any) -> None:
        import socket
        import subprocess
        import sys

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.console = console
        self.log = root / "serve.log"
        console.rule(f"$ nbmci serve --port {self.port} --poll-interval 0.5")
        self._output = self.log.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nbmci.cli", "serve", "--port", str(self.port),
             "--poll-interval", "0.5"], cwd=root, stdout=self._output,
            stderr=subprocess.STDOUT)
        self._wait(lambda: self._get("/v2/health/ready")[0] == 200, "the server to be ready")
        console.print(f"serving at http://127.0.0.1:{self.port} (log: {self.log})")

    def _get(self, path: str, body: Any = None) -> tuple[int, Any]:
        import json
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
        except OSError:
            return 0, None

    def _wait(self, done: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError(f"timed out waiting for {what}; see {self.log}")
            time.sleep(0.1)

    def predict(self, rows: Any) -> None:
        """Ask for ``rows`` (a DataFrame with the string column) in both protocols, and for
        class probabilities."""
        records = rows.to_dict("records")
        v2 = {"inputs": [{"name": column, "shape": [len(rows)],
                          "datatype": "BYTES" if column == "size" else "FP64",
                          "data": rows[column].tolist()} for column in rows.columns],
              "outputs": [{"name": "diagnosis"}, {"name": "predict_proba"}]}
        status, answer = self._get("/v2/models/clf/infer", v2)
        shown = {o["name"]: o["data"] for o in (answer or {}).get("outputs", [])}
        self.console.print(f"POST /v2/models/clf/infer  (31 inputs, 'size' as BYTES) -> "
                           f"{status} {shown or answer}")
        mlflow = {"dataframe_records": records}
        status, answer = self._get("/invocations", mlflow)
        self.console.print(f"POST /invocations {{\"dataframe_records\": [{{..., \"size\": "
                           f"{records[0]['size']!r}}}]}}  -> {status} {answer}")
        status, answer = self._get("/invocations", {**mlflow,
                                                    "params": {"method": "predict_proba"}})
        self.console.print(f"POST /invocations  (params: method predict_proba)  -> {status} "
                           f"{answer}")

    def wait_for(self, version: int) -> None:
        """Wait until the server has swapped in ``clf@version`` (it polls the alias)."""
        started = time.monotonic()
        self._wait(lambda: (self._get("/v2/models/clf")[1] or {}).get("versions") == [
            str(version)], f"clf@{version} to go live")
        self.console.print(f"the server now answers with clf@{version} "
                           f"(swapped {time.monotonic() - started:.1f} s after the alias moved)")

    def stop(self) -> None:
        import signal

        self._process.send_signal(signal.SIGTERM)  # drains in-flight requests, then exits
        try:
            self._process.wait(timeout=30)
        except Exception:
            self._process.kill()
        self._output.close()
        self.console.print(f"server stopped (exit code {self._process.returncode})")


def _cli(console: Any, *args: str) -> None:
    """Show a command and run it in-process, as a user would type it."""
    from nbmci.cli import main

    console.rule(f"$ nbmci {' '.join(args)}")
    try:
        main(list(args))
    except SystemExit as exc:
        if exc.code not in (0, None):
            console.print(f"[dim](exit code {exc.code})[/dim]")
