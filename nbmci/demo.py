"""The main job: the whole journey on scikit-learn's bundled data, in a fresh project.

Run it with ``nbmci demo``. It trains a model, commits it with its data, changes a
hyperparameter and the data, commits again, and shows the log, the diff and the checks.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any


def run_demo(directory: Path | None, console: Any) -> Path:
    """Run the journey in ``directory`` (default: a new temporary one); return it."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    from nbmci import api

    root = Path(directory or tempfile.mkdtemp(prefix="nbmci-demo-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    project = api.init(root)
    console.rule("[bold]nbmci demo")
    console.print(f"project: {root}  (registry and store in {project.settings.state_dir})")

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    def train_and_commit(trees: int, X_fit: Any, y_fit: Any, message: str) -> Any:
        clf = RandomForestClassifier(n_estimators=trees, random_state=0).fit(X_fit, y_fit)
        accuracy = accuracy_score(y_test, clf.predict(X_test))
        started = time.perf_counter()
        version = project.commit(clf, {"X_train": X_fit, "y_train": y_fit}, name="clf",
                                 message=message, metrics={"accuracy": accuracy})
        console.print(
            f"committed [bold]{version.ref}[/bold]: {message!r}, accuracy {accuracy:.3f}, "
            f"{version.stored.new_bytes / 1e3:.1f} kB new, "
            f"{version.stored.dedup_bytes / 1e3:.1f} kB deduplicated, "
            f"{(time.perf_counter() - started) * 1e3:.0f} ms")
        return version

    first = train_and_commit(50, X_train, y_train, "baseline forest")
    more = pd_concat(X_train, X_test.iloc[:40]), pd_concat(y_train, y_test.iloc[:40])
    second = train_and_commit(200, *more, "more trees, 40 more rows")

    from nbmci.cli import main as cli

    previous = Path.cwd()
    os.chdir(root)
    try:
        for args in (["log", "clf"], ["diff", first.ref, second.ref], ["fsck"]):
            console.rule(f"nbmci {' '.join(args)}")
            _run_cli(cli, args)
    finally:
        os.chdir(previous)
    loaded = project.load(second.ref)
    frames = project.load_data(first.ref)
    console.rule("round trip")
    console.print(f"nbmci.load({second.ref!r}) -> {type(loaded).__name__} with "
                  f"{loaded.n_estimators} trees; nbmci.load_data({first.ref!r}) -> "
                  + ", ".join(f"{k} {v.shape}" for k, v in frames.items()))
    console.print(f"[green]done[/green]: inspect it with `cd {root} && nbmci log clf`")
    return root


def pd_concat(a: Any, b: Any) -> Any:
    import pandas as pd

    return pd.concat([a, b])


def _run_cli(cli: Any, args: list[str]) -> None:
    try:
        cli(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
