"""Data and model commits: nbmci against plain Parquet and MLflow, side by side in one run.

Usage::

    python -m benchmarks.bench_commit            # 10,000,000 rows (about 1 GB), minutes
    python -m benchmarks.bench_commit --small    # 200,000 rows, seconds (run by CI)
    python -m benchmarks.bench_commit --small --json results.json

Every step runs in a fresh temporary project. Timings are medians over ``reps`` repetitions;
loads run in a fresh subprocess each, so their peak RSS is meaningful. The script only
reports: a missed budget is printed, never raised, and the exit status stays 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.ensemble import RandomForestClassifier

from benchmarks.workers import timed, tree_bytes
from nbmci.api import Project
from nbmci.config import STATE_DIR, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "bench"
DATA_KEY = "train"
FEATURES = [f"x{i}" for i in range(8)]
CITIES = ("Amsterdam", "Berlin", "Cairo", "Delhi", "Lagos", "Lima", "Madrid", "Oslo",
          "Paris", "Quito", "Seoul", "Tokyo")
# Variables that would point the benchmark at the caller's real project instead of a temp one.
_REDIRECTING_ENV = ("NBMCI_ROOT", "NBMCI_STORE_URL", "NBMCI_REGISTRY_URL")
# MLflow must stay offline: a local store and no telemetry (it reads "true", not "1").
_MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@dataclass(frozen=True)
class Scale:
    """How big one run is."""

    name: str
    rows: int
    reps: int  # repetitions of each cheap timing; the median is reported
    fit_rows: int  # rows the model is fitted on
    chunk_bytes: int | None = None  # the project's setting; None keeps nbmci's default
    trees: int = 20
    appends: int = 10
    edit_fraction: float = 0.01  # of the rows, appended or deleted per edit


FULL = Scale("full", rows=10_000_000, reps=1, fit_rows=100_000)
SMALL = Scale("small", rows=200_000, reps=5, fit_rows=20_000)  # nbmci's defaults, as users
# The dedup table: the same edits on frames of each size (in memory), at the defaults.
SIZES = {"full": (10**6, 16 * 10**6, 256 * 10**6, 10**9), "small": (10**6, 16 * 10**6)}
APPEND_FLOOR = 256 << 10  # an append may always store this much (a chunk or two)
DELETE_FLOOR = 512 << 10


# -- data and model --------------------------------------------------------------------------


def make_frame(rows: int, *, seed: int, start: int = 0) -> pd.DataFrame:
    """``rows`` rows of 8 float64, 2 int64, a low-cardinality string and a tz-aware datetime
    column (about 100 bytes a row); ``start`` continues the id and time columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.standard_normal(rows) for name in FEATURES})
    frame["id"] = np.arange(start, start + rows, dtype=np.int64)
    noise = rng.standard_normal(rows)
    frame["label"] = (frame["x0"] + 0.5 * frame["x1"] + noise > 0).astype(np.int64)
    codes = rng.integers(0, len(CITIES), rows)
    frame["city"] = pd.Series(pd.Categorical.from_codes(codes, CITIES)).astype("str")
    seconds = np.arange(start, start + rows, dtype=np.int64) * np.timedelta64(1, "s")
    stamps = pd.DatetimeIndex(np.datetime64("2024-01-01T00:00:00", "ns") + seconds)
    frame["ts"] = stamps.tz_localize("UTC").tz_convert("Europe/Paris")
    return frame


def fit_model(frame: pd.DataFrame, scale: Scale) -> RandomForestClassifier:
    """A small random forest fitted on a fixed sample of ``frame``."""
    sample = frame.sample(n=min(scale.fit_rows, len(frame)), random_state=0)
    model = RandomForestClassifier(n_estimators=scale.trees, max_depth=8, random_state=0,
                                   n_jobs=1)
    return model.fit(sample[FEATURES], sample["label"])


def append_rows(frame: pd.DataFrame, scale: Scale, seed: int) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame]:
    """``(frame with 1% new rows at the end, the new rows)``."""
    extra = make_frame(max(1, int(scale.rows * scale.edit_fraction)), seed=seed,
                       start=len(frame))
    return pd.concat([frame, extra], ignore_index=True), extra


