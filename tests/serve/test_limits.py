"""SV-06 (a predict that overruns the timeout) and SV-07 (more requests than the queue takes)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
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

MARKER = 999.0  # a request whose first value is this holds the model until the gate opens
TIMEOUT = 0.4
QUEUE = 8  # rows
HOLD_LIMIT = 30.0  # seconds a held predict waits at most, should a test fail to release it


class Gate:
    """Files a held predict and the test meet at: the server loads the model's code from the
    version's own copy of this module, so the two share no Python objects."""

    def __init__(self, directory: Path) -> None:
        self.entered = directory / "entered"
        self.released = directory / "released"

    def hold(self) -> None:
        self.entered.touch()
        deadline = time.monotonic() + HOLD_LIMIT
        while not self.released.exists() and time.monotonic() < deadline:
            time.sleep(0.005)

    def wait_entered(self, timeout: float = 10.0) -> bool:
        return bool(wait_for(self.entered.exists, timeout=timeout))

    def close(self) -> None:
        self.entered.unlink(missing_ok=True)
        self.released.unlink(missing_ok=True)

    def release(self) -> None:
        self.released.touch()

    def is_released(self) -> bool:
        return self.released.exists()


class SlowOnMarker:
    """Predicts 0 for every row; a batch with a row starting with MARKER first waits for the
    test to open its gate, so a test knows for certain the predict is still running (no
    timing). A plain Python model: stored as a pickle, vouched for at commit."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def predict(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if (X[:, 0] == MARKER).any():
            self.gate.hold()
        return np.zeros(len(X), dtype=np.int64)


GATE = Gate(Path(tempfile.mkdtemp(prefix="nbmci-gate-")))


@pytest.fixture(autouse=True)
def _held() -> Iterator[None]:
    """Each test starts with predicts held and ends with them released."""
    GATE.close()
    yield
    GATE.release()


@pytest.fixture(scope="module", autouse=True)
def _gate_removed() -> Iterator[None]:
    yield
    shutil.rmtree(GATE.entered.parent, ignore_errors=True)


@contextmanager
def _slow_server(root: Path, iris_frame: Any, timeout: float) -> Iterator[Any]:
    """``SlowOnMarker`` in production behind a server with ``timeout`` and a small queue."""
    (root / ".nbmci").mkdir(mode=0o700)
    project = Project(load_settings(root))
    X, y = iris_frame
    commit(project, SlowOnMarker(GATE), X, y, name="slow", trust=True)
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
    with httpx.Client(base_url=url, timeout=10) as http:
        results.append(http.post("/invocations", json={"instances": [row]}))


def _in_threads(url: str, rows: list[list[float]]) -> list[Any]:
    results: list[Any] = []
    threads = [threading.Thread(target=_post, args=(url, row, results)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return results


def _overrunning(server: Any) -> float:
    """``nbmci_predicts_overrunning`` of the slow model, from the server's /metrics."""
    text = server.client().get("/metrics").text
    line = next((line for line in text.splitlines()
                 if line.startswith('nbmci_predicts_overrunning{model="slow"}')), None)
    return float(line.split()[-1]) if line else 0.0


def _settled(server: Any) -> None:
    """Release held predicts and wait until none is still running."""
    GATE.release()
    wait_for(lambda: _overrunning(server) == 0, timeout=10)


def test_sv06_a_predict_past_the_timeout_answers_504_and_frees_the_worker(running: Any) -> None:
    slow: list[Any] = []
    thread = threading.Thread(target=_post, args=(running.url, [MARKER, 0, 0, 0], slow))
    thread.start()
    assert GATE.wait_entered()
    with running.client() as http:
        assert http.get("/v2/health/live").status_code == 200  # the loop is not blocked
        thread.join(10)
        answer, = slow  # answered while its predict is still held: at the timeout
        assert answer.status_code == 504
        assert answer.json()["type"] == "PredictTimeoutError"
        assert "did not answer within 0.4 s" in answer.json()["error"]
        normal = http.post("/invocations", json={"instances": [ROW]})
        assert normal.status_code == 200  # the worker went on without the held predict
        assert not GATE.is_released() and _overrunning(running) == 1
        metrics = http.get("/metrics").text
    assert 'nbmci_predict_timeouts_total{model="slow"}' in metrics
    _settled(running)


def test_sv06_a_model_stuck_in_overruns_is_refused_until_they_end(running: Any) -> None:
    with running.client() as http:
        for _ in range(MAX_STUCK):  # one after another: each overruns on a thread of its own
            answer = http.post("/invocations", json={"instances": [[MARKER, 0, 0, 0]]})
            assert answer.status_code == 504
        wait_for(lambda: _overrunning(running) == MAX_STUCK)
        refused = http.post("/invocations", json={"instances": [ROW]})
        assert refused.status_code == 503  # not queued behind them (that would be a 504)
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "ModelStuckError"
        _settled(running)
        assert http.post("/invocations", json={"instances": [ROW]}).status_code == 200


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory, iris_frame: Any) -> Iterator[Any]:
    """The slow model behind a server whose timeout outlasts a held predict: the queue fills."""
    with _slow_server(tmp_path_factory.mktemp("queue"), iris_frame, HOLD_LIMIT) as server:
        yield server


def test_sv07_excess_requests_get_429_quickly_and_admitted_ones_finish(patient: Any) -> None:
    async def burst() -> tuple[httpx.Response, list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=patient.url, timeout=10,
                                     limits=httpx.Limits(max_connections=64)) as http:
            def post(row: list[float]) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(http.post("/invocations", json={"instances": [row]}))

            blocker = post([MARKER, 0, 0, 0])  # holds the model until the gate opens
            assert await asyncio.to_thread(GATE.wait_entered)
            rest = [post(ROW) for _ in range(QUEUE * 3)]
            refused: list[httpx.Response] = []
            pending = set(rest)
            while len(refused) < QUEUE * 2 and pending:  # all answered with the model held
                done, pending = await asyncio.wait(pending, timeout=10,
                                                   return_when=asyncio.FIRST_COMPLETED)
                assert done, "the excess requests were not refused while the model was held"
                refused += [task.result() for task in done]
            GATE.release()
            return await blocker, refused, [await task for task in pending]

    blocked, refused, admitted = asyncio.run(burst())
    assert blocked.status_code == 200
    assert [a.status_code for a in refused] == [429] * (QUEUE * 2)  # at once: before release
    assert all(a.headers["retry-after"] == "1" for a in refused)
    assert [a.status_code for a in admitted] == [200] * QUEUE  # exactly the queue's worth
