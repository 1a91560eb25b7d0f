"""A real kernel (ipykernel, driven by nbclient) shared by the tests of this folder.

A kernel takes about a second to start on the project's machines, so one kernel serves every
test: each test gets its own project directory and a fresh namespace (``%reset``) and runs its
cells there, as a notebook would. Tests assert on the outputs the kernel sent (mimebundles,
widget state) and on the registry, read from this process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.util import run_sync
from nbformat import NotebookNode

from nbmci.api import Project
from nbmci.config import STATE_DIR, load_settings

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Variables that would point a kernel at another project or notebook than the test's own.
_LEAKY_ENV = ("JPY_SESSION_NAME", "PAPERMILL_INPUT_PATH")


def kernel_env(ipython_dir: Path) -> dict[str, str]:
    """This process's environment, minus nbmci and notebook settings, with a private IPython
    profile so a developer's startup files and extensions stay out of the tests."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NBMCI_") and k not in _LEAKY_ENV}
    env["IPYTHONDIR"] = str(ipython_dir)
    return env


class Kernel:
    """One running kernel; ``run`` executes cells in it like a notebook does."""

    def __init__(self, client: NotebookClient) -> None:
        self.client = client
        self.root = Path()

    def run(self, *sources: str) -> list[NotebookNode]:
        """Execute each source as a new cell, in order; a failing cell raises
        ``CellExecutionError`` (with ``.ename`` and ``.evalue``) and stops the run."""
        cells = []
        for source in sources:
            cells.append(self._execute(source, store_history=True))
        return cells

    def enter(self, root: Path) -> None:
        """Start over in project ``root``: an empty namespace and history, ``root`` as cwd,
        and no notebook path left in the environment by an earlier test."""
        self.root = root
        self._execute("get_ipython().reset(new_session=True)\n"
                      f"import os as _os\n_os.chdir({str(root)!r})\n"
                      f"for _name in {_LEAKY_ENV!r}:\n    _os.environ.pop(_name, None)\n"
                      "del _os, _name", store_history=False)

    def complete(self, code: str) -> list[str]:
        """The kernel's answer to a Tab at the end of ``code`` (a complete_request)."""
        reply = self._request(self.client.kc.complete, code, len(code))
        return list(reply["content"]["matches"])

    def inspect(self, code: str) -> str:
        """The kernel's help for ``code`` (an inspect_request, as Shift-Tab and ``?`` do)."""
        reply = self._request(self.client.kc.inspect, code, len(code), 0)
        return str(reply["content"]["data"].get("text/plain", ""))

    def widget_state(self, output: NotebookNode) -> dict[str, Any]:
        """The model state of the widget an output shows, as the kernel last synced it."""
        model_id = output["data"][WIDGET_VIEW]["model_id"]
        state: dict[str, Any] = self.client.widget_state[model_id]
        return state

    def _execute(self, source: str, *, store_history: bool) -> NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.client.nb.cells) - 1,
                                 store_history=store_history)
        return cell

    def _request(self, send: Any, *args: Any) -> dict[str, Any]:
        msg_id = send(*args)
        while True:
            reply: dict[str, Any] = run_sync(self.client.kc.get_shell_msg)(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply


@pytest.fixture(scope="session")
def _kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    home = tmp_path_factory.mktemp("kernel")
    notebook = nbformat.v4.new_notebook()
    client = NotebookClient(notebook, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(home)}})
    client.reset_execution_trackers()
    with client.setup_kernel(env=kernel_env(home / "ipython")):
        kernel = Kernel(client)
        kernel.run("%load_ext nbmci")
        yield kernel


@pytest.fixture
def kernel(_kernel: Kernel, tmp_path: Path) -> Kernel:
    """The shared kernel, in a fresh namespace and an empty project of this test's own."""
    root = tmp_path / "project"
    (root / STATE_DIR).mkdir(parents=True, mode=0o700)
    _kernel.enter(root)
    return _kernel


@pytest.fixture
def registry(kernel: Kernel) -> Iterator[Project]:
    """The kernel's project, opened from this process to check what the magics wrote."""
    project = Project(load_settings(kernel.root))
    yield project
    project.close()


def stored_objects(root: Path) -> list[Path]:
    """Every file in the project's object store, finished or temporary."""
    return [p for p in (root / STATE_DIR / "objects").rglob("*") if p.is_file()]


def mimebundles(cells: list[NotebookNode]) -> list[dict[str, Any]]:
    """The data of every display and result output of ``cells``, in order."""
    return [dict(o["data"]) for cell in cells for o in cell["outputs"]
            if o["output_type"] in ("display_data", "execute_result")]