def delete_middle(frame: pd.DataFrame, scale: Scale) -> pd.DataFrame:
    """``frame`` without a contiguous block of 1% of the rows from its middle."""
    middle, count = len(frame) // 2, max(1, int(len(frame) * scale.edit_fraction))
    return pd.concat([frame.iloc[:middle], frame.iloc[middle + count:]], ignore_index=True)


# -- nbmci helpers ---------------------------------------------------------------------------


def new_project(root: Path, chunk_bytes: int | None = None) -> Project:
    """An empty project in ``root`` with its registry created, as ``nbmci init`` leaves it."""
    (root / STATE_DIR).mkdir(parents=True)
    settings = load_settings(root)
    if chunk_bytes is not None:
        settings = settings.with_overrides(chunk_bytes=chunk_bytes)
    project = Project(settings)
    project.registry.engine  # noqa: B018  (creating the database is not part of a commit)
    return project


@dataclass(frozen=True)
class Commit:
    """One timed commit and what it stored."""

    seconds: float
    new_bytes: int
    model_new_bytes: int  # the model blob, when no earlier version stored the same bytes

    @property
    def data_new_bytes(self) -> int:
        return self.new_bytes - self.model_new_bytes


class Committer:
    """Commits one model with changing data into one project, as versions of one name."""

    def __init__(self, project: Project, model: Any) -> None:
        self.project = project
        self.model = model
        self._model_digests: set[str] = set()

    def in_new_session(self) -> Committer:
        """A committer into the same store through a new ``Project``, as another process."""
        other = Committer(Project(self.project.settings), self.model)
        other._model_digests = self._model_digests
        return other

    def __call__(self, frame: pd.DataFrame, message: str) -> Commit:
        seconds, version = timed(lambda: self.project.commit(
            self.model, {DATA_KEY: frame}, name=MODEL_NAME, message=message))
        digest = version.model.digest
        model_new = 0 if digest in self._model_digests else version.model.size
        self._model_digests.add(digest)
        return Commit(seconds, version.stored.new_bytes, model_new)


def store_bytes(project: Project) -> int:
    """Bytes on disk under the project's ``objects/`` directory."""
    return tree_bytes(project.settings.state_dir / "objects")


def warm_up(model: Any, work: Path) -> None:
    """Import and initialise everything lazily loaded (skops, Arrow kernels) untimed."""
    frame = make_frame(2_000, seed=99)
    project = new_project(work / "warm-up")
    project.commit(model, {DATA_KEY: frame}, name=MODEL_NAME)
    project.load_data(f"{MODEL_NAME}@1")
    frame.to_parquet(work / "warm-up" / "frame.parquet")
    project.close()


# -- measurements ----------------------------------------------------------------------------


@dataclass
class Baseline:
    """Plain pandas Parquet (snappy) of the first dataset."""

    write_seconds: float
    path: Path
    file_bytes: int


@dataclass
class FirstCommit:
    commit: Commit  # the median repetition (the upper one for an even count)
    model_bytes: int
    committer: Committer = field(repr=False)  # the last repetition's, kept for the history


@dataclass
class History:
    """Commits after the first one, all into the same project."""

    recommits: list[Commit]  # in the process that made the first commit
    fresh_recommits: list[Commit]  # from a new Project, as a new process would
    appends: list[Commit]
    delete: Commit
    store_bytes_first: int
    store_bytes_after_appends: int
    append_files: list[Path] = field(repr=False)

    @property
    def recommit_seconds(self) -> float:
        return statistics.median(c.seconds for c in self.recommits)

    @property
    def fresh_recommit_seconds(self) -> float:
        return statistics.median(c.seconds for c in self.fresh_recommits)

    @property
    def append_seconds(self) -> float:
        return statistics.median(c.seconds for c in self.appends)


@dataclass
class Load:
    """Loading the first dataset back, measured in fresh subprocesses."""

    seconds: float
    peak_rss_delta: int
    frame_bytes: int


def bench_parquet(frame: pd.DataFrame, work: Path, reps: int) -> Baseline:
    """Median ``df.to_parquet`` time with pandas' defaults."""
    path = work / "baseline.parquet"
    times = []
    for _ in range(reps):
        path.unlink(missing_ok=True)
        seconds, _ = timed(lambda: frame.to_parquet(path))
        times.append(seconds)
    return Baseline(statistics.median(times), path, path.stat().st_size)


