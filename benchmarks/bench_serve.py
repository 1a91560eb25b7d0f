"""``nbmci serve`` against ``mlflow models serve`` and the HTTP floor, side by side, with wrk.

    python -m benchmarks.bench_serve                 # 10 s per run, 1/16/64 connections, 3 rounds
    python -m benchmarks.bench_serve --duration 3 --rounds 1   # quicker
    python -m benchmarks.bench_serve --servers nbmci,floor --models logreg   # while tuning

Models: LogisticRegression on scikit-learn's breast_cancer data and a 100-tree RandomForest.
Every request is one row. The HTTP floor is a bare uvicorn[standard] route that parses the same
JSON body with orjson and returns a constant. Budgets (issue 5): at 16 and 64 connections
nbmci's throughput >= 20x MLflow's and >= 0.5x the floor's; p99 <= 0.1x MLflow's at every
concurrency. Served rows/s are also shown as a fraction of in-process ``predict`` throughput
(one numpy row per call).
The one-connection cell is also run with wrk on the server's own CPU ("1 same core", see
``CELLS``). While it runs, the benchmark asks the kernel for polling CPU idle (``--cpu-idle``,
see ``polling_idle``), as latency-tuned hosts do; every server runs under the same setting.
MLflow runs from its own venv (``--mlflow-python``, default /work/mlflow-venv/bin/python).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# (label, connections, same core): the extra "1 same core" cell runs wrk on the server's CPU.
# One sequential client needs no second core, and sharing one spares it the cross-CPU wake-up
# that each request and answer otherwise pays, about 0.2 ms at the median and 1 ms at p99 on
# these VMs for every server alike (the HTTP floor's own p99 is over 1 ms without it).
CELLS = (("1", 1, False), ("1 same core", 1, True), ("16", 16, False), ("64", 64, False))
SERVERS = ("nbmci", "mlflow", "floor")
MODELS = ("logreg", "forest", "mixed", "text")
V2_MODELS = ("mixed", "text")  # also measured through the v2 route (issue 14)
FLOOR = """
import orjson
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"predictions": [0]}'})
"""
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""
MLFLOW_SAVE = """
import sys, skops.io as sio, mlflow.sklearn
data = open(sys.argv[1], "rb").read()
model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
mlflow.sklearn.save_model(model, sys.argv[2],
                          skops_trusted_types=sio.get_untrusted_types(data=data))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def polling_idle(wanted: bool) -> Iterator[str]:
    """Hold ``/dev/cpu_dma_latency`` at 0 (as tuned's latency-performance profile does), so
    idle CPUs poll instead of halting; yields what the run gets, for the report.

    On these VMs a halted vCPU that a request wakes costs a VM exit and a host reschedule:
    about 0.2 ms at the median and 1-3 ms at p99 on every request leg, for every server alike,
    which buries one-connection latency in the hypervisor's noise. The setting lasts while the
    file is open."""
    if not wanted:
        yield "default (halting)"
        return
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError as exc:
        yield f"default (polling unavailable: {exc.strerror})"
        return
    try:
        os.write(fd, struct.pack("i", 0))
        yield "polling (cpu_dma_latency 0)"
    finally:
        os.close(fd)


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``mlflow models serve`` runs uvicorn as a child)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(child) for child in task.read_text().split()]
    return found


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid``'s process tree onto ``cpus``."""
    for process in _process_tree(pid):
        for thread in Path(f"/proc/{process}/task").iterdir():
            try:
                os.sched_setaffinity(int(thread.name), cpus)
            except ProcessLookupError:  # a thread that just ended
                pass


def wrk(url: str, body: str, connections: int, duration: float, workdir: Path,
        same_core_as: int | None = None) -> dict[str, float]:
    """One wrk run; with ``same_core_as`` (a server pid), wrk and that server share CPU 0."""
    script = workdir / "post.lua"
    script.write_text(LUA.format(body=body))
    everywhere = os.sched_getaffinity(0)
    if same_core_as is not None:
        _pin(same_core_as, {0})
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s",
             str(script), url], capture_output=True, text=True, check=True,
            timeout=duration + 60,
            preexec_fn=None if same_core_as is None else lambda: os.sched_setaffinity(0, {0}),
        ).stdout
    finally:
        if same_core_as is not None:
            _pin(same_core_as, everywhere)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else -1,
            "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
            "socket_errors": errors.group(0) if errors else ""}  # type: ignore[dict-item]


