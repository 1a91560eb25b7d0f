"""nbmci ci against the papermill CLI: 8 versions x 1 evaluation notebook, side by side.

    python -m benchmarks.bench_ci            # 8 versions
    python -m benchmarks.bench_ci --small    # 3 versions, for CI

Budgets (issue 4): ``nbmci ci`` <= 0.5x the same runs with the papermill CLI one after
another; a fully cached re-run <= 0.05x. Both sides evaluate the example notebook
``notebooks/evaluate.ipynb`` (scikit-learn, loading each version through nbmci).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = '[tool.nbmci.ci]\nnotebooks = ["notebooks/evaluate.ipynb"]\n\n' \
         '[tool.nbmci.gates]\naccuracy = ">= 0.80"\n'


def make_project(directory: Path, versions: int) -> list[str]:
    """A project with ``versions`` committed forests and the example CI configuration."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    from nbmci import api

    (directory / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "evaluate.ipynb", directory / "notebooks")
    (directory / "pyproject.toml").write_text(CONFIG)
    project = api.init(directory)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0)
    refs = []
    for i in range(versions):
        model = RandomForestClassifier(n_estimators=10 + i, random_state=i).fit(X_train, y_train)
        refs.append(project.commit(model, {"X_train": X_train, "y_train": y_train},
                                   name="clf").ref)
    project.close()
    return refs


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def measure(versions: int) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="nbmci-bench-ci-"))
    try:
        project = scratch / "project"
        refs = make_project(project, versions)
        env = {**os.environ, "NBMCI_ROOT": str(project)}
        papermill = 0.0
        for i, ref in enumerate(refs):
            papermill += timed([str(BIN / "papermill"), "notebooks/evaluate.ipynb",
                                str(scratch / f"out-{i}.ipynb"), "-p", "model_ref", ref,
                                "-k", "python3", "--no-progress-bar"], project, env)
        first = timed([str(BIN / "nbmci"), "ci", *refs], project, env)
        cached = timed([str(BIN / "nbmci"), "ci", *refs], project, env)
        return {"papermill": papermill, "nbmci": first, "cached": cached}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(results: dict[str, float], versions: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nbmci ci vs papermill CLI: {versions} versions x 1 notebook",
                  title_justify="left")
    for column in ("run", "wall", "x papermill CLI", "budget", "within"):
        table.add_column(column, justify="right" if column != "run" else "left")
    base = results["papermill"]
    table.add_row("papermill CLI, one after another", f"{base:.2f} s", "1.00", "", "")
    for key, label, budget in (("nbmci", "nbmci ci (cold)", 0.5),
                               ("cached", "nbmci ci again (all cached)", 0.05)):
        ratio = results[key] / base
        ok = "[green]yes[/green]" if ratio <= budget else "[red]NO[/red]"
        table.add_row(label, f"{results[key]:.2f} s", f"{ratio:.3f}", f"<= {budget}", ok)
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", action="store_true", help="3 versions instead of 8")
    parser.add_argument("--versions", type=int, default=None)
    args = parser.parse_args()
    versions = args.versions or (3 if args.small else 8)
    report(measure(versions), versions)


if __name__ == "__main__":
    main()