def bench_first_commit(frame: pd.DataFrame, model: Any, scale: Scale,
                       work: Path) -> FirstCommit:
    """The median first commit, each repetition into a new, empty project."""
    commits: list[Commit] = []
    committer: Committer | None = None
    for rep in range(scale.reps):
        if committer is not None:
            committer.project.close()
        committer = Committer(new_project(work / f"project-{rep}", scale.chunk_bytes), model)
        commits.append(committer(frame, "first"))
    assert committer is not None  # reps >= 1
    median = sorted(commits, key=lambda c: c.seconds)[len(commits) // 2]
    return FirstCommit(median, commits[-1].model_new_bytes, committer)


def bench_history(first: FirstCommit, frame: pd.DataFrame, scale: Scale,
                  work: Path) -> History:
    """Unchanged re-commits, ``scale.appends`` appends of 1%, then a 1% delete."""
    committer = first.committer
    store_first = store_bytes(committer.project)
    recommits = [committer(frame, "unchanged") for _ in range(scale.reps)]
    # a new session (a CI job, a restarted kernel) remembers nothing: it chunks and hashes
    fresh = [committer.in_new_session()(frame, "fresh") for _ in range(scale.reps)]
    appends, files = [], []
    for number in range(1, scale.appends + 1):
        frame, extra = append_rows(frame, scale, seed=number)
        files.append(work / f"append-{number}.parquet")
        extra.to_parquet(files[-1])
        appends.append(committer(frame, f"append {number}"))
    store_after = store_bytes(committer.project)
    delete = committer(delete_middle(frame, scale), "delete")
    return History(recommits, fresh, appends, delete, store_first, store_after, files)


def round_trip_exact(project: Project, frame: pd.DataFrame) -> bool:
    """Whether version 1's data loads back equal to ``frame``, dtypes included."""
    loaded = project.load_data(f"{MODEL_NAME}@1")[DATA_KEY]
    return bool(loaded.equals(frame) and (loaded.dtypes == frame.dtypes).all())


def run_worker(python: str, args: Sequence[str], work: Path) -> dict[str, Any]:
    """Run ``benchmarks.workers`` under ``python`` in a fresh process; its JSON result."""
    result = work / "worker-result.json"
    result.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, **_MLFLOW_ENV, "PYTHONPATH": path,
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    proc = subprocess.run([python, "-m", "benchmarks.workers", "--result", str(result), *args],
                          cwd=work, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    loaded: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    return loaded


def bench_load(args: Sequence[str], reps: int, work: Path) -> Load:
    """One loader's median time and first-load peak RSS, from a fresh process."""
    out = run_worker(sys.executable, ["load", *args, "--reps", str(reps)], work)
    return Load(out["median"], out["peak_rss_delta"], out["frame_bytes"])


def bench_mlflow(python: str | None, baseline: Baseline, history: History, model: Any,
                 reps: int, work: Path) -> dict[str, Any]:
    """MLflow logging the same data and model, or ``{"skipped": reason}``."""
    if python is None:
        return {"skipped": "disabled with --no-mlflow"}
    if python == sys.executable and importlib.util.find_spec("mlflow") is None:
        return {"skipped": "mlflow not installed"}
    import joblib

    model_path = work / "model.joblib"
    joblib.dump(model, model_path)
    args = ["mlflow", "--base", str(baseline.path), "--model", str(model_path),
            "--out", str(work / "mlflow"), "--reps", str(reps),
            "--appends", *map(str, history.append_files)]
    try:
        return run_worker(python, args, work)
    except RuntimeError as exc:
        return {"skipped": str(exc)}


# -- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One comparison: ``nbmci / baseline`` should be at most ``budget`` (if any)."""

    step: str
    unit: str  # "s" or "B"
    nbmci: float
    baseline: float
    budget: float | None = None
    percent: bool = False  # show the ratio as a percentage
    floor: float | None = None  # also within budget when nbmci's value is at most this

    @property
    def ratio(self) -> float | None:
        if self.baseline == 0:
            return None if self.nbmci else 0.0
        return self.nbmci / self.baseline

    @property
    def ok(self) -> bool | None:
        if self.budget is None or self.ratio is None:
            return None
        return self.ratio <= self.budget or (self.floor is not None and self.nbmci <= self.floor)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "ok": self.ok}


def budget_rows(baseline: Baseline, first: FirstCommit, history: History, load: Load,
                parquet_load: Load, scale: Scale) -> list[Row]:
    """Every comparison, in the order of the workflow. Byte budgets count data only: the
    same model committed again should add nothing, which the model row shows separately."""
    one, seconds = first.commit.data_new_bytes, first.commit.seconds
    edit = f"{scale.edit_fraction:.0%}"
    appended = history.appends[0]
    return [
        Row("first commit (model + data) vs to_parquet", "s", seconds,
            baseline.write_seconds, budget=1.0),
        Row("re-commit unchanged vs first commit", "s", history.recommit_seconds, seconds,
            budget=0.25),
        Row("re-commit unchanged, new session vs first commit", "s",
            history.fresh_recommit_seconds, seconds),
        Row("re-commit unchanged: new data bytes vs first", "B",
            max(c.data_new_bytes for c in [*history.recommits, *history.fresh_recommits]),
            one, budget=0.0, percent=True),
        Row("re-commit unchanged: model re-stored vs model", "B",
            max(c.model_new_bytes for c in history.recommits), first.model_bytes,
            budget=0.0, percent=True),
        Row(f"append {edit} rows: new data bytes vs first", "B", appended.data_new_bytes, one,
            budget=0.03, percent=True),
        Row(f"append {edit} rows: commit vs first commit", "s", history.append_seconds,
            seconds),
        Row(f"store after {len(history.appends)} appends vs one copy", "B",
            history.store_bytes_after_appends, one, budget=1.3),
        Row(f"delete {edit} rows (middle): new data bytes vs first", "B",
            history.delete.data_new_bytes, one, budget=0.05, percent=True),
        Row(f"delete {edit} rows (middle): commit vs first commit", "s",
            history.delete.seconds, seconds),
        Row("load_data vs read_parquet", "s", load.seconds, parquet_load.seconds, budget=1.5),
        Row("load peak RSS added vs read_parquet", "B", load.peak_rss_delta,
            parquet_load.peak_rss_delta),
    ]


def bench_sizes(sizes: Sequence[int], model: Any, reps: int, work: Path) -> list[Row]:
    """At each in-memory size: first commit vs ``to_parquet``, then the new data bytes of an
    unchanged re-commit, a 1% append and a 1% delete from the middle, at nbmci's defaults."""
    sample = make_frame(10_000, seed=0)
    per_row = sample.memory_usage(deep=True).sum() / len(sample)
    rows: list[Row] = []
    for size in sizes:
        label = format_value(size, "B")
        scale = Scale(label, rows=int(size / per_row), reps=reps if size < 10**8 else 1,
                      fit_rows=0)
        frame = make_frame(scale.rows, seed=0)
        where = work / f"size-{size}"
        where.mkdir()
        baseline = bench_parquet(frame, where, scale.reps)
        first = bench_first_commit(frame, model, scale, where)
        committer, one = first.committer, first.commit.data_new_bytes
        again = committer(frame, "unchanged")
        appended = committer(append_rows(frame, scale, seed=1)[0], "append")
        deleted = committer(delete_middle(frame, scale), "delete")
        committer.project.close()
        shutil.rmtree(where, ignore_errors=True)
        rows += [
            Row(f"{label}: first commit vs to_parquet", "s", first.commit.seconds,
                baseline.write_seconds, budget=1.0),
            Row(f"{label}: re-commit unchanged: new data bytes", "B", again.data_new_bytes, one,
                budget=0.0, percent=True),
            Row(f"{label}: append 1%: new data bytes", "B", appended.data_new_bytes, one,
                budget=0.03, percent=True, floor=APPEND_FLOOR),
            Row(f"{label}: delete 1% (middle): new data bytes", "B", deleted.data_new_bytes,
                one, budget=0.05, percent=True, floor=DELETE_FLOOR),
        ]
    return rows


def format_value(value: float, unit: str) -> str:
    """``1.23 s`` / ``45 ms`` for times, ``1.2 GB`` / ``340 kB`` for bytes."""
    if unit == "s":
        return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"
    for size, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(value) >= size:
            return f"{value / size:.2f} {suffix}"
    return f"{value:.0f} B"


def format_ratio(ratio: float | None, percent: bool) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2%}" if percent else f"{ratio:.2f}x"