CITIES = ["Amsterdam", "Berlin", "Cairo", "Delhi", "Lagos", "Lima", "Oslo", "Seoul"]
REVIEWS = ["great value, works well", "broke after a week", "fine for the price",
           "terrible support, never again", "love it", "does the job", "arrived late",
           "better than expected"]


def _mixed() -> tuple[Any, Any, Any]:
    """StandardScaler on 4 numeric columns and OneHotEncoder on 4 string columns into a
    LogisticRegression (issue 14's mixed-type pipeline)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    rows = 5000
    X = pd.DataFrame({f"n{i}": rng.normal(size=rows) for i in range(4)}
                     | {f"s{i}": rng.choice(CITIES, rows) for i in range(4)})
    y = pd.Series(np.where(X["n0"] + (X["s0"] == "Oslo") > 0.5, "yes", "no"), name="label")
    model = make_pipeline(ColumnTransformer([
        ("num", StandardScaler(), [f"n{i}" for i in range(4)]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [f"s{i}" for i in range(4)])]),
        LogisticRegression(max_iter=1000)).fit(X, y)
    return model, {"X_train": X, "y_train": y}, X.iloc[:1]


def _text() -> tuple[Any, Any, Any]:
    """TfidfVectorizer into a LinearSVC on a text Series: one short text per request."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    texts = pd.Series(REVIEWS * 250, name="review")
    labels = pd.Series(["pos", "neg", "pos", "neg", "pos", "pos", "neg", "pos"] * 250,
                       name="mood")
    model = make_pipeline(TfidfVectorizer(), LinearSVC()).fit(texts, labels)
    return model, {"reviews": texts, "mood": labels}, texts.iloc[:1]


