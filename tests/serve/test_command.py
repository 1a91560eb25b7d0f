"""``nbmci serve`` as a process: health through its life (SV-04), SIGTERM drains (SV-05) and a
second SIGTERM exits now."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest

from tests.serve.conftest import commit, fit, load_loop, wait_for

RUN = "import sys; from nbmci.serve.command import serve; serve(sys.argv[1:])"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def start(project: Any, iris_frame: Any, python: str) -> Any:
    X, y = iris_frame
    commit(project, fit(X, y), X, y)
    project.publish("iris@1", force=True)
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBMCI_")}
        proc = subprocess.Popen([python, "-c", RUN, "--port", str(port), "--log-level",
                                 "warning", "--poll-interval", "0.2", *args],
                                cwd=project.settings.root, env=env)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _status(f"{url}/v2/health/ready") == 200 or proc.poll() is not None,
                 timeout=60, step=0.1)
        assert proc.poll() is None, "nbmci serve exited at start"
        return proc, url

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_sv05_sigterm_turns_unready_then_drains_cleanly(start: Any) -> None:
    proc, url = start("--drain", "1.5")
    with load_loop(url) as seen:
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: _status(f"{url}/v2/health/ready") == 503)
        assert proc.wait(20) == 0
    statuses = {s for s, _ in seen}
    assert 200 in statuses
    assert not {s for s in statuses if s >= 500}, seen[-5:]


def test_sv05_a_second_sigterm_exits_at_once(start: Any) -> None:
    proc, url = start("--drain", "60")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: _status(f"{url}/v2/health/ready") == 503, timeout=2.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_sv04_health_through_the_whole_life(project: Any, iris_frame: Any, python: str) -> None:
    X, y = iris_frame
    commit(project, fit(X, y), X, y)  # committed, not yet published
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBMCI_")}
    proc = subprocess.Popen([python, "-c", RUN, "--port", str(port), "--log-level", "warning",
                             "--poll-interval", "0.1", "--model", "iris", "--drain", "1.5"],
                            cwd=project.settings.root, env=env)
    try:
        # start-up: alive as soon as it answers, not ready while no model is live
        wait_for(lambda: _status(f"{url}/v2/health/live") == 200 or proc.poll() is not None,
                 timeout=60, step=0.1)
        assert _status(f"{url}/v2/health/ready") == 503
        assert _status(f"{url}/v2/models/iris/ready") == 404
        assert httpx.post(f"{url}/v2/repository/index").json() == []
        project.publish("iris@1", force=True)
        wait_for(lambda: _status(f"{url}/v2/health/ready") == 200)
        assert _status(f"{url}/v2/models/iris/ready") == 200
        assert httpx.post(f"{url}/v2/repository/index").json() == [
            {"name": "iris", "version": "1", "state": "READY"}]

        # a swap: the old version serves until the new one is live, so ready never drops
        commit(project, fit(X, y, c=0.5), X, y)
        probes: list[int] = []
        stop = threading.Event()

        def probe() -> None:
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                probes.append(_status(f"{url}/v2/health/ready"))
                time.sleep(0.005)

        prober = threading.Thread(target=probe)
        prober.start()
        wait_for(lambda: probes)
        project.publish("iris@2", force=True)
        wait_for(lambda: httpx.post(f"{url}/v2/repository/index").json()[0]["version"] == "2")
        time.sleep(0.1)
        stop.set()
        prober.join(10)
        assert len(probes) >= 3 and set(probes) == {200}
        assert _status(f"{url}/v2/models/iris/versions/1/ready") == 404  # the index is the truth
        assert _status(f"{url}/v2/models/iris/versions/2/ready") == 200

        # shutdown: not ready once draining starts, still alive until it exits
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: _status(f"{url}/v2/health/ready") == 503, timeout=1.0)
        assert _status(f"{url}/v2/health/live") == 200
        assert _status(f"{url}/v2/models/iris/ready") == 503
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_only_the_first_swap_freezes_what_is_alive() -> None:
    import gc

    from nbmci.serve.command import _FreezeAfterFirstSwap
    from nbmci.serve.host import SwapEvent

    freeze = _FreezeAfterFirstSwap()
    gc.unfreeze()
    try:
        freeze(SwapEvent("m", "failed", 1))
        assert gc.get_freeze_count() == 0  # nothing went live yet
        freeze(SwapEvent("m", "swapped", 1))
        frozen = gc.get_freeze_count()
        assert frozen > 0
        cycles = [[] for _ in range(10)]  # new garbage-collected objects since then
        for item in cycles:
            item.append(item)
        freeze(SwapEvent("m", "swapped", 2))  # later versions stay collectable
        # (frozen objects freed meanwhile leave the count; a second freeze would add these)
        assert gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