def budget_table(rows: list[Row], title: str = "nbmci commits and loads") -> Table:
    table = Table(title=title)
    for name in ("step", "nbmci", "baseline", "ratio", "budget", "ok"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for row in rows:
        budget = "-" if row.budget is None else f"≤ {format_ratio(row.budget, row.percent)}"
        if row.floor is not None:
            budget += f" or {format_value(row.floor, row.unit)}"
        ok = {True: "[green]ok[/]", False: "[bold red]MISS[/]", None: "-"}[row.ok]
        table.add_row(row.step, format_value(row.nbmci, row.unit),
                      format_value(row.baseline, row.unit), format_ratio(row.ratio, row.percent),
                      budget, ok)
    return table


def mlflow_table(peer: dict[str, Any], baseline: Baseline, first: FirstCommit,
                 history: History) -> Table:
    """nbmci and MLflow side by side; each ratio is to that tool's own baseline."""
    table = Table(title=f"nbmci vs MLflow {peer['version']} (data input + Parquet artifact + "
                        "sklearn model)")
    for name in ("step", "nbmci", "MLflow", "nbmci ÷ MLflow", "nbmci ÷ base", "MLflow ÷ base"):
        table.add_column(name, justify="left" if name == "step" else "right")
    lines = [
        ("first commit (base: to_parquet)", "s", first.commit.seconds, peer["first_median"],
         baseline.write_seconds, baseline.write_seconds),
        ("append commit (base: to_parquet)", "s", history.append_seconds,
         peer["append_median"], baseline.write_seconds, baseline.write_seconds),
        ("stored after first (base: Parquet file)", "B", history.store_bytes_first,
         peer["store_bytes_first"], baseline.file_bytes, baseline.file_bytes),
        (f"stored after {peer['appends']} appends (base: own first)", "B",
         history.store_bytes_after_appends, peer["store_bytes_after_appends"],
         history.store_bytes_first, peer["store_bytes_first"]),
    ]
    for step, unit, ours, theirs, our_base, their_base in lines:
        if theirs is None:
            continue
        table.add_row(step, format_value(ours, unit), format_value(theirs, unit),
                      format_ratio(ours / theirs, False), format_ratio(ours / our_base, False),
                      format_ratio(theirs / their_base, False))
    return table


def mlflow_split(peer: dict[str, Any]) -> str:
    """Where MLflow's median first log spent its time, largest first."""
    logs = sorted(peer["first"], key=lambda steps: steps["total"])
    steps = logs[len(logs) // 2]
    parts = sorted(((v, k) for k, v in steps.items() if k != "total"), reverse=True)
    return ", ".join(f"{name} {format_value(seconds, 's')}" for seconds, name in parts)


def environment(scale: Scale) -> dict[str, Any]:
    import pyarrow

    return {"scale": asdict(scale), "python": platform.python_version(),
            "nbmci": importlib.metadata.version("nbmci"), "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__, "cpus": os.cpu_count(),
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


# -- main ------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_commit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help=f"{SMALL.rows:,} rows instead of {FULL.rows:,} (seconds, for CI)")
    parser.add_argument("--reps", type=int, help="repetitions per timing (default: by size)")
    parser.add_argument("--chunk-bytes", type=int, metavar="N",
                        help="the projects' chunk_bytes (default: nbmci's)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--mlflow-python", metavar="PYTHON",
                        default=os.environ.get("NBMCI_BENCH_MLFLOW_PYTHON", sys.executable),
                        help="interpreter with MLflow installed (default: "
                             "$NBMCI_BENCH_MLFLOW_PYTHON, else this one)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    scale = SMALL if args.small else FULL
    if args.reps or args.chunk_bytes:
        scale = Scale(**{**asdict(scale), "reps": max(1, args.reps or scale.reps),
                         "chunk_bytes": args.chunk_bytes or scale.chunk_bytes})
    for name in _REDIRECTING_ENV:
        os.environ.pop(name, None)
    console = Console(width=None if sys.stdout.isatty() else 120)
    with tempfile.TemporaryDirectory(prefix="nbmci-bench-") as tmp:
        work = Path(tmp)
        with console.status(f"{scale.name}: building {scale.rows:,} rows and a model"):
            frame = make_frame(scale.rows, seed=0)
            model = fit_model(frame, scale)
            warm_up(model, work)
        with console.status("to_parquet and first commits"):
            baseline = bench_parquet(frame, work, scale.reps)
            first = bench_first_commit(frame, model, scale, work)
        with console.status("re-commits, appends, delete"):
            history = bench_history(first, frame, scale, work)
            project = first.committer.project
            exact = round_trip_exact(project, frame)
            project.close()
        with console.status("loads, each in a fresh process"):
            load = bench_load(["--kind", "nbmci", "--root", str(project.settings.root),
                               "--ref", f"{MODEL_NAME}@1", "--key", DATA_KEY], scale.reps, work)
            parquet_load = bench_load(["--kind", "parquet", "--path", str(baseline.path)],
                                      scale.reps, work)
        with console.status("MLflow"):
            python = None if args.no_mlflow else args.mlflow_python
            peer = bench_mlflow(python, baseline, history, model, scale.reps, work)
        with console.status(f"dedup at {len(SIZES[scale.name])} sizes"):
            sizes = bench_sizes(SIZES[scale.name], model, scale.reps, work)
    rows = budget_rows(baseline, first, history, load, parquet_load, scale)
    facts = {
        "rows": len(frame), "frame_bytes": int(frame.memory_usage(deep=True).sum()),
        "chunk_bytes": project.settings.chunk_bytes, "parquet_bytes": baseline.file_bytes,
        "first_commit_new_bytes": first.commit.new_bytes, "model_bytes": first.model_bytes,
        "new_bytes": {"recommits": [asdict(c) for c in history.recommits],
                      "fresh_recommits": [asdict(c) for c in history.fresh_recommits],
                      "appends": [asdict(c) for c in history.appends],
                      "delete": asdict(history.delete)},
        "store_bytes_first": history.store_bytes_first,
        "store_bytes_after_appends": history.store_bytes_after_appends,
        "load_frame_bytes": load.frame_bytes, "round_trip_exact": exact,
    }
    report(console, scale, facts, rows, peer, (baseline, first, history))
    console.print(budget_table(sizes, "dedup by size, nbmci's defaults (frame size in memory)"))
    missed = [r.step for r in sizes if r.ok is False]
    console.print(f"[bold red]{len(missed)} size budget(s) missed:[/] " + "; ".join(missed)
                  if missed else "[green]All size budgets met.[/]")
    if args.json:
        payload = {"environment": environment(scale), "facts": facts,
                   "rows": [r.to_dict() for r in rows], "mlflow": peer,
                   "sizes": [r.to_dict() for r in sizes]}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


def report(console: Console, scale: Scale, facts: dict[str, Any], rows: list[Row],
           peer: dict[str, Any], steps: tuple[Baseline, FirstCommit, History]) -> None:
    """Print the facts, the budget table and the MLflow table."""
    console.print(
        f"[bold]{scale.name}[/]: {facts['rows']:,} rows, "
        f"{format_value(facts['frame_bytes'], 'B')} in memory, Parquet "
        f"{format_value(facts['parquet_bytes'], 'B')}, chunk_bytes "
        f"{format_value(facts['chunk_bytes'], 'B')}, first commit stored "
        f"{format_value(facts['first_commit_new_bytes'], 'B')} (model "
        f"{format_value(facts['model_bytes'], 'B')}); median of {scale.reps} rep(s); "
        f"round trip {'exact' if facts['round_trip_exact'] else '[bold red]NOT EXACT[/]'}")
    console.print(budget_table(rows))
    if "skipped" in peer:
        console.print(f"MLflow: skipped: {peer['skipped']}")
    else:
        console.print(mlflow_table(peer, *steps))
        console.print(f"MLflow first log, by call: {mlflow_split(peer)}")
    missed = [r.step for r in rows if r.ok is False]
    if missed:
        console.print(f"[bold red]{len(missed)} budget(s) missed:[/] " + "; ".join(missed))
    else:
        console.print("[green]All budgets met.[/]")


if __name__ == "__main__":
    sys.exit(main())