def make_project(directory: Path, names: list[str]) -> tuple[Any, dict[str, Any]]:
    """The project serving ``names``, and each model's one-row input."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from nbmci import api

    directory.mkdir(parents=True)
    project = api.init(directory)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    made = {"logreg": lambda: (LogisticRegression(max_iter=5000).fit(X, y),
                               {"X_train": X, "y_train": y}, X.iloc[:1]),
            "forest": lambda: (RandomForestClassifier(n_estimators=100, random_state=0)
                               .fit(X, y), {"X_train": X, "y_train": y}, X.iloc[:1]),
            "mixed": _mixed, "text": _text}
    rows = {}
    for name in names:
        model, data, row = made[name]()
        project.commit(model, data, name=name)
        project.publish(f"{name}@1", force=True)
        rows[name] = row
    return project, rows


def bodies(row: Any) -> dict[str, str]:
    """The one-row request of each protocol: MLflow's (what MLflow is sent too) and v2's."""
    import pandas as pd

    if isinstance(row, pd.Series):  # one text
        texts = row.tolist()
        return {"mlflow": json.dumps({"inputs": texts}),
                "v2": json.dumps({"inputs": [{"name": row.name, "datatype": "BYTES",
                                              "shape": [len(texts)], "data": texts}]})}
    values = row.iloc[0].tolist()
    numeric = all(isinstance(v, float | int) for v in values)
    v2 = [{"name": "input__0", "datatype": "FP64", "shape": [1, len(values)],
           "data": values}] if numeric else [
        {"name": str(c), "datatype": "FP64" if isinstance(v, float) else "BYTES",
         "shape": [1], "data": [v]} for c, v in zip(row.columns, values, strict=True)]
    return {"mlflow": json.dumps({"dataframe_split": {"columns": [str(c) for c in row.columns],
                                                      "data": [values]}}),
            "v2": json.dumps({"inputs": v2})}


def in_process_rows_per_s(model: Any, row: Any) -> float:
    """``model.predict`` calls per second on one row (a numpy row for numeric models, as
    issue 5 measures it; a one-row DataFrame or one text otherwise)."""
    import warnings

    import pandas as pd

    X = row
    if isinstance(row, pd.DataFrame) and all(k in "biuf" for k in row.dtypes.map(
            lambda d: d.kind)):
        X = row.to_numpy()
    count, started = 0, time.perf_counter()
    with warnings.catch_warnings():  # fit on a DataFrame: "X does not have valid feature names"
        warnings.simplefilter("ignore", UserWarning)
        while time.perf_counter() - started < 1.0:
            model.predict(X)
            count += 1
    return count / (time.perf_counter() - started)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """All servers up at once; each (model, connections) measured on every server in turn,
    ``--rounds`` times, so a slow spell of a shared machine hits all servers alike. Each
    server's best round is kept: its highest req/s and its lowest p99 (noise only ever slows
    a run down)."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    project, rows = make_project(work / "project", args.models)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBMCI_")}
    (work / "floor.py").write_text(FLOOR)
    cells = [c for c in CELLS if not c[2] or len(os.sched_getaffinity(0)) > 1]
    procs: list[subprocess.Popen[bytes]] = []
    runs: dict[tuple[str, str, str, float], list[dict[str, Any]]] = {}
    try:
        targets = []  # (model, server, url, body, in-process predict rows/s, pid)
        for name in args.models:
            version = project.show(f"{name}@1")
            body = bodies(rows[name])
            predict_rps = in_process_rows_per_s(project.load(f"{name}@1"), rows[name])
            for peer in args.servers:
                url = start_server(peer, name, version, project, work, env, args, procs)
                wrk(url, body["mlflow"], 1, 1, work)  # warm-up
                targets.append((name, peer, url, body["mlflow"], predict_rps, procs[-1].pid))
                if peer == "nbmci" and name in V2_MODELS:  # the same server, in v2
                    v2_url = url.removesuffix("/invocations") + f"/v2/models/{name}/infer"
                    targets.append((name, "nbmci-v2", v2_url, body["v2"], predict_rps,
                                    procs[-1].pid))
        check_answers(targets)
        for round_ in range(args.rounds):
            for name in args.models:
                for label, connections, same_core in cells:
                    for model, peer, url, body, predict_rps, pid in targets:
                        if model != name:
                            continue
                        stats = wrk(url, body, connections, args.duration, work,
                                    pid if same_core else None)
                        print(f"round {round_ + 1} {name:7} {peer:7} c={label:<12} "
                              f"{stats['rps']:9.0f} req/s p99 {stats['p99_ms']:8.2f} ms "
                              f"non-2xx {stats['non2xx']:.0f}", flush=True)
                        runs.setdefault((name, peer, label, predict_rps), []).append(stats)
    finally:
        for proc in procs:
            stop(proc)
        project.close()
        shutil.rmtree(work, ignore_errors=True)
    return [{"model": name, "server": peer, "connections": label,
             "predict_rps": predict_rps, "rps": max(r["rps"] for r in rounds),
             "p99_ms": min(r["p99_ms"] for r in rounds),
             "non2xx": sum(r["non2xx"] for r in rounds)}
            for (name, peer, label, predict_rps), rounds in runs.items()]


