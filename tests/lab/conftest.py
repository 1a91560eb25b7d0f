"""REST tests of the server extension: a real jupyter_server (pytest-jupyter) over a real project.

pytest-jupyter's fixtures are imported here rather than listed in ``pytest_plugins`` (which
pytest allows only in the top-level conftest). Its two autouse fixtures are redefined as
opt-in, so that the browser tests of this folder, which run JupyterLab in a subprocess, are not
given an event loop and a ServerApp cleanup they do not use.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPResponse

from nbmci.api import Project
from nbmci.config import load_settings

API = "nbmci/api"
NOTEBOOK = "notebooks/evaluate.ipynb"
HOSTILE_MESSAGE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
HOSTILE_METRIC = "<svg onload=alert(3)>"


@pytest.fixture
def jp_asyncio_loop() -> Iterator[Any]:
    """pytest-jupyter's event loop, requested by the server fixtures instead of autouse."""
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop(prefer_selector_loop=True)
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup(jp_asyncio_loop: Any) -> Iterator[None]:
    """pytest-jupyter's ServerApp cleanup, requested by ``api`` instead of autouse."""
    from jupyter_server.serverapp import ServerApp

    yield
    if not ServerApp.initialized():
        return
    app = ServerApp.instance()
    workspace = getattr(app, "web_app", None) and app.web_app.settings.get("nbmci.lab")
    if workspace is not None:
        workspace.close()
    jp_asyncio_loop.run_until_complete(app._cleanup())
    if hasattr(app, "kernel_manager"):
        app.kernel_manager.context.destroy()
    ServerApp.clear_instance()


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"nbmci.lab": True,
                                                  "jupyter_server_terminals": False},
                          "allow_unauthenticated_access": False}}


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Raw HTTP to the test server: paths are sent exactly as given (already encoded)."""

    def __init__(self, http: Any, base_url: str, token: str) -> None:
        self.http, self.base_url, self.token = http, base_url, token

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{API}/{path}" if path else \
            f"{self.base_url.rstrip('/')}/{API}"

    async def __call__(self, method: str, path: str, body: Any = None, *,
                       token: str | None = "default", headers: dict[str, str] | None = None,
                       raw: bytes | None = None) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"token {self.token if token == 'default' else token}")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else (b"" if method in ("POST", "PUT", "PATCH")
                                                  else None))
        response: HTTPResponse = await self.http.fetch(
            self.url(path), method=method, body=data, headers=sent, raise_error=False,
            follow_redirects=False, request_timeout=60, allow_nonstandard_methods=True)
        return Reply(response.code, response.headers, response.body or b"")

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return await self("POST", path, body, **kwargs)


@pytest.fixture
def api(jp_server_cleanup: None, jp_serverapp: Any, http_server_client: Any,
        jp_base_url: str) -> Client:
    """Calls to ``{base_url}nbmci/api/...`` with the server's token."""
    return Client(http_server_client, jp_base_url, jp_serverapp.identity_provider.token)


def quote(segment: str) -> str:
    """One path segment, percent-encoded (slashes too)."""
    return urllib.parse.quote(segment, safe="")


@pytest.fixture
def lab_project(jp_root_dir: Path, fitted: Any, iris: Any) -> Iterator[Project]:
    """A project in the server's root directory with clf@1 (acc 0.91) and clf@2 (acc 0.93)."""
    (jp_root_dir / ".nbmci").mkdir(mode=0o700)
    project = Project(load_settings(jp_root_dir))
    for acc in (0.91, 0.93):
        version = project.commit(fitted, None, name="clf", message=f"acc {acc}",
                                 metrics={"acc": acc}, example=iris[0].head())
        project.checks.wait(version)  # its servability verdict is in the registry
    yield project
    project.close()


def executed_notebook(text: str = "evaluated") -> bytes:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nbformat.writes(nb).encode()


def record_ci(project: Project, name: str, number: int, status: str = "passed",
              notebook: bytes | None = None) -> str:
    """Record a CI run with one executed notebook, as the runner would, without kernels."""
    digest = project.store.put_bytes(notebook or executed_notebook()).digest
    project.registry.add_ci_run(name, number, {
        "started_at": dt.datetime.now(dt.UTC), "status": status, "metrics": {"accuracy": 0.9},
        "gates": [], "duration": 0.5, "environment": {},
    }, [{"notebook": NOTEBOOK, "notebook_digest": digest, "parameters": {},
         "cache_key": digest, "cached": False, "status": "passed", "records": {},
         "output_digest": digest, "error": None, "duration": 0.5}], actor="test")
    return digest


def registry_dump(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every registry table, read-only, for "a GET changed nothing"."""
    path = project.settings.registry_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        dump = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()
                for t in tables}
    conn.close()
    return dump


def tree(root: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))
            if p.is_file() and not skip(p)}
