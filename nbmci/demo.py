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


def example_notebook() -> Path:
    """The example evaluation notebook: shipped in the wheel, or in a source checkout."""
    shipped = files("nbmci").joinpath("examples", "evaluate.ipynb")
    if shipped.is_file():
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "notebooks" / "evaluate.ipynb"


def run_demo(directory: Path | None, console: Any) -> Path:
    """Run the journey in ``directory`` (default: a new temporary one); return it."""
    from nbmci import api

    root = Path(directory or tempfile.mkdtemp(prefix="nbmci-demo-")).resolve()
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
    console.print(f"[green]done[/green]: look around with `cd {root} && nbmci log clf`")
    return root


def _journey(project: Any, console: Any) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
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

    first = commit(RandomForestClassifier(n_estimators=50, random_state=0), "baseline forest")
    _cli(console, "ci", first.ref)
    _cli(console, "publish", first.ref)
    second = commit(RandomForestClassifier(n_estimators=200, random_state=0), "more trees")
    third = commit(DecisionTreeClassifier(max_depth=1), "a stump: too simple")
    _cli(console, "ci")  # every version without a CI result: the two new ones
    _cli(console, "publish", second.ref)
    _cli(console, "publish", third.ref)  # refused: it failed its gates
    _cli(console, "rollback", "clf")
    _cli(console, "log", "clf")
    _cli(console, "diff", first.ref, second.ref)
    _cli(console, "fsck")


def _cli(console: Any, *args: str) -> None:
    """Show a command and run it in-process, as a user would type it."""
    from nbmci.cli import main

    console.rule(f"$ nbmci {' '.join(args)}")
    try:
        main(list(args))
    except SystemExit as exc:
        if exc.code not in (0, None):
            console.print(f"[dim](exit code {exc.code})[/dim]")