def _post(url: str, body: str) -> Any:
    request = urllib.request.Request(url, data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def check_answers(targets: list[tuple[Any, ...]]) -> None:
    """nbmci must answer MLflow's request for each model as ``mlflow models serve`` does."""
    for name in dict.fromkeys(t[0] for t in targets):
        answers = {peer: _post(url, body)["predictions"] for model, peer, url, body, *_ in
                   targets if model == name and peer in ("nbmci", "mlflow")}
        if len(answers) == 2:
            same = np.allclose(answers["nbmci"], answers["mlflow"], rtol=1e-9) \
                if all(isinstance(v, float | int) for v in np.ravel(answers["nbmci"])) \
                else answers["nbmci"] == answers["mlflow"]
            print(f"{name}: nbmci's answer {'equals' if same else 'DIFFERS FROM'} MLflow's "
                  f"({answers['nbmci']!r:.60})", flush=True)


def start_server(peer: str, name: str, version: Any, project: Any, work: Path,
                 env: dict[str, str], args: argparse.Namespace,
                 procs: list[subprocess.Popen[bytes]]) -> str:
    """Start ``peer`` serving ``name`` on a free port; the URL to POST rows to."""
    if peer == "mlflow":
        blob = work / f"{name}.skops"
        blob.write_bytes(project.store.get(version.model.digest))
        mlflow_dir = work / f"mlflow-{name}"
        subprocess.run([args.mlflow_python, "-c", MLFLOW_SAVE, str(blob), str(mlflow_dir)],
                       check=True, timeout=300)
    command, ready, path, cwd = {
        "nbmci": ([sys.executable, "-c", "import sys; from nbmci.serve.command import "
                   "serve; serve(sys.argv[1:])", "--model", name, "--log-level", "warning",
                   "--port"], "/v2/health/ready", "/invocations", work / "project"),
        "mlflow": ([str(Path(args.mlflow_python).parent / "mlflow"), "models", "serve",
                    "-m", str(work / f"mlflow-{name}"), "--env-manager", "local", "-h",
                    "127.0.0.1", "-p"], "/ping", "/invocations", work),
        "floor": ([sys.executable, "-m", "uvicorn", "floor:app", "--log-level", "warning",
                   "--no-access-log", "--port"], "/", "/", work),
    }[peer]
    port = free_port()
    # mlflow starts `uvicorn` from PATH: its own venv's
    search = f"{Path(command[0]).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen([*command, str(port)], cwd=cwd, env={**env, "PATH": search},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    if peer == "floor":
        time.sleep(2)  # the floor answers POST only
    else:
        wait_http(url + ready, proc)
    return url + path


def report(results: list[dict[str, Any]]) -> None:
    def find(model: str, server: str, c: str) -> dict[str, Any] | None:
        return next((r for r in results if r["model"] == model and r["server"] == server
                     and r["connections"] == c), None)

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str, digits: int) -> str:
        return f"{a[key] / b[key]:.{digits}f}" if a and b else "-"

    def cell(r: dict[str, Any] | None, key: str, fmt: str) -> str:
        return format(r[key], fmt) if r else "-"

    print("\n| model | conns | nbmci req/s | mlflow req/s | floor req/s | x mlflow (>=20) | "
          "x floor (>=0.5) | nbmci p99 ms | mlflow p99 ms | p99 ratio (<=0.1) | "
          "rows/s vs predict |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [(model, server, c) for model in sorted({r["model"] for r in results
                                                     if r["server"] != "floor"})
             for c, _, _ in CELLS for server in ("nbmci", "nbmci-v2")]
    for model, server, c in lines:
        n, m, f = find(model, server, c), find(model, "mlflow", c), find(model, "floor", c)
        if not n:
            continue
        label = model if server == "nbmci" else f"{model} (v2)"
        print(f"| {label} | {c} | {n['rps']:.0f} | {cell(m, 'rps', '.0f')} | "
              f"{cell(f, 'rps', '.0f')} | {ratio(n, m, 'rps', 1)} | {ratio(n, f, 'rps', 2)} | "
              f"{n['p99_ms']:.2f} | {cell(m, 'p99_ms', '.2f')} | "
              f"{ratio(n, m, 'p99_ms', 3)} | {n['rps'] / n['predict_rps']:.2f} |")
    bad = [r for r in results if r["non2xx"]]
    if bad:
        print(f"\nNon-2xx answers in {len(bad)} runs: "
              f"{[(r['model'], r['server'], r['connections']) for r in bad]}")


def _default_mlflow_python() -> str:
    own = Path("/work/mlflow-venv/bin/python")
    return str(own) if own.exists() else sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure every server this many times; the best round counts")
    parser.add_argument("--cpu-idle", choices=("poll", "default"), default="poll",
                        help="poll: hold /dev/cpu_dma_latency at 0 for the run (needs root); "
                             "default: leave the CPUs' idle states alone")
    parser.add_argument("--mlflow-python", default=_default_mlflow_python(),
                        help="an interpreter with mlflow (default: /work/mlflow-venv's, "
                             "else this one)")
    parser.add_argument("--servers", type=lambda s: s.split(","), default=list(SERVERS),
                        help="comma-separated subset of nbmci,mlflow,floor")
    parser.add_argument("--models", type=lambda s: s.split(","), default=list(MODELS),
                        help="comma-separated subset of logreg,forest,mixed,text")
    args = parser.parse_args()
    with polling_idle(args.cpu_idle == "poll") as idle:
        print(f"CPU idle: {idle}", flush=True)
        results = run(args)
    print(f"\nCPU idle: {idle}")
    report(results)


if __name__ == "__main__":
    main()
