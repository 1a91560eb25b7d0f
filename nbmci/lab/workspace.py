"""What the extension keeps between requests: the project it serves and its CI jobs; and the
executed notebooks of CI runs, read from the store (nothing is written into the Jupyter root)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmci.errors import IntegrityError, InvalidInputError, NotFoundError
from nbmci.lab.jobs import JobManager

if TYPE_CHECKING:
    from nbmci.api import Project

logger = logging.getLogger(__name__)

MAX_NOTEBOOK_NAME = 255


class Workspace:
    """The nbmci project found from the server's root directory (or ``NBMCI_ROOT``)."""

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.jobs = JobManager()
        self._projects: dict[tuple[str, str, str], Project] = {}
        self._lock = threading.Lock()

    def find_project(self) -> Project | None:
        """The project, or None when there is none (no registry yet). Creates nothing."""
        from nbmci.api import Project  # SQLAlchemy and the core load on the first request

        found = Project.open(self.root_dir)
        if not _has_registry(found.settings.registry_url):
            return None
        settings = found.settings
        key = (str(settings.root), settings.store_url, settings.registry_url)
        with self._lock:  # one Project per registry, its engine made once, on one thread
            project = self._projects.get(key)
            if project is None or project.settings != settings:
                project = self._projects[key] = found
                project.registry.engine  # noqa: B018
                project.store  # noqa: B018
            elif project.settings.extra != settings.extra:
                project.settings = settings  # [tool.nbmci.ci] changed; same registry and store
            return project

    def project(self) -> Project:
        """The project, or a NotFoundError that says how to make one."""
        project = self.find_project()
        if project is None:
            raise NotFoundError(
                f"No nbmci project at {self.root_dir}: it has no .nbmci registry yet.",
                hint="Commit a model from a notebook there (%mci_commit), run `nbmci init` in "
                     "it, or start Jupyter with NBMCI_ROOT set to the project.")
        return project

    def close(self) -> None:
        self.jobs.close()
        with self._lock:
            for project in self._projects.values():
                project.close()
            self._projects.clear()

    # -- executed notebooks ----------------------------------------------------------------

    def executed_notebook(self, name: str, number: int, notebook: str) -> dict[str, Any]:
        """The executed ``notebook`` of ``name@number``'s newest CI run, as JSON, its cells
        marked untrusted; nothing is written (the panel shows it from a read-only drive)."""
        check_notebook_name(notebook)
        version, entry, data = self.project().executed_notebook(f"{name}@{number}", notebook)
        import nbformat  # a dependency of jupyter_server, loaded on the first report

        try:  # as the contents API reads it: multi-line strings joined, version 4
            content = nbformat.reads(data.decode("utf-8"), as_version=4)
            for cell in content["cells"]:
                cell.setdefault("metadata", {})["trusted"] = False
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError(f"The executed {notebook!r} of {version.ref} is not a "
                                 f"notebook: {exc}.") from exc
        return {"name": name, "version": number, "ref": version.ref, "notebook": notebook,
                "status": entry["status"], "digest": entry["output_digest"],
                "created_at": version.ci.started_at.isoformat() if version.ci else None,
                "content": content}


def _has_registry(url: str) -> bool:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///").split("?", 1)[0]).is_file()
    return True  # a server database (PostgreSQL) is there whether or not we look


def check_notebook_name(notebook: object) -> str:
    """A notebook name as CI records it: a relative path with no '..', '.', or hidden parts."""
    if not isinstance(notebook, str) or not notebook:
        raise InvalidInputError("The notebook name is empty.")
    shown = repr(notebook[:80])
    parts = notebook.split("/")
    if (len(notebook) > MAX_NOTEBOOK_NAME or "\\" in notebook
            or any(ord(c) < 32 or ord(c) == 127 for c in notebook)
            or any(not p or p.startswith(".") for p in parts)):
        raise InvalidInputError(
            f"{shown} is not an evaluation notebook name.",
            hint="Use a name from the version's CI notebooks, e.g. notebooks/evaluate.ipynb "
                 "(relative, no '..', no hidden parts).")
    return notebook
