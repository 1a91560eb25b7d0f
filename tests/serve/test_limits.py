"""SV-06 (a predict that overruns the timeout) and SV-07 (more requests than the queue takes)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from nbmci.api import Project
from nbmci.config import load_settings
from nbmci.serve.app import create_app
from nbmci.serve.batching import MAX_STUCK
from nbmci.serve.settings import ServeSettings
from tests.serve.conftest import ROW, commit, run_server, wait_for

MARKER = 999.0  # a request whose first value is this makes the model sleep
SLEEP = 1.5
TIMEOUT = 0.4
QUEUE = 8  # rows


class SlowOnMarker:
    """Predicts 0 for every row; first sleeps ``SLEEP`` seconds if a row starts with MARKER.
    A plain Python model: stored as a pickle, vouched for at commit."""

    def predict(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if (X[:, 0] == MARKER).any():
            time.sleep(SLEEP)
        return np.zeros(len(X), dtype=np.int64)


@contextmanager
def _slow_server(root: Path, iris_frame: Any, timeout: float) -> Iterator[Any]:
    """``SlowOnMarker`` in production behind a server with ``timeout`` and a small queue."""
    (root / ".nbmci").mkdir(mode=0o700)
    project = Project(load_settings(root))
    X, y = iris_frame
    commit(project, SlowOnMarker(), X, y, name="slow", trust=True)
    project.publish("slow@1", force=True)
    settings = ServeSettings(poll_interval=0.05, timeout=timeout, max_queue=QUEUE)
    try:
        with run_server(create_app(settings, project=project)) as server:
            wait_for(lambda: server.state.host.is_ready)
            yield server
    finally:
        project.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, iris_frame: Any) -> Iterator[Any]:
    with _slow_server(tmp_path_factory.mktemp("limits"), iris_frame, TIMEOUT) as server:
        yield server


def _post(url: str, row: list[float], results: list[Any]) -> None:
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as http:
        answer = http.post("/invocations", json={"instances": [row]})
    results.append((answer, time.monotonic() - started))


def _in_threads(url: str, rows: list[list[float]]) -> list[Any]:
    results: list[Any] = []
    threads = [threading.Thread(target=_post, args=(url, row, results)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return results


def _settled(server: Any) -> None:
    """Wait until no overrunning predict is still sleeping."""
    wait_for(lambda: not any(server.state.batcher._stuck.values()), timeout=10)


def test_sv06_a_predict_past_the_timeout_answers_504_and_frees_the_worker(running: Any) -> None:
    _settled(running)
    slow: list[Any] = []
    thread = threading.Thread(target=_post, args=(running.url, [MARKER, 0, 0, 0], slow))
    thread.start()
    time.sleep(0.1)
    with running.client() as http:
        assert http.get("/v2/health/live").status_code == 200  # the loop is not blocked
        started = time.monotonic()
        normal = http.post("/invocations", json={"instances": [ROW]})
        waited = time.monotonic() - started
        thread.join(10)
        answer, took = slow[0]
        assert answer.status_code == 504
        assert answer.json()["type"] == "PredictTimeoutError"
        assert "did not answer within 0.4 s" in answer.json()["error"]
        assert TIMEOUT <= took < SLEEP  # answered at the timeout, not when predict returned
        assert normal.status_code == 200  # the worker went on without the sleeping predict
        assert waited < SLEEP
        metrics = http.get("/metrics").text
    assert 'nbmci_predict_timeouts_total{model="slow"}' in metrics
    _settled(running)


def test_sv06_a_model_stuck_in_overruns_is_refused_fast_until_they_end(running: Any) -> None:
    _settled(running)
    with running.client() as http:
        for _ in range(MAX_STUCK):  # one after another: each overruns on a thread of its own
            answer = http.post("/invocations", json={"instances": [[MARKER, 0, 0, 0]]})
            assert answer.status_code == 504
        wait_for(lambda: running.state.batcher._stuck["slow"] == MAX_STUCK, timeout=2)
        started = time.monotonic()
        refused = http.post("/invocations", json={"instances": [ROW]})
        assert time.monotonic() - started < TIMEOUT
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "ModelStuckError"
        _settled(running)
        assert http.post("/invocations", json={"instances": [ROW]}).status_code == 200


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory, iris_frame: Any) -> Iterator[Any]:
    """The slow model behind a server whose timeout outlasts its sleep: the queue fills."""
    with _slow_server(tmp_path_factory.mktemp("queue"), iris_frame, SLEEP * 4) as server:
        yield server


def test_sv07_excess_requests_get_429_quickly_and_admitted_ones_finish(patient: Any) -> None:
    async def burst() -> list[tuple[int, dict[str, str], float]]:
        async with httpx.AsyncClient(base_url=patient.url, timeout=10,
                                     limits=httpx.Limits(max_connections=64)) as http:
            async def post(row: list[float], delay: float) -> tuple[int, dict[str, str], float]:
                await asyncio.sleep(delay)
                started = time.monotonic()
                answer = await http.post("/invocations", json={"instances": [row]})
                return answer.status_code, dict(answer.headers), time.monotonic() - started

            blocker = post([MARKER, 0, 0, 0], 0)  # holds the model for SLEEP seconds
            rest = [post(ROW, 0.3) for _ in range(QUEUE * 3)]
            return await asyncio.gather(blocker, *rest)

    answers = asyncio.run(burst())
    assert answers[0][0] == 200
    statuses = [status for status, _, _ in answers[1:]]
    assert set(statuses) == {200, 429}, statuses
    assert statuses.count(200) == QUEUE  # one row each: exactly the queue's worth got in
    for status, headers, took in answers[1:]:
        if status == 429:
            assert headers["retry-after"] == "1"
            assert took < SLEEP / 2  # refused at once, not after waiting
        else:
            assert took < SLEEP * 2  # admitted ones finish right after the blocker
