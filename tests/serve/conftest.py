"""A real uvicorn server on 127.0.0.1:0 in a thread, over a real project; one per module."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nbmci.api import Project
from nbmci.config import load_settings
from nbmci.serve.app import ServingApp, create_app
from nbmci.serve.settings import ServeSettings
from nbmci.serve.transport import GatheringHttpProtocol

TOKEN = "test-token-0123456789"


@dataclass
class Running:
    url: str
    server: Any
    thread: threading.Thread
    app: Any

    @property
    def state(self) -> Any:
        return self.app.state.serve

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **options)


@contextmanager
def run_server(app: Any, *, startup_timeout: float = 20.0) -> Iterator[Running]:
    """Serve ``app`` with uvicorn on an ephemeral loopback port until the block exits."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on",
                            http=GatheringHttpProtocol,  # as `nbmci serve` runs it
                            timeout_graceful_shutdown=5, access_log=False)
    server = uvicorn.Server(config)
    if isinstance(app, ServingApp):
        app.count_requests_with(server.server_state.tasks)  # as `nbmci serve` does
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{port}", server, thread, app)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


@pytest.fixture(scope="module")
def iris_frame() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def fit(X: Any, y: Any, c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500, C=c).fit(X, y)


def broken(X: Any, y: Any) -> Any:
    """A safe (skops) model whose predict raises: its coefficients have the wrong width."""
    import numpy as np

    model = fit(X, y)
    model.coef_ = np.zeros((3, 2))
    return model


def commit(project: Project, model: Any, X: Any, y: Any, name: str = "iris",
           **options: Any) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pickle fallback warns, on purpose
        version = project.commit(model, {"X_train": X, "y_train": y}, name=name, **options)
    return version.version


@pytest.fixture(scope="module")
def make_serving(tmp_path_factory: pytest.TempPathFactory,
                 iris_frame: tuple[Any, Any]) -> Iterator[Callable[..., Any]]:
    """``make_serving(**settings)`` -> (project, running server) with iris@1 in production."""
    made: list[Any] = []

    def make(**overrides: Any) -> tuple[Project, Running]:
        root: Path = tmp_path_factory.mktemp("serve")
        (root / ".nbmci").mkdir(mode=0o700)
        project = Project(load_settings(root))
        X, y = iris_frame
        commit(project, fit(X, y), X, y)
        project.publish("iris@1", force=True)
        settings = ServeSettings(**{"poll_interval": 0.1, "token": TOKEN, **overrides})
        context = run_server(create_app(settings, project=project))
        running = context.__enter__()
        made.append((project, context))
        wait_for(lambda: running.state.host.is_ready)
        return project, running

    yield make
    for project, context in reversed(made):
        context.__exit__(None, None, None)
        project.close()


@pytest.fixture(scope="module")
def serving(make_serving: Callable[..., Any]) -> tuple[Project, Running]:
    return make_serving()  # type: ignore[no-any-return]


def numeric_live(model: Any, features: tuple[str, ...], *, version: int = 1,
                 missing_ok: bool = False, **options: Any) -> Any:
    """A ``LiveModel`` of a numeric model taking ``features``, for tests below the server."""
    from dataclasses import replace

    from nbmci.serve.live import LiveModel
    from nbmci.snapshot.schema import legacy_schema

    schema = legacy_schema({"inputs": [{"name": n} for n in features]})
    schema = schema.with_columns([replace(c, takes_missing=missing_ok) for c in schema.columns])
    return LiveModel(name="m", version=version, model=model, schema=schema, output="predict",
                     class_name=type(model).__name__, **options)


ROW = [5.1, 3.5, 1.4, 0.2]
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def client(serving: tuple[Project, Running]) -> Iterator[httpx.Client]:
    """An HTTP client of the module's ``serving`` server."""
    _, running = serving
    with running.client() as http:
        yield http


@contextmanager
def load_loop(url: str) -> Iterator[list[tuple[int, str | None]]]:
    """Requests back to back in a thread; yields the (status, X-Model-Version) of each."""
    import httpx

    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=5) as http:
            while not stop.is_set():
                try:
                    answer = http.post("/invocations", json={"instances": [ROW]})
                    seen.append((answer.status_code, answer.headers.get("x-model-version")))
                except httpx.HTTPError as exc:
                    seen.append((0, type(exc).__name__))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(seen) > 5)
        yield seen
    finally:
        stop.set()
        thread.join(10)


def saw_version(seen: list[tuple[int, str | None]], version: str) -> bool:
    return any(v == version for _, v in seen)


def assert_clean_switch(seen: list[tuple[int, str | None]], old: str, new: str) -> None:
    """No failed request, and one switch from ``old`` to ``new``: no old answer after a new."""
    assert [s for s in seen if s[0] != 200] == [], "failed requests during the swap"
    versions = [v for _, v in seen]
    first_new = versions.index(new)
    assert set(versions[:first_new]) == {old}
    assert set(versions[first_new:]) == {new}, "an old answer came after the first new one"
