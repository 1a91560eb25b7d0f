"""Benchmark steps that must run in a fresh process, each printing one JSON object.

Each writes its result to the file named by ``--result``; stdout is left to the libraries.

``load``   times ``nbmci.load_data`` or ``pd.read_parquet`` and reports the peak RSS the first
           load added, which is only meaningful in a process that has loaded nothing yet.
``mlflow`` logs the same data and model to MLflow. It runs under whichever interpreter has
           MLflow installed (often a separate venv, since MLflow pins pyarrow), so this module
           imports only the standard library at the top and never imports nbmci there.

Run by ``benchmarks.bench_commit``; not meant to be called by hand. Example::

    python -m benchmarks.workers --result out.json load --kind parquet --path data.parquet
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def tree_bytes(root: Path) -> int:
    """Sum of the sizes of every regular file under ``root``."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def current_rss() -> int:
    """This process's resident set size in bytes, read from /proc (Linux) when possible."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(wall seconds, result)`` of one call, after a garbage collection."""
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# -- load ----------------------------------------------------------------------------------


def _loader(args: argparse.Namespace) -> Callable[[], Any]:
    """The call to time: ``load_data`` of an open project, or ``read_parquet`` of a file."""
    import pandas as pd
    import pyarrow  # noqa: F401  (both sides start with Arrow imported)

    if args.kind == "parquet":
        return lambda: pd.read_parquet(args.path)
    from nbmci.api import Project
    from nbmci.config import load_settings
    from nbmci.snapshot import tables  # noqa: F401

    project = Project(load_settings(args.root))
    project.show(args.ref)  # opens the registry: a session that has used nbmci before
    return lambda: project.load_data(args.ref)[args.key]


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.reps`` loads; the first one, in this fresh process, also gives peak RSS."""
    load = _loader(args)
    before = current_rss()
    seconds, frame = timed(load)
    peak_delta = peak_rss() - before
    rows, nbytes = len(frame), int(frame.memory_usage(deep=True).sum())
    del frame
    times = [seconds]
    for _ in range(args.reps - 1):
        seconds, frame = timed(load)
        times.append(seconds)
        del frame
    return {"seconds": times, "median": statistics.median(times), "peak_rss_delta": peak_delta,
            "rows": rows, "frame_bytes": nbytes}


# -- mlflow --------------------------------------------------------------------------------


def _log_once(mlflow: Any, frame: Any, model: Any, trusted: list[str],
              scratch: Path) -> dict[str, float]:
    """One MLflow "commit": a run with the dataset input, its Parquet file and the model."""
    steps: dict[str, float] = {}
    with mlflow.start_run():
        steps["from_pandas"], dataset = timed(lambda: mlflow.data.from_pandas(frame, name="train"))
        steps["log_input"], _ = timed(lambda: mlflow.log_input(dataset, context="training"))
        path = scratch / "train.parquet"
        steps["to_parquet"], _ = timed(lambda: frame.to_parquet(path))
        steps["log_artifact"], _ = timed(lambda: mlflow.log_artifact(str(path), "data"))
        steps["log_model"], _ = timed(lambda: mlflow.sklearn.log_model(
            model, name="model", skops_trusted_types=trusted))
    path.unlink()
    steps["total"] = sum(steps.values())
    return steps


def _fresh_tracking(mlflow: Any, root: Path) -> Path:
    """Point MLflow at an empty local store under ``root``: a SQLite tracking database (its
    default since the file store went into maintenance mode) and an artifacts directory."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    artifacts = (root / "artifacts").as_uri()
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench", artifacts))
    return root


def run_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    """Median first-log time over fresh stores, then store size after the same appends."""
    try:
        import joblib
        import mlflow
        import mlflow.sklearn
        import pandas as pd
        import skops.io as sio
    except ImportError as exc:
        return {"skipped": f"mlflow not installed ({exc.name})"}
    out = Path(args.out)
    frame = pd.read_parquet(args.base)
    model = joblib.load(args.model)
    # MLflow saves sklearn models with skops and asks which types to trust: the committer's
    # own model's, as nbmci approves them at commit.
    trusted = sio.get_untrusted_types(data=sio.dumps(model))
    first = []
    for rep in range(args.reps):
        tracking = _fresh_tracking(mlflow, out / f"rep-{rep}")
        first.append(_log_once(mlflow, frame, model, trusted, out))
    first_bytes = tree_bytes(tracking)
    appends = []
    for delta in args.appends:  # the last rep's store grows, as nbmci's does
        frame = pd.concat([frame, pd.read_parquet(delta)], ignore_index=True)
        appends.append(_log_once(mlflow, frame, model, trusted, out))
    return {
        "version": mlflow.__version__,
        "first": first,
        "first_median": statistics.median(s["total"] for s in first),
        "append_median": statistics.median(s["total"] for s in appends) if appends else None,
        "store_bytes_first": first_bytes,
        "store_bytes_after_appends": tree_bytes(tracking),
        "appends": len(appends),
    }


# -- command line --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers")
    parser.add_argument("--result", required=True, help="file to write the JSON result to")
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="time one loader in this fresh process")
    load.add_argument("--kind", choices=("nbmci", "parquet"), required=True)
    load.add_argument("--path", help="Parquet file (kind=parquet)")
    load.add_argument("--root", help="project directory (kind=nbmci)")
    load.add_argument("--ref", help="version reference, e.g. bench@1 (kind=nbmci)")
    load.add_argument("--key", default="train", help="data key within the version")
    load.add_argument("--reps", type=int, default=1)
    peer = sub.add_parser("mlflow", help="log the data and model to MLflow")
    peer.add_argument("--base", required=True, help="Parquet file of the first dataset")
    peer.add_argument("--model", required=True, help="joblib file of the fitted model")
    peer.add_argument("--out", required=True, help="scratch directory for the tracking store")
    peer.add_argument("--appends", nargs="*", default=[], help="Parquet files of appended rows")
    peer.add_argument("--reps", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = run_load(args) if args.command == "load" else run_mlflow(args)
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
